/* queue.c: priority queue with aging, cancel, reprioritize, pause, close.
 *
 * DESIGN
 * Entries live in one pool array (`ents`, 64 bytes each, indexed by uint32,
 * with a free list), so heaps and maps hold 4-byte indices instead of
 * pointers and the pool can grow with realloc. Ids shorter than 16 bytes are
 * stored inline in the entry; longer ones are malloc'd.
 *
 * Each workflow has its own binary min-heap of entry indices ordered by
 * (key, seq) (see queue.h for the key and why it makes aging free). A second
 * heap, `heads`, holds the workflows that are ready (not paused, non-empty),
 * ordered by their root entry. Pop takes the root of the first ready workflow:
 * O(log n) in that workflow's heap + O(log W) to fix its place in `heads`.
 * Pausing a workflow just removes it from `heads` (O(log W)), so a paused
 * backlog of any size costs pop nothing. Every entry records its position in
 * its workflow heap (`slot`) and every workflow its position in `heads`
 * (`hslot`), so cancel and reprioritize find and fix them in O(log n).
 *
 * An open-addressing hash map (linear probing, backward-shift deletion, no
 * tombstones) maps id -> entry index; two more map workflow and model names
 * to their tables. Maps store only uint32 values and read keys back through
 * the tables.
 *
 * Snapshot walks the heaps in order without modifying them: an auxiliary
 * min-heap of candidate nodes starts with the root of `heads`; taking a
 * `heads` node offers its two children in `heads` and the two children of
 * that workflow's root; taking an entry node offers its two heap children.
 * The first N entries in pop order thus cost O(N log N).
 *
 * Locking: `locked` queues wrap every public function in `mu`; `cv` is
 * signalled on push of a ready entry and broadcast on resume and close.
 * Unlocked queues never touch mu/cv (the engine serializes calls).
 */
#include "quotatop/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NIL UINT32_MAX
#define ID_INLINE 16
#define MAX_ENTRIES (UINT32_MAX - 1u)
#define MAX_MODELS 65535u

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
    int locked;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* ---------- locking ---------- */

static void lock(qt_queue *q)
{
    if (q->locked)
        pthread_mutex_lock(&q->mu);
}

static void unlock(qt_queue *q)
{
    if (q->locked)
        pthread_mutex_unlock(&q->mu);
}

/* ---------- hash maps ---------- */

typedef const char *(*keyfn)(const qt_queue *q, uint32_t v);

static const char *ent_id(const qent *e)
{
    return e->id_heap ? e->id.ptr : e->id.inl;
}

static const char *key_id(const qt_queue *q, uint32_t v) { return ent_id(&q->ents[v]); }
static const char *key_wf(const qt_queue *q, uint32_t v) { return q->wfs[v].name; }
static const char *key_model(const qt_queue *q, uint32_t v) { return q->models[v]; }

static uint32_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, folded */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (uint32_t)(h ^ (h >> 32));
}

/* Returns the bucket holding key s, or NIL. */
static uint32_t map_find(const qt_queue *q, const qmap *m, keyfn kf, const char *s)
{
    if (!m->b)
        return NIL;
    for (uint32_t i = hash_str(s) & m->mask;; i = (i + 1) & m->mask) {
        if (m->b[i] == NIL)
            return NIL;
        if (strcmp(kf(q, m->b[i]), s) == 0)
            return i;
    }
}

static void map_put_raw(const qt_queue *q, qmap *m, keyfn kf, uint32_t v)
{
    uint32_t i = hash_str(kf(q, v)) & m->mask;
    while (m->b[i] != NIL)
        i = (i + 1) & m->mask;
    m->b[i] = v;
    m->n++;
}

/* Inserts value v (its key must not be present). Keeps load <= 3/4. */
static qt_err map_insert(const qt_queue *q, qmap *m, keyfn kf, uint32_t v)
{
    uint64_t cap = m->b ? (uint64_t)m->mask + 1 : 0;
    if ((uint64_t)(m->n + 1) * 4 > cap * 3) {
        uint64_t ncap = cap ? cap * 2 : 16;
        if (ncap > (1ULL << 32))
            return QT_ERR_LIMIT;
        uint32_t *nb = malloc(ncap * sizeof *nb);
        if (!nb)
            return QT_ERR_NOMEM;
        memset(nb, 0xff, ncap * sizeof *nb);
        qmap old = *m;
        m->b = nb;
        m->mask = (uint32_t)(ncap - 1);
        m->n = 0;
        for (uint64_t i = 0; i < cap; i++)
            if (old.b[i] != NIL)
                map_put_raw(q, m, kf, old.b[i]);
        free(old.b);
    }
    map_put_raw(q, m, kf, v);
    return QT_OK;
}

