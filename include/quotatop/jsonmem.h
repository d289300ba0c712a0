/* jsonmem.h: cJSON's allocator with a per-thread cache of small blocks
 * (src/core/jsonmem.c), for the trees every request is parsed into and
 * built from.
 *
 * Thread-safety: qt_jsonmem_init once, before any thread uses cJSON (main
 * does it first); the cache is per thread, so the rest is safe from any
 * thread and touches only the caller's own cache.
 */
#ifndef QT_JSONMEM_H
#define QT_JSONMEM_H

#include <stddef.h>

/* Gives cJSON the caching allocator. Blocks it hands out are malloc
 * blocks: free() is still right for what cJSON_Print returns. A no-op in
 * an AddressSanitizer build. */
void qt_jsonmem_init(void);

/* Frees the calling thread's cached blocks (other threads' go when they
 * end). main calls it before it returns. */
void qt_jsonmem_release(void);

/* How many blocks the calling thread's cache holds (tests). */
size_t qt_jsonmem_cached(void);

/* 1 when the cache is built in (0 in an AddressSanitizer build). */
int qt_jsonmem_enabled(void);

#endif
