/* queue_int.h: the queue's private state, shared by queue.c (the pool,
 * maps and heaps, and the per-entry operations) and queue_ctl.c (pause,
 * resume, close, drain, counts, snapshot). Not a public header.
 *
 * No locks: the owner (the engine, under its mutex) serialises every call.
 */
#ifndef QT_QUEUE_INT_H
#define QT_QUEUE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/queue.h"

#define NIL UINT32_MAX
#define ID_INLINE 16

typedef struct {
    uint64_t key;        /* sort key: priority*aging_ms + enqueue_ms, or priority */
    uint64_t seq;        /* push sequence number: FIFO tie-break */
    uint64_t enq_ms;     /* enqueue time after the non-decreasing clamp */
    void *payload;       /* caller's */
    union {
        char inl[ID_INLINE]; /* id when strlen(id) < ID_INLINE */
        char *ptr;           /* malloc'd copy otherwise */
    } id;
    uint32_t wf;         /* workflow index */
    uint32_t slot;       /* position in its workflow heap; next free when free */
    uint32_t est_tokens;
    uint16_t model;      /* model index + 1; 0 = none */
    uint8_t prio;        /* base priority 1..10; 0 = free pool slot */
    uint8_t id_heap;     /* 1 when id.ptr is malloc'd */
} qent;

typedef struct {
    char *name;
    uint32_t *heap;      /* min-heap of entry indices */
    uint32_t n, cap;
    uint32_t hslot;      /* position in q->heads, NIL when not ready */
    int paused;
} qwf;

typedef struct {
    uint32_t *b;         /* buckets: value or NIL */
    uint32_t mask;       /* bucket count - 1 (power of two), 0 when b == NULL */
    uint32_t n;
} qmap;

struct qt_queue {
    uint64_t aging_ms;
    uint64_t next_seq;
    uint64_t last_enq_ms; /* FIFO clamp: enqueue times never go back */
    qent *ents;
    uint32_t ents_cap, ents_hi, free_head;
    uint32_t n;           /* queued entries */
    size_t by_prio[QT_QUEUE_PRIO_LEVELS];
    qwf *wfs;
    uint32_t nwfs, wfs_cap;
    uint32_t *heads;      /* heap of ready workflow indices */
    uint32_t nheads;      /* (capacity = wfs_cap) */
    char **models;
    uint32_t nmodels, models_cap;
    qmap ids, wfmap, modelmap;
    int paused_all;
    int closed;
};

static inline const char *ent_id(const qent *e)
{
    return e->id_heap ? e->id.ptr : e->id.inl;
}

/* Pop order of entries a and b: (key, seq). */
static inline int ent_less(const qt_queue *q, uint32_t a, uint32_t b)
{
    const qent *x = &q->ents[a], *y = &q->ents[b];
    return x->key < y->key || (x->key == y->key && x->seq < y->seq);
}

/* Returns the index of workflow `name`, adding it when add is 1; NIL when
 * absent (add = 0) or out of memory (*err set). */
uint32_t queue_wf_lookup(qt_queue *q, const char *name, int add, qt_err *err);

/* Puts workflow w where it belongs in `heads` after any change to its heap
 * root or its paused flag: in (sifted) when ready, out when not. O(log W). */
void queue_head_fix(qt_queue *q, uint32_t w);

/* Copies src into dst[cap], truncating, always terminated. */
void queue_copy_str(char *dst, size_t cap, const char *src);

/* Fills v from entry i (effective_priority = base priority). */
void queue_fill_view(const qt_queue *q, uint32_t i, qt_queue_view *v);

/* Unlinks entry i from its heap, the id map and the counts, and frees it.
 * id_bucket is its bucket in the id map, or NIL to look it up. */
void queue_ent_remove(qt_queue *q, uint32_t i, uint32_t id_bucket);

#endif