/* Removes the value in bucket i, shifting later members of its probe run
 * back so lookups never need tombstones. */
static void map_remove_at(const qt_queue *q, qmap *m, keyfn kf, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        if (m->b[j] == NIL)
            break;
        uint32_t home = hash_str(kf(q, m->b[j])) & m->mask;
        /* move b[j] into the hole at i unless its home lies cyclically in (i, j] */
        int stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            m->b[i] = m->b[j];
            i = j;
        }
    }
    m->b[i] = NIL;
    m->n--;
}

/* ---------- heaps ---------- */

static int ent_less(const qt_queue *q, uint32_t a, uint32_t b)
{
    const qent *x = &q->ents[a], *y = &q->ents[b];
    return x->key < y->key || (x->key == y->key && x->seq < y->seq);
}

static void wf_set(qt_queue *q, qwf *w, uint32_t pos, uint32_t e)
{
    w->heap[pos] = e;
    q->ents[e].slot = pos;
}

static void wf_sift_up(qt_queue *q, qwf *w, uint32_t pos)
{
    uint32_t e = w->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!ent_less(q, e, w->heap[parent]))
            break;
        wf_set(q, w, pos, w->heap[parent]);
        pos = parent;
    }
    wf_set(q, w, pos, e);
}

static void wf_sift_down(qt_queue *q, qwf *w, uint32_t pos)
{
    uint32_t e = w->heap[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= w->n)
            break;
        if (c + 1 < w->n && ent_less(q, w->heap[c + 1], w->heap[c]))
            c++;
        if (!ent_less(q, w->heap[c], e))
            break;
        wf_set(q, w, pos, w->heap[c]);
        pos = c;
    }
    wf_set(q, w, pos, e);
}

/* Removes the entry at pos from workflow heap w. */
static void wf_remove(qt_queue *q, qwf *w, uint32_t pos)
{
    uint32_t last = w->heap[--w->n];
    if (pos == w->n)
        return;
    wf_set(q, w, pos, last);
    wf_sift_up(q, w, pos);
    wf_sift_down(q, w, q->ents[last].slot);
}

static int head_less(const qt_queue *q, uint32_t wa, uint32_t wb)
{
    return ent_less(q, q->wfs[wa].heap[0], q->wfs[wb].heap[0]);
}

static void head_set(qt_queue *q, uint32_t pos, uint32_t w)
{
    q->heads[pos] = w;
    q->wfs[w].hslot = pos;
}

static void head_sift_up(qt_queue *q, uint32_t pos)
{
    uint32_t w = q->heads[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!head_less(q, w, q->heads[parent]))
            break;
        head_set(q, pos, q->heads[parent]);
        pos = parent;
    }
    head_set(q, pos, w);
}

static void head_sift_down(qt_queue *q, uint32_t pos)
{
    uint32_t w = q->heads[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= q->nheads)
            break;
        if (c + 1 < q->nheads && head_less(q, q->heads[c + 1], q->heads[c]))
            c++;
        if (!head_less(q, q->heads[c], w))
            break;
        head_set(q, pos, q->heads[c]);
        pos = c;
    }
    head_set(q, pos, w);
}

/* Puts workflow w where it belongs in `heads` after any change to its heap
 * root or its paused flag: in (sifted) when ready, out when not. O(log W). */
static void head_fix(qt_queue *q, uint32_t w)
{
    qwf *wf = &q->wfs[w];
    int ready = !wf->paused && wf->n > 0;
    if (ready && wf->hslot == NIL) {
        head_set(q, q->nheads++, w); /* capacity: heads has wfs_cap slots */
        head_sift_up(q, wf->hslot);
    } else if (!ready && wf->hslot != NIL) {
        uint32_t pos = wf->hslot;
        uint32_t last = q->heads[--q->nheads];
        wf->hslot = NIL;
        if (pos != q->nheads) {
            head_set(q, pos, last);
            head_sift_up(q, pos);
            head_sift_down(q, q->wfs[last].hslot);
        }
    } else if (ready) {
        head_sift_up(q, wf->hslot);
        head_sift_down(q, wf->hslot);
    }
}

