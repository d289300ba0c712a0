/* replay_report.c: gathering one replay's (or the recording's) outcome
 * (replay_report.h). Waits are kept per job and group and sorted once at
 * the end for exact percentiles; the queue depth over time comes from each
 * job's arrival and wait (a job is queued from its arrival until its first
 * request), as the most jobs queued at once within each sparkline column.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay_report.h"

void rp_outcome_init(rp_outcome *o, const char *name)
{
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    for (int p = 1; p <= 10; p++)
        snprintf(o->prio[p].name, sizeof o->prio[p].name, "priority %d", p);
}

static void group_free(rp_group *g)
{
    free(g->waits);
    g->waits = NULL;
}

void rp_outcome_free(rp_outcome *o)
{
    for (size_t i = 0; i < o->n_wfs; i++)
        group_free(&o->wfs[i]);
    for (int p = 0; p <= 10; p++)
        group_free(&o->prio[p]);
    free(o->wfs);
    free(o->flows);
    free(o->limits);
    free(o->arr_wait);
    free(o->sent);
    memset(o, 0, sizeof *o);
}

static void group_add(rp_group *g, qt_status st, double cost, uint64_t wait)
{
    g->jobs++;
    g->ok += st == QT_STATUS_OK;
    g->failed += st == QT_STATUS_FAILED;
    g->rejected += st == QT_STATUS_REJECTED;
    g->other += st != QT_STATUS_OK && st != QT_STATUS_FAILED && st != QT_STATUS_REJECTED;
    g->cost_usd += cost;
    if (g->n_waits == g->cap_waits) {
        size_t nc = g->cap_waits ? g->cap_waits * 2 : 64;
        uint32_t *w = realloc(g->waits, nc * sizeof *w);
        if (!w)
            return;
        g->waits = w;
        g->cap_waits = nc;
    }
    g->waits[g->n_waits++] = wait > UINT32_MAX ? UINT32_MAX : (uint32_t)wait;
}

static rp_group *wf_group(rp_outcome *o, const char *name)
{
    for (size_t i = 0; i < o->n_wfs; i++)
        if (!strcmp(o->wfs[i].name, name))
            return &o->wfs[i];
    rp_group *n = realloc(o->wfs, (o->n_wfs + 1) * sizeof *n);
    if (!n)
        return NULL;
    o->wfs = n;
    rp_group *g = &o->wfs[o->n_wfs++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    return g;
}

static void add_flow(rp_outcome *o, const char *from, const char *to)
{
    for (size_t i = 0; i < o->n_flows; i++)
        if (!strcmp(o->flows[i].from, from) && !strcmp(o->flows[i].to, to)) {
            o->flows[i].n++;
            return;
        }
    rp_flow *n = realloc(o->flows, (o->n_flows + 1) * sizeof *n);
    if (!n)
        return;
    o->flows = n;
    rp_flow *f = &o->flows[o->n_flows++];
    snprintf(f->from, sizeof f->from, "%s", from);
    snprintf(f->to, sizeof f->to, "%s", to);
    f->n = 1;
}

void rp_outcome_add(rp_outcome *o, const char *workflow, int priority, qt_status st,
                    const char *model, const char *model_used, double cost_usd, uint64_t wait_ms,
                    uint64_t arrival_ms, uint64_t end_ms)
{
    o->jobs++;
    switch (st) {
    case QT_STATUS_OK:       o->ok++; break;
    case QT_STATUS_FAILED:   o->failed++; break;
    case QT_STATUS_REJECTED: o->rejected++; break;
    case QT_STATUS_CANCELLED: o->cancelled++; break;
    default:                 o->invalid++; break;
    }
    o->cost_usd += cost_usd;
    rp_group *g = wf_group(o, workflow && *workflow ? workflow : "default");
    if (g)
        group_add(g, st, cost_usd, wait_ms);
    group_add(&o->prio[priority >= 1 && priority <= 10 ? priority : 0], st, cost_usd, wait_ms);
    if (st == QT_STATUS_OK && model && model_used && *model_used && strcmp(model, model_used))
        add_flow(o, model, model_used);
    if (end_ms > o->end_ms)
        o->end_ms = end_ms;
    if (o->n_arr == o->cap_arr) {
        size_t nc = o->cap_arr ? o->cap_arr * 2 : 256;
        uint64_t *v = realloc(o->arr_wait, nc * 2 * sizeof *v);
        if (!v)
            return;
        o->arr_wait = v;
        o->cap_arr = nc;
    }
    o->arr_wait[2 * o->n_arr] = arrival_ms;
    o->arr_wait[2 * o->n_arr + 1] = wait_ms;
    o->n_arr++;
}

void rp_outcome_limit(rp_outcome *o, const rp_limit *l)
{
    for (size_t i = 0; i < o->n_limits; i++)
        if (!strcmp(o->limits[i].name, l->name)) {
            o->limits[i] = *l;
            return;
        }
    rp_limit *n = realloc(o->limits, (o->n_limits + 1) * sizeof *n);
    if (!n)
        return;
    o->limits = n;
    o->limits[o->n_limits++] = *l;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void group_finish(rp_group *g)
{
    if (!g->n_waits)
        return;
    qsort(g->waits, g->n_waits, sizeof *g->waits, cmp_u32);
    /* nearest rank */
    size_t i50 = (g->n_waits * 50 + 99) / 100, i95 = (g->n_waits * 95 + 99) / 100;
    g->p50 = g->waits[i50 ? i50 - 1 : 0];
    g->p95 = g->waits[i95 ? i95 - 1 : 0];
    g->max = g->waits[g->n_waits - 1];
}

