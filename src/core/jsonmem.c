/* jsonmem.c: cJSON's allocator, with a small cache per thread.
 *
 * DESIGN
 * A request through quotatop is parsed, built and printed as cJSON trees:
 * some 60-80 nodes and keys of a few dozen bytes each, all freed together a
 * moment later. glibc's per-thread cache keeps only 7 blocks of a size, so
 * most of these went to the arena's bins (serve, 32 connections: malloc and
 * free were ~20% of the CPU). Here each thread keeps up to JM_KEEP freed
 * blocks of each small size class and hands them back to cJSON first.
 *
 * The blocks are plain malloc blocks, classed by malloc_usable_size, so
 * whatever cJSON gives out (cJSON_Print's strings) may still be freed with
 * free(), and a block freed here may have come from anywhere. A class's
 * capacity is 16c + 24 bytes (glibc's chunk sizes 32, 48, ... less their
 * header); a block goes in the largest class it can hold, and a request
 * takes from the smallest class that holds it, so a block always fits
 * whatever takes it, whatever the allocator (AddressSanitizer's usable
 * size is the size asked for).
 *
 * Thread-safety: the cache is thread-local (no lock); a thread's blocks
 * are freed when it ends (a pthread key's destructor) or when it calls
 * qt_jsonmem_release (main, before it returns). Built with
 * AddressSanitizer, the cache is off, so that a use after free of a cJSON
 * block is still caught.
 */
#include "quotatop/jsonmem.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#include <cJSON.h>

#if defined(__SANITIZE_ADDRESS__)
#define JM_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JM_OFF 1
#endif
#endif
#ifndef JM_OFF
#define JM_OFF 0
#endif

#define JM_CLASSES 16   /* capacities 24 .. 264 bytes */
#define JM_KEEP 256     /* blocks kept per class and thread */

typedef struct jm_block {
    struct jm_block *next;
} jm_block;

typedef struct {
    jm_block *head[JM_CLASSES];
    unsigned n[JM_CLASSES];
    int keyed;   /* the key's destructor will free it */
} jm_cache;

static __thread jm_cache tls;
static pthread_key_t jm_key;
static pthread_once_t jm_once = PTHREAD_ONCE_INIT;
static int jm_key_ok;

static void flush(jm_cache *c)
{
    for (int k = 0; k < JM_CLASSES; k++) {
        for (jm_block *b = c->head[k], *n; b; b = n) {
            n = b->next;
            free(b);
        }
        c->head[k] = NULL;
        c->n[k] = 0;
    }
}

static void on_thread_end(void *p)
{
    flush(p);
}

static void make_key(void)
{
    jm_key_ok = pthread_key_create(&jm_key, on_thread_end) == 0;
}

/* The smallest class whose capacity is >= sz, or -1. */
static int class_for(size_t sz)
{
    size_t k = sz <= 24 ? 0 : (sz - 24 + 15) / 16;
    return k < JM_CLASSES ? (int)k : -1;
}

static void *jm_malloc(size_t sz)
{
    int k = class_for(sz);
    if (k >= 0 && tls.head[k]) {
        jm_block *b = tls.head[k];
        tls.head[k] = b->next;
        tls.n[k]--;
        return b;
    }
    return malloc(sz);
}

static void jm_free(void *p)
{
    if (p == NULL)
        return;
    size_t u = malloc_usable_size(p);
    size_t k = u < 24 ? JM_CLASSES : (u - 24) / 16;   /* the largest class it holds */
    if (k >= JM_CLASSES || tls.n[k] >= JM_KEEP) {
        free(p);
        return;
    }
    if (!tls.keyed) {
        pthread_once(&jm_once, make_key);
        if (!jm_key_ok || pthread_setspecific(jm_key, &tls)) {
            free(p);
            return;
        }
        tls.keyed = 1;
    }
    jm_block *b = p;
    b->next = tls.head[k];
    tls.head[k] = b;
    tls.n[k]++;
}

void qt_jsonmem_init(void)
{
    if (JM_OFF)
        return;
    cJSON_Hooks h = { .malloc_fn = jm_malloc, .free_fn = jm_free };
    cJSON_InitHooks(&h);
}

void qt_jsonmem_release(void)
{
    flush(&tls);
}

int qt_jsonmem_enabled(void)
{
    return !JM_OFF;
}

size_t qt_jsonmem_cached(void)
{
    size_t n = 0;
    for (int k = 0; k < JM_CLASSES; k++)
        n += tls.n[k];
    return n;
}