/* ---------- tables ---------- */

/* Returns the index of workflow `name`, adding it when add is 1; NIL when
 * absent (add = 0) or out of memory (*err set). */
static uint32_t wf_lookup(qt_queue *q, const char *name, int add, qt_err *err)
{
    uint32_t b = map_find(q, &q->wfmap, key_wf, name);
    if (b != NIL)
        return q->wfmap.b[b];
    if (!add)
        return NIL;
    if (q->nwfs == q->wfs_cap) {
        uint32_t ncap = q->wfs_cap ? q->wfs_cap * 2 : 8;
        qwf *nw = realloc(q->wfs, ncap * sizeof *nw);
        if (!nw)
            goto nomem;
        q->wfs = nw;
        uint32_t *nh = realloc(q->heads, ncap * sizeof *nh);
        if (!nh)
            goto nomem; /* wfs grew: harmless, wfs_cap stays */
        q->heads = nh;
        q->wfs_cap = ncap;
    }
    qwf *w = &q->wfs[q->nwfs];
    memset(w, 0, sizeof *w);
    w->hslot = NIL;
    w->name = strdup(name);
    if (!w->name)
        goto nomem;
    q->nwfs++;
    qt_err e = map_insert(q, &q->wfmap, key_wf, q->nwfs - 1);
    if (e != QT_OK) {
        q->nwfs--;
        free(w->name);
        *err = e;
        return NIL;
    }
    return q->nwfs - 1;
nomem:
    *err = QT_ERR_NOMEM;
    return NIL;
}

/* Returns model index + 1 for name (added if new), 0 for NULL/"", or 0 with
 * *err set on failure. */
static uint16_t model_lookup(qt_queue *q, const char *name, qt_err *err)
{
    if (!name || !*name)
        return 0;
    uint32_t b = map_find(q, &q->modelmap, key_model, name);
    if (b != NIL)
        return (uint16_t)(q->modelmap.b[b] + 1);
    if (q->nmodels >= MAX_MODELS) {
        *err = QT_ERR_LIMIT;
        return 0;
    }
    if (q->nmodels == q->models_cap) {
        uint32_t ncap = q->models_cap ? q->models_cap * 2 : 8;
        char **nm = realloc(q->models, ncap * sizeof *nm);
        if (!nm) {
            *err = QT_ERR_NOMEM;
            return 0;
        }
        q->models = nm;
        q->models_cap = ncap;
    }
    q->models[q->nmodels] = strdup(name);
    if (!q->models[q->nmodels]) {
        *err = QT_ERR_NOMEM;
        return 0;
    }
    q->nmodels++;
    qt_err e = map_insert(q, &q->modelmap, key_model, q->nmodels - 1);
    if (e != QT_OK) {
        free(q->models[--q->nmodels]);
        *err = e;
        return 0;
    }
    return (uint16_t)q->nmodels;
}

static uint32_t ent_alloc(qt_queue *q)
{
    if (q->free_head != NIL) {
        uint32_t i = q->free_head;
        q->free_head = q->ents[i].slot;
        return i;
    }
    if (q->ents_hi == q->ents_cap) {
        uint64_t ncap = q->ents_cap ? (uint64_t)q->ents_cap * 2 : 64;
        if (ncap > MAX_ENTRIES)
            ncap = MAX_ENTRIES;
        if (ncap <= q->ents_cap)
            return NIL;
        qent *ne = realloc(q->ents, ncap * sizeof *ne);
        if (!ne)
            return NIL;
        q->ents = ne;
        q->ents_cap = (uint32_t)ncap;
    }
    return q->ents_hi++;
}

static void ent_release(qt_queue *q, uint32_t i)
{
    qent *e = &q->ents[i];
    if (e->id_heap)
        free(e->id.ptr);
    e->id_heap = 0;
    e->prio = 0;
    e->payload = NULL;
    e->slot = q->free_head;
    q->free_head = i;
}

