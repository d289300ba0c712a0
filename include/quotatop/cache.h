/* cache.h: the response cache behind `@cache` in a fallback chain.
 *
 * Every ok answer is stored under a 64-bit key hashed from the job's model
 * chain head and the request as sent (messages and parameters, without
 * quotatop's own fields). When a chain ends in `@cache` and every model is
 * exhausted, the router answers from here. Bounded (least recently used
 * entries go first).
 *
 * Thread-safety: not thread-safe; the engine serialises all calls.
 */
#ifndef QT_CACHE_H
#define QT_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct qt_cache qt_cache;
typedef struct cJSON cJSON;

/* Returns a cache of at most capacity entries (0 = 1024), or NULL. */
qt_cache *qt_cache_new(size_t capacity);
void qt_cache_free(qt_cache *c);   /* accepts NULL */

/* Key of a job: hash of its model and its body without id, workflow and
 * priority (those do not change the answer). */
uint64_t qt_cache_key(const char *model, const cJSON *job_body);

/* A cached answer: what a replay of it needs to look like the original. */
typedef struct {
    char *content;         /* the text of choice 0 ("" when it only called tools) */
    char *model_used;      /* the model that answered */
    char *finish_reason;   /* OpenAI vocabulary ("stop", "tool_calls", ...), NULL unknown */
    char *tool_calls;      /* choice 0's tool calls, JSON array text (OpenAI shape), or NULL */
} qt_cache_answer;

/* Stores (copies of) an answer, replacing an older entry with the same key;
 * evicts the least recently used when full. finish_reason and tool_calls
 * may be NULL. Out of memory: nothing is stored. */
void qt_cache_put_answer(qt_cache *c, uint64_t key, const char *content, const char *model_used,
                         const char *finish_reason, const char *tool_calls);

/* Looks a key up. On a hit returns 1 with heap copies in *out (free them
 * with qt_cache_answer_free) and marks the entry recently used; else (a
 * miss, or out of memory) 0 with *out zeroed. */
int qt_cache_get_answer(qt_cache *c, uint64_t key, qt_cache_answer *out);

/* Frees what a holds and zeroes it. Accepts NULL. */
void qt_cache_answer_free(qt_cache_answer *a);

/* qt_cache_put_answer without finish reason and tool calls. */
void qt_cache_put(qt_cache *c, uint64_t key, const char *content, const char *model_used);

/* Looks a key up. On a hit returns 1 and heap copies in *content and
 * *model_used (caller frees), and marks the entry recently used; else 0. */
int qt_cache_get(qt_cache *c, uint64_t key, char **content, char **model_used);

size_t qt_cache_count(const qt_cache *c);

#endif /* QT_CACHE_H */