/* Most jobs queued at once per column: +1 at arrival, -1 at dispatch, swept
 * in time order. */
static int cmp_ev(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];   /* departures before arrivals at one time */
}

static void depth_series(rp_outcome *o)
{
    if (!o->n_arr || !o->end_ms)
        return;
    int64_t *ev = malloc(o->n_arr * 4 * sizeof *ev);
    if (!ev)
        return;
    size_t n = 0;
    for (size_t i = 0; i < o->n_arr; i++) {
        if (!o->arr_wait[2 * i + 1])
            continue;
        ev[2 * n] = (int64_t)o->arr_wait[2 * i];
        ev[2 * n++ + 1] = 1;
        ev[2 * n] = (int64_t)(o->arr_wait[2 * i] + o->arr_wait[2 * i + 1]);
        ev[2 * n++ + 1] = -1;
    }
    qsort(ev, n, 2 * sizeof *ev, cmp_ev);
    int64_t depth = 0;
    double col_ms = (double)o->end_ms / RP_SERIES;
    for (size_t i = 0; i < n; i++) {
        depth += ev[2 * i + 1];
        size_t c = col_ms > 0 ? (size_t)((double)ev[2 * i] / col_ms) : 0;
        if (c >= RP_SERIES)
            c = RP_SERIES - 1;
        if (depth > 0 && (uint64_t)depth > o->depth[c])
            o->depth[c] = (uint32_t)depth;
        if (depth > 0 && (uint64_t)depth > o->depth_peak)
            o->depth_peak = (uint64_t)depth;
    }
    free(ev);
}

/* Requests per minute in RP_SERIES columns: each column's rate (its
 * requests scaled to a minute); the peak is the most in any 60 s. */
static void rpm_series(rp_outcome *o)
{
    if (!o->n_sent)
        return;
    size_t w = (o->n_sent + RP_SERIES - 1) / RP_SERIES;
    uint64_t col[RP_SERIES] = { 0 }, sum = 0;
    for (size_t t = 0; t < o->n_sent; t++) {
        col[t / w] += o->sent[t];
        sum += o->sent[t];
        if (t >= 60)
            sum -= o->sent[t - 60];
        if (sum > o->rpm_peak)
            o->rpm_peak = sum;
    }
    for (size_t c = 0; c < RP_SERIES; c++)
        o->rpm[c] = (uint32_t)(col[c] * 60 / w);
}

void rp_outcome_finish(rp_outcome *o)
{
    for (size_t i = 0; i < o->n_wfs; i++)
        group_finish(&o->wfs[i]);
    for (int p = 0; p <= 10; p++)
        group_finish(&o->prio[p]);
    o->elapsed_s = (double)o->end_ms / 1000.0;
    depth_series(o);
    rpm_series(o);
}

/* ---- the recording's own outcome ---- */

/* The most of a per-second series in any 60 consecutive seconds. */
static uint64_t peak60(const uint32_t *v, size_t n)
{
    uint64_t sum = 0, best = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        if (i >= 60)
            sum -= v[i - 60];
        best = sum > best ? sum : best;
    }
    return best;
}