static uint64_t make_key(const qt_queue *q, int prio, uint64_t enq_ms)
{
    return q->aging_ms ? (uint64_t)prio * q->aging_ms + enq_ms : (uint64_t)prio;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void fill_view(const qt_queue *q, uint32_t i, qt_queue_view *v)
{
    const qent *e = &q->ents[i];
    copy_str(v->id, sizeof v->id, ent_id(e));
    copy_str(v->workflow, sizeof v->workflow, q->wfs[e->wf].name);
    copy_str(v->model, sizeof v->model, e->model ? q->models[e->model - 1] : "");
    v->priority = e->prio;
    v->effective_priority = e->prio;
    v->paused = q->wfs[e->wf].paused;
    v->enqueue_ms = e->enq_ms;
    v->est_tokens = e->est_tokens;
}

/* Unlinks entry i from its heap, the id map and the counts, and frees it. */
static void ent_remove(qt_queue *q, uint32_t i, uint32_t id_bucket)
{
    qent *e = &q->ents[i];
    uint32_t w = e->wf;
    if (id_bucket == NIL)
        id_bucket = map_find(q, &q->ids, key_id, ent_id(e));
    map_remove_at(q, &q->ids, key_id, id_bucket);
    wf_remove(q, &q->wfs[w], e->slot);
    head_fix(q, w);
    q->by_prio[e->prio - 1]--;
    q->n--;
    ent_release(q, i);
}

/* ---------- lifecycle ---------- */

qt_queue *qt_queue_new(uint64_t aging_ms, int locked)
{
    if (aging_ms > QT_QUEUE_AGING_MAX_MS)
        return NULL;
    qt_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->aging_ms = aging_ms;
    q->free_head = NIL;
    q->locked = locked ? 1 : 0;
    if (q->locked) {
        pthread_condattr_t ca;
        if (pthread_mutex_init(&q->mu, NULL) != 0) {
            free(q);
            return NULL;
        }
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        int rc = pthread_cond_init(&q->cv, &ca);
        pthread_condattr_destroy(&ca);
        if (rc != 0) {
            pthread_mutex_destroy(&q->mu);
            free(q);
            return NULL;
        }
    }
    return q;
}

void qt_queue_free(qt_queue *q)
{
    if (!q)
        return;
    for (uint32_t i = 0; i < q->ents_hi; i++)
        if (q->ents[i].prio && q->ents[i].id_heap)
            free(q->ents[i].id.ptr);
    free(q->ents);
    for (uint32_t i = 0; i < q->nwfs; i++) {
        free(q->wfs[i].name);
        free(q->wfs[i].heap);
    }
    free(q->wfs);
    free(q->heads);
    for (uint32_t i = 0; i < q->nmodels; i++)
        free(q->models[i]);
    free(q->models);
    free(q->ids.b);
    free(q->wfmap.b);
    free(q->modelmap.b);
    if (q->locked) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
    }
    free(q);
}

/* ---------- operations ---------- */

