/* mock_model.c: the model table of a mock: per-model buckets, outage
 * windows and counters. The caller (mock.c) holds the mock's lock around
 * every call; nothing here blocks or does I/O.
 *
 * Buckets: a limit L per minute is a bucket of capacity c = max(1, L/60)
 * refilled at r = L/60 per second. A cost k fits when level >= k, or, when
 * k > c, when the bucket is full (an oversize request is not impossible; it
 * leaves the bucket in debt). Because the level and a per-minute bucket of
 * capacity L refilled at the same rate always have the same deficit, the
 * headers report the per-minute view: remaining = L - (c - level), reset =
 * (c - level) / r, which is what OpenAI's "time until the limit resets to
 * its initial state" means.
 *
 * max_1s: each arrival pushes its time on a ring and drops times older than
 * 1 s; the ring's length after the push is the number of arrivals in the
 * last second, and max_1s is its maximum (exact up to MOCK_RING_MAX/s).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mock_int.h"

double mock_bucket_cap(uint64_t limit)
{
    double c = (double)limit / 60.0;
    return c < 1.0 ? 1.0 : c;
}

void mock_bucket_refill(mock_bucket *b, uint64_t limit, uint64_t now_ms)
{
    if (limit == 0 || now_ms <= b->last_ms) {
        if (now_ms > b->last_ms)
            b->last_ms = now_ms;
        return;
    }
    double cap = mock_bucket_cap(limit);
    b->level += (double)(now_ms - b->last_ms) * (double)limit / 60000.0;
    if (b->level > cap)
        b->level = cap;
    b->last_ms = now_ms;
}

#define EPS 1e-9

bool mock_bucket_fits(const mock_bucket *b, uint64_t limit, uint64_t cost, uint64_t *wait_ms)
{
    *wait_ms = 0;
    if (limit == 0)
        return true;
    double cap = mock_bucket_cap(limit);
    double need = (double)cost > cap ? cap : (double)cost;
    if (b->level + EPS >= need)
        return true;
    *wait_ms = (uint64_t)ceil((need - b->level) * 60000.0 / (double)limit);
    if (*wait_ms == 0)
        *wait_ms = 1;
    return false;
}

uint64_t mock_bucket_remaining(const mock_bucket *b, uint64_t limit)
{
    double deficit = mock_bucket_cap(limit) - b->level;
    double rem = floor((double)limit - deficit + EPS);
    return rem <= 0 ? 0 : (uint64_t)rem;
}

uint64_t mock_bucket_reset_ms(const mock_bucket *b, uint64_t limit)
{
    if (limit == 0)
        return 0;
    double deficit = mock_bucket_cap(limit) - b->level;
    if (deficit <= EPS)
        return 0;
    return (uint64_t)ceil(deficit * 60000.0 / (double)limit);
}

/* ---- counters ---- */

void mock_counts_arrive(mock_counts *c, uint64_t now_ms)
{
    c->requests++;
    while (c->rlen && c->ring[c->rhead] + 1000 <= now_ms) {
        c->rhead = (c->rhead + 1) % c->rcap;
        c->rlen--;
    }
    if (c->rlen == c->rcap && c->rcap < MOCK_RING_MAX) {
        size_t ncap = c->rcap ? c->rcap * 2 : 64;
        uint64_t *n = malloc(ncap * sizeof *n);
        if (n) {
            for (size_t i = 0; i < c->rlen; i++)
                n[i] = c->ring[(c->rhead + i) % c->rcap];
            free(c->ring);
            c->ring = n;
            c->rcap = ncap;
            c->rhead = 0;
        }
    }
    if (c->rcap == 0)
        return;                               /* out of memory: no max_1s */
    if (c->rlen == c->rcap) {                 /* full at MOCK_RING_MAX: drop oldest */
        c->rhead = (c->rhead + 1) % c->rcap;
        c->rlen--;
    }
    c->ring[(c->rhead + c->rlen) % c->rcap] = now_ms;
    c->rlen++;
    if (c->rlen > c->max_1s)
        c->max_1s = c->rlen;
}

void mock_counts_reset(mock_counts *c)
{
    uint64_t in_flight = c->in_flight;
    uint64_t *ring = c->ring;
    size_t rcap = c->rcap;
    memset(c, 0, sizeof *c);
    c->ring = ring;
    c->rcap = rcap;
    c->in_flight = in_flight;      /* still running: they will decrement it */
    c->max_in_flight = in_flight;
}

/* ---- the table ---- */

void mock_table_free(mock_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i]->c.ring);
        free(t->v[i]);
    }
    free(t->v);
    free(t->total.ring);
    memset(t, 0, sizeof *t);
}

mock_model *mock_table_get(mock_table *t, const char *name, bool create,
                           const qt_mock_model_opts *defaults, uint64_t now_ms)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i]->o.name, name))
            return t->v[i];
    if (!create || t->n >= MOCK_MAX_MODELS || strlen(name) >= QT_MOCK_NAME_MAX)
        return NULL;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        mock_model **v = realloc(t->v, ncap * sizeof *v);
        if (!v)
            return NULL;
        t->v = v;
        t->cap = ncap;
    }
    mock_model *md = calloc(1, sizeof *md);
    if (!md)
        return NULL;
    t->v[t->n++] = md;
    md->o = *defaults;
    strcpy(md->o.name, name);
    md->req.level = mock_bucket_cap(md->o.rpm);
    md->req.last_ms = now_ms;
    md->tok.level = mock_bucket_cap(md->o.tpm);
    md->tok.last_ms = now_ms;
    return md;
}

bool mock_in_outage(const mock_table *t, const mock_model *md, uint64_t start_ms,
                    uint64_t now_ms)
{
    if (t->out_to > t->out_from && now_ms >= t->out_from && now_ms < t->out_to)
        return true;
    if (!md)
        return false;
    if (md->out_to > md->out_from && now_ms >= md->out_from && now_ms < md->out_to)
        return true;
    return md->o.outage_end_ms > md->o.outage_start_ms &&
           now_ms >= start_ms + md->o.outage_start_ms &&
           now_ms < start_ms + md->o.outage_end_ms;
}
