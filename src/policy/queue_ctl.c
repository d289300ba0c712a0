/* queue_ctl.c: the queue's controls and readers over the whole queue:
 * pause and resume (all, or one workflow), close, drain, counts, and the
 * ordered snapshot. queue.c holds the pool, maps and heaps they work on
 * (shared through queue_int.h).
 *
 * DESIGN
 * Pausing flips a flag and lets queue_head_fix take the workflow out of
 * `heads`.
 *
 * Snapshot walks the heaps in order without modifying them: an auxiliary
 * min-heap of candidate nodes starts with the root of `heads`; taking a
 * `heads` node offers its two children in `heads` and the two children of
 * that workflow's root; taking an entry node offers its two heap children.
 * The first N entries in pop order thus cost O(N log N).
 */
#include "quotatop/queue.h"

#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

/* ---------- pause, resume, close ---------- */

void qt_queue_pause_all(qt_queue *q)
{
    if (!q)
        return;
    q->paused_all = 1;
}

void qt_queue_resume_all(qt_queue *q)
{
    if (!q)
        return;
    q->paused_all = 0;
}

qt_err qt_queue_pause_workflow(qt_queue *q, const char *workflow)
{
    if (!q || !workflow)
        return QT_ERR_INVALID;
    qt_err err = QT_OK;
    uint32_t w = queue_wf_lookup(q, *workflow ? workflow : "default", 1, &err);
    if (w != NIL) {
        q->wfs[w].paused = 1;
        queue_head_fix(q, w);
    }
    return err;
}

qt_err qt_queue_resume_workflow(qt_queue *q, const char *workflow)
{
    if (!q || !workflow)
        return QT_ERR_INVALID;
    uint32_t w = queue_wf_lookup(q, *workflow ? workflow : "default", 0, NULL);
    if (w != NIL && q->wfs[w].paused) {
        q->wfs[w].paused = 0;
        queue_head_fix(q, w);
    }
    return QT_OK;
}

int qt_queue_workflow_paused(qt_queue *q, const char *workflow)
{
    if (!q || !workflow)
        return 0;
    uint32_t w = queue_wf_lookup(q, *workflow ? workflow : "default", 0, NULL);
    int p = w != NIL && q->wfs[w].paused;
    return p;
}

void qt_queue_close(qt_queue *q)
{
    if (!q)
        return;
    q->closed = 1;
}

/* ---------- drain and counts ---------- */

size_t qt_queue_drain(qt_queue *q, void **payloads, qt_queue_view *views,
                      size_t max)
{
    if (!q || !payloads)
        return 0;
    size_t k = 0;
    for (uint32_t w = 0; w < q->nwfs && k < max; w++) {
        qwf *wf = &q->wfs[w];
        /* taking the last heap element keeps the heap valid: O(1) + map */
        while (wf->n > 0 && k < max) {
            uint32_t i = wf->heap[wf->n - 1];
            payloads[k] = q->ents[i].payload;
            if (views)
                queue_fill_view(q, i, &views[k]);
            k++;
            queue_ent_remove(q, i, NIL);
        }
    }
    return k;
}

void qt_queue_counts_get(qt_queue *q, qt_queue_counts *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!q)
        return;
    out->total = q->n;
    for (uint32_t w = 0; w < q->nwfs; w++)
        if (!q->wfs[w].paused)
            out->ready += q->wfs[w].n;
    memcpy(out->by_priority, q->by_prio, sizeof out->by_priority);
    out->paused_all = q->paused_all;
    out->closed = q->closed;
}

size_t qt_queue_workflow_counts(qt_queue *q, qt_queue_workflow_count *out,
                                size_t max)
{
    if (!q)
        return 0;
    size_t n = q->nwfs;
    for (size_t w = 0; w < n && w < max && out; w++) {
        queue_copy_str(out[w].name, sizeof out[w].name, q->wfs[w].name);
        out[w].count = q->wfs[w].n;
        out[w].paused = q->wfs[w].paused;
    }
    return n;
}

/* ---------- snapshot ---------- */

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

/* Offers what follows c in pop order: its children in the heap of ready
 * workflows and, for a workflow's head, the head's children in that
 * workflow's heap. */
static void offer_children(const qt_queue *q, cand *h, size_t *n, const cand *c)
{
    if (c->is_head) {
        offer_head(q, h, n, 2 * c->pos + 1);
        offer_head(q, h, n, 2 * c->pos + 2);
        offer_entry(q, h, n, c->wf, 1);
        offer_entry(q, h, n, c->wf, 2);
    } else {
        offer_entry(q, h, n, c->wf, 2 * c->pos + 1);
        offer_entry(q, h, n, c->wf, 2 * c->pos + 2);
    }
}

size_t qt_queue_snapshot(qt_queue *q, uint64_t now_ms, int include_paused,
                         qt_queue_view *out, size_t max)
{
    if (!q || !out || max == 0)
        return 0;
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
            queue_fill_view(q, c.ent, &out[k]);
            out[k].effective_priority = qt_queue_effective_priority(
                q->aging_ms, out[k].priority, out[k].enqueue_ms, now_ms);
            k++;
            offer_children(q, h, &n, &c);
        }
        free(h);
    }
    return k;
}

qt_err qt_queue_pop_first(qt_queue *q, uint64_t now_ms, size_t window,
                          int (*accept)(void *ud, const qt_queue_view *v), void *ud,
                          void **payload, qt_queue_view *view)
{
    if (!q || !accept || window == 0)
        return QT_ERR_INVALID;
    if (q->paused_all || q->nheads == 0) {
        qt_err r = q->closed ? QT_ERR_CLOSED : QT_ERR_NOTFOUND;
        return r;
    }
    if (window > q->n)
        window = q->n;
    /* The snapshot walk over ready entries only (paused workflows are not
     * in `heads`): each step removes one candidate and offers at most four. */
    size_t cap = 3 * window + 5, n = 0, seen = 0;
    cand *h = malloc(cap * sizeof *h);
    if (!h) {
        return QT_ERR_NOMEM;
    }
    uint32_t found = NIL;
    qt_queue_view v;
    offer_head(q, h, &n, 0);
    while (seen < window && n > 0) {
        cand c = cand_pop(q, h, &n);
        queue_fill_view(q, c.ent, &v);
        v.effective_priority = qt_queue_effective_priority(q->aging_ms, v.priority,
                                                           v.enqueue_ms, now_ms);
        seen++;
        if (accept(ud, &v)) {
            found = c.ent;
            break;
        }
        offer_children(q, h, &n, &c);
    }
    free(h);
    if (found == NIL) {
        return QT_ERR_LIMIT;
    }
    if (payload)
        *payload = q->ents[found].payload;
    if (view)
        *view = v;
    queue_ent_remove(q, found, NIL);
    return QT_OK;
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