static qt_err push_locked(qt_queue *q, const qt_queue_job *job, uint64_t now_ms)
{
    qt_err err = QT_OK;
    if (q->closed)
        return QT_ERR_CLOSED;
    if (q->n >= MAX_ENTRIES)
        return QT_ERR_LIMIT;
    if (map_find(q, &q->ids, key_id, job->id) != NIL)
        return QT_ERR_INVALID;
    const char *wname = (job->workflow && *job->workflow) ? job->workflow : "default";
    uint32_t w = wf_lookup(q, wname, 1, &err);
    if (w == NIL)
        return err;
    uint16_t model = model_lookup(q, job->model, &err);
    if (err != QT_OK)
        return err;
    qwf *wf = &q->wfs[w];
    if (wf->n == wf->cap) {
        uint32_t ncap = wf->cap ? (wf->cap < (1u << 30) ? wf->cap * 2 : MAX_ENTRIES) : 4;
        uint32_t *nh = realloc(wf->heap, (size_t)ncap * sizeof *nh);
        if (!nh)
            return QT_ERR_NOMEM;
        wf->heap = nh;
        wf->cap = ncap;
    }
    uint32_t i = ent_alloc(q);
    if (i == NIL)
        return QT_ERR_NOMEM;
    qent *e = &q->ents[i];
    memset(e, 0, sizeof *e);
    size_t idlen = strlen(job->id);
    if (idlen < ID_INLINE) {
        memcpy(e->id.inl, job->id, idlen + 1);
    } else {
        e->id.ptr = malloc(idlen + 1);
        if (!e->id.ptr) {
            e->slot = q->free_head; /* back to the free list (prio 0) */
            q->free_head = i;
            return QT_ERR_NOMEM;
        }
        memcpy(e->id.ptr, job->id, idlen + 1);
        e->id_heap = 1;
    }
    err = map_insert(q, &q->ids, key_id, i);
    if (err != QT_OK) {
        ent_release(q, i);
        return err;
    }
    if (now_ms < q->last_enq_ms)
        now_ms = q->last_enq_ms;
    q->last_enq_ms = now_ms;
    e->enq_ms = now_ms;
    e->prio = (uint8_t)job->priority;
    e->key = make_key(q, job->priority, now_ms);
    e->seq = q->next_seq++;
    e->payload = job->payload;
    e->wf = w;
    e->est_tokens = job->est_tokens;
    e->model = model;
    wf->heap[wf->n++] = i;
    e->slot = wf->n - 1;
    wf_sift_up(q, wf, wf->n - 1);
    head_fix(q, w);
    q->by_prio[job->priority - 1]++;
    q->n++;
    if (q->locked && !wf->paused && !q->paused_all)
        pthread_cond_signal(&q->cv);
    return QT_OK;
}

qt_err qt_queue_push(qt_queue *q, const qt_queue_job *job, uint64_t now_ms)
{
    if (!q || !job || !job->id || !*job->id || job->priority < QT_QUEUE_PRIO_MIN ||
        job->priority > QT_QUEUE_PRIO_MAX)
        return QT_ERR_INVALID;
    lock(q);
    qt_err err = push_locked(q, job, now_ms);
    unlock(q);
    return err;
}

static qt_err pop_locked(qt_queue *q, void **payload, qt_queue_view *view)
{
    if (q->paused_all || q->nheads == 0)
        return q->closed ? QT_ERR_CLOSED : QT_ERR_NOTFOUND;
    uint32_t i = q->wfs[q->heads[0]].heap[0];
    if (payload)
        *payload = q->ents[i].payload;
    if (view)
        fill_view(q, i, view);
    ent_remove(q, i, NIL);
    return QT_OK;
}

qt_err qt_queue_pop(qt_queue *q, void **payload, qt_queue_view *view)
{
    if (!q)
        return QT_ERR_INVALID;
    lock(q);
    qt_err err = pop_locked(q, payload, view);
    unlock(q);
    return err;
}

qt_err qt_queue_pop_wait(qt_queue *q, int64_t timeout_ms, void **payload,
                         qt_queue_view *view)
{
    if (!q || !q->locked)
        return QT_ERR_INVALID;
    struct timespec deadline;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&q->mu);
    qt_err err;
    for (;;) {
        err = pop_locked(q, payload, view);
        if (err != QT_ERR_NOTFOUND)
            break;
        if (timeout_ms == 0) {
            err = QT_ERR_TIMEOUT;
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&q->cv, &q->mu);
        } else if (pthread_cond_timedwait(&q->cv, &q->mu, &deadline) == ETIMEDOUT) {
            err = pop_locked(q, payload, view); /* one last look */
            if (err == QT_ERR_NOTFOUND)
                err = QT_ERR_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return err;
}

qt_err qt_queue_cancel(qt_queue *q, const char *id, void **payload)
{
    if (!q || !id)
        return QT_ERR_NOTFOUND;
    lock(q);
    qt_err err = QT_ERR_NOTFOUND;
    uint32_t b = map_find(q, &q->ids, key_id, id);
    if (b != NIL) {
        uint32_t i = q->ids.b[b];
        if (payload)
            *payload = q->ents[i].payload;
        ent_remove(q, i, b);
        err = QT_OK;
    }
    unlock(q);
    return err;
}

