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
 * This file holds that core and the operations on single entries (push, pop,
 * cancel, reprioritize). queue_ctl.c holds the controls and readers
 * over the whole queue (pause, resume, close, drain, counts, snapshot); the
 * state both share is in queue_int.h. Pure: no locks, no threads, no clock.
 */
#include "quotatop/queue.h"

#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

#define MAX_ENTRIES (UINT32_MAX - 1u)
#define MAX_MODELS 65535u

/* ---------- hash maps ---------- */

typedef const char *(*keyfn)(const qt_queue *q, uint32_t v);

static const char *key_id(const qt_queue *q, uint32_t v) { return ent_id(&q->ents[v]); }
static const char *key_wf(const qt_queue *q, uint32_t v) { return q->wfs[v].name; }
static const char *key_model(const qt_queue *q, uint32_t v) { return q->models[v]; }

static uint32_t hash_str(const char *s)
{
    uint64_t h = qt_hash_str(QT_HASH_SEED, s);
    return (uint32_t)(h ^ (h >> 32));   /* folded to the table's width */
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
void queue_head_fix(qt_queue *q, uint32_t w)
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
uint32_t queue_wf_lookup(qt_queue *q, const char *name, int add, qt_err *err)
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

void queue_copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void queue_fill_view(const qt_queue *q, uint32_t i, qt_queue_view *v)
{
    const qent *e = &q->ents[i];
    queue_copy_str(v->id, sizeof v->id, ent_id(e));
    queue_copy_str(v->workflow, sizeof v->workflow, q->wfs[e->wf].name);
    queue_copy_str(v->model, sizeof v->model, e->model ? q->models[e->model - 1] : "");
    v->priority = e->prio;
    v->effective_priority = e->prio;
    v->paused = q->wfs[e->wf].paused;
    v->enqueue_ms = e->enq_ms;
    v->est_tokens = e->est_tokens;
    v->seq = e->seq;
    v->payload = e->payload;
}

/* Unlinks entry i from its heap, the id map and the counts, and frees it. */
void queue_ent_remove(qt_queue *q, uint32_t i, uint32_t id_bucket)
{
    qent *e = &q->ents[i];
    uint32_t w = e->wf;
    if (id_bucket == NIL)
        id_bucket = map_find(q, &q->ids, key_id, ent_id(e));
    map_remove_at(q, &q->ids, key_id, id_bucket);
    wf_remove(q, &q->wfs[w], e->slot);
    queue_head_fix(q, w);
    q->by_prio[e->prio - 1]--;
    q->n--;
    ent_release(q, i);
}

/* ---------- lifecycle ---------- */

qt_queue *qt_queue_new(uint64_t aging_ms)
{
    if (aging_ms > QT_QUEUE_AGING_MAX_MS)
        return NULL;
    qt_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->aging_ms = aging_ms;
    q->free_head = NIL;
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
    free(q);
}

/* ---------- operations ---------- */

static qt_err push_one(qt_queue *q, const qt_queue_job *job, uint64_t now_ms)
{
    qt_err err = QT_OK;
    if (q->closed && !job->keep_place)   /* a job coming back is not new intake */
        return QT_ERR_CLOSED;
    if (q->n >= MAX_ENTRIES)
        return QT_ERR_LIMIT;
    if (map_find(q, &q->ids, key_id, job->id) != NIL)
        return QT_ERR_INVALID;
    const char *wname = (job->workflow && *job->workflow) ? job->workflow : "default";
    uint32_t w = queue_wf_lookup(q, wname, 1, &err);
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
    if (job->keep_place) {
        /* Back at the place it had: its enqueue time and FIFO number. */
        now_ms = job->keep_enqueue_ms;
        e->seq = job->keep_seq;
    } else {
        if (now_ms < q->last_enq_ms)
            now_ms = q->last_enq_ms;
        q->last_enq_ms = now_ms;
        e->seq = q->next_seq++;
    }
    e->enq_ms = now_ms;
    e->prio = (uint8_t)job->priority;
    e->key = make_key(q, job->priority, now_ms);
    e->payload = job->payload;
    e->wf = w;
    e->est_tokens = job->est_tokens;
    e->model = model;
    wf->heap[wf->n++] = i;
    e->slot = wf->n - 1;
    wf_sift_up(q, wf, wf->n - 1);
    queue_head_fix(q, w);
    q->by_prio[job->priority - 1]++;
    q->n++;
    return QT_OK;
}

qt_err qt_queue_push(qt_queue *q, const qt_queue_job *job, uint64_t now_ms)
{
    if (!q || !job || !job->id || !*job->id || job->priority < QT_QUEUE_PRIO_MIN ||
        job->priority > QT_QUEUE_PRIO_MAX)
        return QT_ERR_INVALID;
    qt_err err = push_one(q, job, now_ms);
    return err;
}

static qt_err pop_one(qt_queue *q, void **payload, qt_queue_view *view)
{
    if (q->paused_all || q->nheads == 0)
        return q->closed ? QT_ERR_CLOSED : QT_ERR_NOTFOUND;
    uint32_t i = q->wfs[q->heads[0]].heap[0];
    if (payload)
        *payload = q->ents[i].payload;
    if (view)
        queue_fill_view(q, i, view);
    queue_ent_remove(q, i, NIL);
    return QT_OK;
}

qt_err qt_queue_pop(qt_queue *q, void **payload, qt_queue_view *view)
{
    if (!q)
        return QT_ERR_INVALID;
    qt_err err = pop_one(q, payload, view);
    return err;
}

qt_err qt_queue_cancel(qt_queue *q, const char *id, void **payload)
{
    if (!q || !id)
        return QT_ERR_NOTFOUND;
    qt_err err = QT_ERR_NOTFOUND;
    uint32_t b = map_find(q, &q->ids, key_id, id);
    if (b != NIL) {
        uint32_t i = q->ids.b[b];
        if (payload)
            *payload = q->ents[i].payload;
        queue_ent_remove(q, i, b);
        err = QT_OK;
    }
    return err;
}

qt_err qt_queue_reprioritize(qt_queue *q, const char *id, int priority)
{
    if (!q || !id)
        return QT_ERR_NOTFOUND;
    if (priority < QT_QUEUE_PRIO_MIN || priority > QT_QUEUE_PRIO_MAX)
        return QT_ERR_INVALID;
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
        queue_head_fix(q, e->wf);
        err = QT_OK;
    }
    return err;
}

int qt_queue_priority_of(qt_queue *q, const char *id)
{
    if (!q || !id)
        return 0;
    uint32_t b = map_find(q, &q->ids, key_id, id);
    int p = b != NIL ? q->ents[q->ids.b[b]].prio : 0;
    return p;
}
