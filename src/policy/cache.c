/* cache.c: a bounded LRU map from a 64-bit request hash to an answer.
 *
 * DESIGN
 * Entries live in a doubly linked list in recency order (head = newest) and
 * in an open-addressing index of key -> entry with tombstones. Sizes are
 * small (a thousand entries), so the index is rebuilt when tombstones pile
 * up. The key is FNV-1a over the model name and the canonical JSON of the
 * request without id/workflow/priority.
 */
#include "quotatop/cache.h"

#include "quotatop/common.h"

#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

typedef struct entry {
    uint64_t key;
    char *content, *model_used;
    char *finish_reason, *tool_calls;   /* NULL when unknown / none */
    struct entry *prev, *next;
} entry;

#define TOMB ((entry *)1)

struct qt_cache {
    size_t cap, count;
    entry *head, *tail;
    entry **index;      /* open addressing; NULL empty, TOMB deleted */
    size_t index_cap;   /* power of two, >= 2 * cap */
    size_t used;        /* index slots not NULL (entries + tombstones) */
};

uint64_t qt_cache_key(const char *model, const cJSON *job_body)
{
    uint64_t h = qt_hash_str(QT_HASH_SEED, model ? model : "");
    cJSON *copy = cJSON_Duplicate(job_body, 1);
    if (copy) {
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "id");
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "workflow");
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "priority");
        char *s = cJSON_PrintUnformatted(copy);
        if (s)
            h = qt_hash_str(h ^ 0x9e3779b97f4a7c15ull, s);
        free(s);
        cJSON_Delete(copy);
    }
    return h;
}

qt_cache *qt_cache_new(size_t capacity)
{
    qt_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cap = capacity ? capacity : 1024;
    c->index_cap = 16;
    while (c->index_cap < c->cap * 2 + 2)
        c->index_cap *= 2;
    c->index = calloc(c->index_cap, sizeof *c->index);
    if (!c->index) {
        free(c);
        return NULL;
    }
    return c;
}

static void entry_free(entry *e)
{
    free(e->content);
    free(e->model_used);
    free(e->finish_reason);
    free(e->tool_calls);
    free(e);
}

void qt_cache_free(qt_cache *c)
{
    if (!c)
        return;
    for (entry *e = c->head, *n; e; e = n) {
        n = e->next;
        entry_free(e);
    }
    free(c->index);
    free(c);
}

static size_t slot_of(const qt_cache *c, uint64_t key)
{
    size_t mask = c->index_cap - 1, i = (size_t)(key ^ (key >> 29)) & mask;
    while (c->index[i] && (c->index[i] == TOMB || c->index[i]->key != key))
        i = (i + 1) & mask;
    return i;   /* the entry's slot, or the empty slot ending its probe run */
}

static void unlink_entry(qt_cache *c, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(qt_cache *c, entry *e)
{
    e->next = c->head;
    e->prev = NULL;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* Rebuilds the index from the list (drops tombstones). */
static void reindex(qt_cache *c)
{
    memset(c->index, 0, c->index_cap * sizeof *c->index);
    for (entry *e = c->head; e; e = e->next)
        c->index[slot_of(c, e->key)] = e;
    c->used = c->count;
}

static void remove_key(qt_cache *c, uint64_t key)
{
    size_t i = slot_of(c, key);
    entry *e = c->index[i];
    if (!e)
        return;
    c->index[i] = TOMB;
    unlink_entry(c, e);
    entry_free(e);
    c->count--;
}

void qt_cache_put_answer(qt_cache *c, uint64_t key, const char *content, const char *model_used,
                         const char *finish_reason, const char *tool_calls)
{
    if (!c || !content)
        return;
    remove_key(c, key);
    if (c->count >= c->cap && c->tail)
        remove_key(c, c->tail->key);
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return;
    e->key = key;
    e->content = strdup(content);
    e->model_used = strdup(model_used ? model_used : "");
    e->finish_reason = finish_reason ? strdup(finish_reason) : NULL;
    e->tool_calls = tool_calls ? strdup(tool_calls) : NULL;
    if (!e->content || !e->model_used || (finish_reason && !e->finish_reason)
        || (tool_calls && !e->tool_calls)) {
        entry_free(e);
        return;
    }
    push_front(c, e);
    c->count++;
    /* Tombstones only accumulate; rebuild before probe runs get long. */
    if (c->used + 1 > c->index_cap * 3 / 4)
        reindex(c);
    c->index[slot_of(c, key)] = e;
    c->used++;
}

void qt_cache_put(qt_cache *c, uint64_t key, const char *content, const char *model_used)
{
    qt_cache_put_answer(c, key, content, model_used, NULL, NULL);
}

void qt_cache_answer_free(qt_cache_answer *a)
{
    if (!a)
        return;
    free(a->content);
    free(a->model_used);
    free(a->finish_reason);
    free(a->tool_calls);
    memset(a, 0, sizeof *a);
}

int qt_cache_get_answer(qt_cache *c, uint64_t key, qt_cache_answer *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return 0;
    entry *e = c->index[slot_of(c, key)];
    if (!e)
        return 0;
    unlink_entry(c, e);
    push_front(c, e);
    out->content = strdup(e->content);
    out->model_used = strdup(e->model_used);
    out->finish_reason = e->finish_reason ? strdup(e->finish_reason) : NULL;
    out->tool_calls = e->tool_calls ? strdup(e->tool_calls) : NULL;
    if (!out->content || !out->model_used || (e->finish_reason && !out->finish_reason)
        || (e->tool_calls && !out->tool_calls)) {
        qt_cache_answer_free(out);
        return 0;
    }
    return 1;
}

int qt_cache_get(qt_cache *c, uint64_t key, char **content, char **model_used)
{
    qt_cache_answer a;
    *content = *model_used = NULL;
    if (!qt_cache_get_answer(c, key, &a))
        return 0;
    *content = a.content;
    *model_used = a.model_used;
    free(a.finish_reason);
    free(a.tool_calls);
    return 1;
}

size_t qt_cache_count(const qt_cache *c) { return c ? c->count : 0; }