qt_err qt_queue_reprioritize(qt_queue *q, const char *id, int priority)
{
    if (!q || !id)
        return QT_ERR_NOTFOUND;
    if (priority < QT_QUEUE_PRIO_MIN || priority > QT_QUEUE_PRIO_MAX)
        return QT_ERR_INVALID;
    lock(q);
    qt_err err = QT_ERR_NOTFOUND;
    uint32_t b = map_find(q, &q->ids, key_id, id);
    if (b != NIL) {
        uint32_t i = q->ids.b[b];
        qent *e = &q->ents[i];
        qwf *wf = &q->wfs[e->wf];
        q->by_prio[e->prio - 1]--;
        q->by_prio[priority - 1]++;
        e->prio = (uint8_t)priority;
        e->key = make_key(q, priority, e->enq_ms);
        wf_sift_up(q, wf, e->slot);
        wf_sift_down(q, wf, e->slot);
        head_fix(q, e->wf);
        err = QT_OK;
    }
    unlock(q);
    return err;
}

int qt_queue_priority_of(qt_queue *q, const char *id)
{
    if (!q || !id)
        return 0;
    lock(q);
    uint32_t b = map_find(q, &q->ids, key_id, id);
    int p = b != NIL ? q->ents[q->ids.b[b]].prio : 0;
    unlock(q);
    return p;
}

void qt_queue_pause_all(qt_queue *q)
{
    if (!q)
        return;
    lock(q);
    q->paused_all = 1;
    unlock(q);
}

void qt_queue_resume_all(qt_queue *q)
{
    if (!q)
        return;
    lock(q);
    q->paused_all = 0;
    if (q->locked)
        pthread_cond_broadcast(&q->cv);
    unlock(q);
}

qt_err qt_queue_pause_workflow(qt_queue *q, const char *workflow)
{
    if (!q || !workflow)
        return QT_ERR_INVALID;
    qt_err err = QT_OK;
    lock(q);
    uint32_t w = wf_lookup(q, *workflow ? workflow : "default", 1, &err);
    if (w != NIL) {
        q->wfs[w].paused = 1;
        head_fix(q, w);
    }
    unlock(q);
    return err;
}

qt_err qt_queue_resume_workflow(qt_queue *q, const char *workflow)
{
    if (!q || !workflow)
        return QT_ERR_INVALID;
    lock(q);
    uint32_t w = wf_lookup(q, *workflow ? workflow : "default", 0, NULL);
    if (w != NIL && q->wfs[w].paused) {
        q->wfs[w].paused = 0;
        head_fix(q, w);
        if (q->locked)
            pthread_cond_broadcast(&q->cv);
    }
    unlock(q);
    return QT_OK;
}

int qt_queue_workflow_paused(qt_queue *q, const char *workflow)
{
    if (!q || !workflow)
        return 0;
    lock(q);
    uint32_t w = wf_lookup(q, *workflow ? workflow : "default", 0, NULL);
    int p = w != NIL && q->wfs[w].paused;
    unlock(q);
    return p;
}

void qt_queue_close(qt_queue *q)
{
    if (!q)
        return;
    lock(q);
    q->closed = 1;
    if (q->locked)
        pthread_cond_broadcast(&q->cv);
    unlock(q);
}

size_t qt_queue_drain(qt_queue *q, void **payloads, qt_queue_view *views,
                      size_t max)
{
    if (!q || !payloads)
        return 0;
    size_t k = 0;
    lock(q);
    for (uint32_t w = 0; w < q->nwfs && k < max; w++) {
        qwf *wf = &q->wfs[w];
        /* taking the last heap element keeps the heap valid: O(1) + map */
        while (wf->n > 0 && k < max) {
            uint32_t i = wf->heap[wf->n - 1];
            payloads[k] = q->ents[i].payload;
            if (views)
                fill_view(q, i, &views[k]);
            k++;
            ent_remove(q, i, NIL);
        }
    }
    unlock(q);
    return k;
}

void qt_queue_counts_get(qt_queue *q, qt_queue_counts *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!q)
        return;
    lock(q);
    out->total = q->n;
    for (uint32_t w = 0; w < q->nwfs; w++)
        if (!q->wfs[w].paused)
            out->ready += q->wfs[w].n;
    memcpy(out->by_priority, q->by_prio, sizeof out->by_priority);
    out->paused_all = q->paused_all;
    out->closed = q->closed;
    unlock(q);
}