/* Peak requests and tokens per (provider, model) of the recorded attempts
 * (their start times as recorded, estimated for older traces; see
 * trace_read.c) against the limits the provider announced in its headers,
 * else the recording's configured limits. */
static void recorded_limits(rp_outcome *o, const qt_trace_data *d)
{
    uint64_t secs = 0;
    for (size_t i = 0; i < d->n_att; i++)
        secs = d->att[i].t_ms / 1000 + 1 > secs ? d->att[i].t_ms / 1000 + 1 : secs;
    if (!secs || secs > 40ull * 86400)
        return;
    uint32_t *rq = malloc(secs * sizeof *rq), *tk = malloc(secs * sizeof *tk);
    for (size_t m = 0; rq && tk && m < d->n_models; m++) {
        const qt_trace_model *md = &d->models[m];
        for (int p = 0; p < md->n_providers; p++) {
            memset(rq, 0, secs * sizeof *rq);
            memset(tk, 0, secs * sizeof *tk);
            uint64_t n429 = 0, any = 0;
            const qt_trace_attempt *latest = NULL;
            for (size_t r = 0; r < d->n_reqs; r++) {
                const qt_trace_req *q = &d->reqs[r];
                for (uint32_t k = 0; k < q->n_att; k++) {
                    const qt_trace_attempt *a = &d->att[q->att0 + k];
                    if (a->model != md->name || a->provider != md->providers[p])
                        continue;
                    any = 1;
                    if ((a->limit_rpm || a->limit_tpm) && (!latest || a->t_ms >= latest->t_ms))
                        latest = a;
                    rq[a->t_ms / 1000]++;
                    tk[a->t_ms / 1000] += (uint32_t)(q->prompt + (q->max_tokens ? q->max_tokens : q->completion));
                    n429 += a->status == 429;
                }
            }
            if (!any)
                continue;
            rp_limit l = { .up_rpm = (uint64_t)md->rpm, .up_tpm = (uint64_t)md->tpm,
                           .peak_rpm = peak60(rq, secs), .peak_tpm = peak60(tk, secs),
                           .rate_limited = n429 };
            if (latest) {   /* what the provider's headers announced, as the replay uses */
                l.up_rpm = latest->limit_rpm;
                l.up_tpm = latest->limit_tpm;
                l.up_source = QT_SIM_LIMITS_HEADERS;
            }
            snprintf(l.name, sizeof l.name, "%s/%s", qt_trace_name(d, md->providers[p]),
                     qt_trace_name(d, md->upstream));
            rp_outcome_limit(o, &l);
        }
    }
    free(rq);
    free(tk);
}

void rp_outcome_from_trace(rp_outcome *o, const qt_trace_data *d)
{
    uint64_t last_sec = 0;
    for (size_t i = 0; i < d->n_reqs; i++) {
        const qt_trace_req *r = &d->reqs[i];
        rp_outcome_add(o, qt_trace_name(d, r->wf), r->prio, (qt_status)r->status,
                       qt_trace_name(d, r->model), qt_trace_name(d, r->model_used), r->cost_usd,
                       r->wait_ms, r->t_ms, r->done_ms);
        o->requests += (uint64_t)r->n_attempts;
        o->retries += r->n_attempts > 1 ? (uint64_t)r->n_attempts - 1 : 0;
        if (r->model_used >= 0 && r->model_used != r->model)
            o->fallbacks++;
        for (uint32_t k = 0; k < r->n_att; k++) {
            const qt_trace_attempt *a = &d->att[r->att0 + k];
            o->upstream_429 += a->status == 429;
            if (a->t_ms / 1000 + 1 > last_sec)
                last_sec = a->t_ms / 1000 + 1;
        }
    }
    recorded_limits(o, d);
    if (last_sec > 40ull * 86400)
        last_sec = 40ull * 86400;
    o->sent = last_sec ? calloc(last_sec, sizeof *o->sent) : NULL;
    if (o->sent) {
        o->n_sent = last_sec;
        for (size_t i = 0; i < d->n_att; i++)
            if (d->att[i].t_ms / 1000 < last_sec)
                o->sent[d->att[i].t_ms / 1000]++;
    }
}