size_t qt_queue_workflow_counts(qt_queue *q, qt_queue_workflow_count *out,
                                size_t max)
{
    if (!q)
        return 0;
    lock(q);
    size_t n = q->nwfs;
    for (size_t w = 0; w < n && w < max && out; w++) {
        copy_str(out[w].name, sizeof out[w].name, q->wfs[w].name);
        out[w].count = q->wfs[w].n;
        out[w].paused = q->wfs[w].paused;
    }
    unlock(q);
    return n;
}

/* A node of the snapshot walk: either position `pos` of `heads` (is_head) or
 * position `pos` of workflow `wf`'s heap. `ent` is the entry it stands for. */
typedef struct {
    uint32_t ent, wf, pos, is_head;
} cand;

static int cand_less(const qt_queue *q, const cand *a, const cand *b)
{
    return ent_less(q, a->ent, b->ent);
}

static void cand_push(const qt_queue *q, cand *h, size_t *n, cand c)
{
    size_t pos = (*n)++;
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (!cand_less(q, &c, &h[parent]))
            break;
        h[pos] = h[parent];
        pos = parent;
    }
    h[pos] = c;
}

static cand cand_pop(const qt_queue *q, cand *h, size_t *n)
{
    cand top = h[0], last = h[--*n];
    size_t pos = 0;
    for (;;) {
        size_t c = 2 * pos + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && cand_less(q, &h[c + 1], &h[c]))
            c++;
        if (!cand_less(q, &h[c], &last))
            break;
        h[pos] = h[c];
        pos = c;
    }
    if (*n > 0)
        h[pos] = last;
    return top;
}

static void offer_entry(const qt_queue *q, cand *h, size_t *n, uint32_t w, uint32_t pos)
{
    if (pos < q->wfs[w].n)
        cand_push(q, h, n, (cand){q->wfs[w].heap[pos], w, pos, 0});
}

static void offer_head(const qt_queue *q, cand *h, size_t *n, uint32_t hpos)
{
    if (hpos < q->nheads) {
        uint32_t w = q->heads[hpos];
        cand_push(q, h, n, (cand){q->wfs[w].heap[0], w, hpos, 1});
    }
}

size_t qt_queue_snapshot(qt_queue *q, uint64_t now_ms, int include_paused,
                         qt_queue_view *out, size_t max)
{
    if (!q || !out || max == 0)
        return 0;
    lock(q);
    size_t k = 0;
    size_t npaused = 0;
    if (include_paused)
        for (uint32_t w = 0; w < q->nwfs; w++)
            npaused += q->wfs[w].paused && q->wfs[w].n > 0;
    if (max > q->n)
        max = q->n;
    /* each step removes one candidate and offers at most four */
    size_t cap = 1 + npaused + 3 * max + 4;
    cand *h = max ? malloc(cap * sizeof *h) : NULL;
    if (h) {
        size_t n = 0;
        offer_head(q, h, &n, 0);
        for (uint32_t w = 0; include_paused && w < q->nwfs; w++)
            if (q->wfs[w].paused)
                offer_entry(q, h, &n, w, 0);
        while (k < max && n > 0) {
            cand c = cand_pop(q, h, &n);
            fill_view(q, c.ent, &out[k]);
            out[k].effective_priority = qt_queue_effective_priority(
                q->aging_ms, out[k].priority, out[k].enqueue_ms, now_ms);
            k++;
            if (c.is_head) {
                offer_head(q, h, &n, 2 * c.pos + 1);
                offer_head(q, h, &n, 2 * c.pos + 2);
                offer_entry(q, h, &n, c.wf, 1);
                offer_entry(q, h, &n, c.wf, 2);
            } else {
                offer_entry(q, h, &n, c.wf, 2 * c.pos + 1);
                offer_entry(q, h, &n, c.wf, 2 * c.pos + 2);
            }
        }
        free(h);
    }
    unlock(q);
    return k;
}

int qt_queue_effective_priority(uint64_t aging_ms, int priority,
                                uint64_t enqueue_ms, uint64_t now_ms)
{
    if (aging_ms == 0 || now_ms <= enqueue_ms)
        return priority;
    uint64_t levels = (now_ms - enqueue_ms) / aging_ms;
    if (levels >= (uint64_t)priority)
        return QT_QUEUE_PRIO_MIN;
    int p = priority - (int)levels;
    return p < QT_QUEUE_PRIO_MIN ? QT_QUEUE_PRIO_MIN : p;
}
