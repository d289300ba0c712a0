/* ctl_json.c: frames, job details and commands as JSON (the control socket's
 * and the proxy's /control/ wire form).
 *
 * DESIGN
 * Each struct is described once by a table of (name, kind, offset) fields;
 * one writer and one reader walk the tables, so the two directions cannot
 * drift (the fleet's view, with the shared backend, is one more such table
 * set: processes, rate keys, pauses). Reading is bounded: arrays stop at their caps, strings are cut to
 * their fixed buffers, numbers are clamped to what the field holds, and a
 * field that is missing or of the wrong type keeps zero. Nothing read from
 * the wire is trusted to be NUL-terminated or in range.
 */
#include "quotatop/ctl.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

typedef enum { F_STR, F_INT, F_U64, F_SIZE, F_DBL, F_U32A120, F_STATE, F_TYPE } fkind;

typedef struct {
    const char *name;
    fkind kind;
    size_t off, len;   /* len: F_STR buffer size */
} field;

#define S(T, f) { #f, F_STR, offsetof(T, f), sizeof(((T *)0)->f) }
#define I(T, f) { #f, F_INT, offsetof(T, f), 0 }
#define U(T, f) { #f, F_U64, offsetof(T, f), 0 }
#define Z(T, f) { #f, F_SIZE, offsetof(T, f), 0 }
#define D(T, f) { #f, F_DBL, offsetof(T, f), 0 }

static const field row_f[] = {
    S(qt_engine_row, name), I(qt_engine_row, is_provider), S(qt_engine_row, circuit),
    U(qt_engine_row, next_probe_in_ms), D(qt_engine_row, rpm), D(qt_engine_row, tpm),
    D(qt_engine_row, cfg_rpm), D(qt_engine_row, cfg_tpm), I(qt_engine_row, changed_live),
    U(qt_engine_row, requests_60s), U(qt_engine_row, tokens_60s), I(qt_engine_row, in_flight),
    I(qt_engine_row, max_concurrent), U(qt_engine_row, requests), U(qt_engine_row, ok),
    U(qt_engine_row, rate_limited), U(qt_engine_row, errors), U(qt_engine_row, retries),
    U(qt_engine_row, fallbacks), U(qt_engine_row, prompt_tokens), U(qt_engine_row, completion_tokens),
    U(qt_engine_row, cached_tokens), U(qt_engine_row, cache_write_tokens), D(qt_engine_row, cost_usd), D(qt_engine_row, p50_ms), D(qt_engine_row, p95_ms),
    U(qt_engine_row, held_until_in_ms),
    { "rps", F_U32A120, offsetof(qt_engine_row, rps), 0 },
    { "tps", F_U32A120, offsetof(qt_engine_row, tps), 0 },
};

static const field wf_f[] = {
    S(qt_engine_wf, name), U(qt_engine_wf, jobs), U(qt_engine_wf, done), U(qt_engine_wf, ok),
    U(qt_engine_wf, failed), U(qt_engine_wf, rejected), U(qt_engine_wf, cancelled),
    U(qt_engine_wf, invalid), U(qt_engine_wf, calls), U(qt_engine_wf, prompt_tokens),
    U(qt_engine_wf, completion_tokens), D(qt_engine_wf, cost_usd), D(qt_engine_wf, limit_usd),
    Z(qt_engine_wf, queued), I(qt_engine_wf, paused),
};

static const field snap_f[] = {
    U(qt_engine_snapshot, uptime_ms), I(qt_engine_snapshot, paused), I(qt_engine_snapshot, workers),
    I(qt_engine_snapshot, busy), Z(qt_engine_snapshot, queued), Z(qt_engine_snapshot, waiting),
    U(qt_engine_snapshot, jobs),
    U(qt_engine_snapshot, done), U(qt_engine_snapshot, ok), U(qt_engine_snapshot, failed),
    U(qt_engine_snapshot, rejected), U(qt_engine_snapshot, cancelled), U(qt_engine_snapshot, invalid),
    U(qt_engine_snapshot, requests), U(qt_engine_snapshot, retries), U(qt_engine_snapshot, upstream_429),
    U(qt_engine_snapshot, fallbacks), U(qt_engine_snapshot, circuit_transitions),
    U(qt_engine_snapshot, cache_hits), U(qt_engine_snapshot, prompt_tokens),
    U(qt_engine_snapshot, completion_tokens), U(qt_engine_snapshot, cached_tokens),
    U(qt_engine_snapshot, cache_write_tokens), D(qt_engine_snapshot, cost_usd),
    D(qt_engine_snapshot, run_spent_usd), D(qt_engine_snapshot, run_limit_usd),
    D(qt_engine_snapshot, day_spent_usd), D(qt_engine_snapshot, day_limit_usd),
    /* jobs by endpoint (qt_endpoint order) */
    { "jobs_chat", F_U64, offsetof(qt_engine_snapshot, by_endpoint) + 0 * sizeof(uint64_t), 0 },
    { "jobs_messages", F_U64, offsetof(qt_engine_snapshot, by_endpoint) + 1 * sizeof(uint64_t), 0 },
    { "jobs_responses", F_U64, offsetof(qt_engine_snapshot, by_endpoint) + 2 * sizeof(uint64_t), 0 },
    { "jobs_embeddings", F_U64, offsetof(qt_engine_snapshot, by_endpoint) + 3 * sizeof(uint64_t), 0 },
    I(qt_engine_snapshot, fleet_state), I(qt_engine_snapshot, fleet_divisor),
    I(qt_engine_snapshot, fleet_procs), I(qt_engine_snapshot, fleet_in_flight),
    U(qt_engine_snapshot, fleet_requests_60s), U(qt_engine_snapshot, fleet_tokens_60s),
    D(qt_engine_snapshot, fleet_day_spent_usd),
};

static const field job_f[] = {
    S(qt_job_view, id), S(qt_job_view, workflow), S(qt_job_view, model), S(qt_job_view, cur_model),
    S(qt_job_view, provider), I(qt_job_view, priority), I(qt_job_view, aged_priority),
    { "state", F_STATE, offsetof(qt_job_view, state), 0 }, S(qt_job_view, wait_on),
    U(qt_job_view, since_ms), U(qt_job_view, until_in_ms), U(qt_job_view, age_ms),
    I(qt_job_view, attempts), I(qt_job_view, est_prompt_tokens), I(qt_job_view, max_tokens),
    D(qt_job_view, cost_usd),
};

static const field qc_f[] = {
    Z(qt_queue_counts, total), Z(qt_queue_counts, ready), I(qt_queue_counts, paused_all),
    I(qt_queue_counts, closed),
};

static const field ev_f[] = {
    U(qt_event, seq), U(qt_event, wall_ms), U(qt_event, mono_ms),
    { "type", F_TYPE, offsetof(qt_event, type), 0 }, I(qt_event, http_status), I(qt_event, attempt),
    U(qt_event, wait_ms), D(qt_event, value), D(qt_event, limit), S(qt_event, model),
    S(qt_event, provider), S(qt_event, workflow), S(qt_event, job_id), S(qt_event, from),
    S(qt_event, to), S(qt_event, reason), S(qt_event, msg),
};

static const field failed_f[] = {
    S(qt_ctl_failed, id), S(qt_ctl_failed, workflow), S(qt_ctl_failed, model),
    S(qt_ctl_failed, model_used), S(qt_ctl_failed, provider), S(qt_ctl_failed, status),
    S(qt_ctl_failed, error), I(qt_ctl_failed, attempts), D(qt_ctl_failed, cost_usd),
    U(qt_ctl_failed, wall_ms),
};

static const field att_f[] = {
    S(qt_attempt_view, model), S(qt_attempt_view, provider), I(qt_attempt_view, status),
    U(qt_attempt_view, ttfb_ms), U(qt_attempt_view, total_ms), I(qt_attempt_view, prompt_tokens),
    I(qt_attempt_view, completion_tokens), U(qt_attempt_view, retry_after_ms),
    S(qt_attempt_view, error),
};

/* the fleet (backend.kind "redis"): qt_backend_view and its parts */
static const field proc_f[] = {
    S(qt_backend_proc, host), I(qt_backend_proc, pid), S(qt_backend_proc, mode),
    I(qt_backend_proc, in_flight), I(qt_backend_proc, self),
};

/* a rate key of the view (an unnamed struct: offsets from its first element) */
#define RATE_OFF(f) (offsetof(qt_backend_view, rates[0].f) - offsetof(qt_backend_view, rates[0]))
static const field rate_f[] = {
    { "name", F_STR, RATE_OFF(name), sizeof(((qt_backend_view *)0)->rates[0].name) },
    { "requests_60s", F_U64, RATE_OFF(requests_60s), 0 },
    { "tokens_60s", F_U64, RATE_OFF(tokens_60s), 0 },
    { "rpm", F_DBL, RATE_OFF(rpm), 0 },
    { "tpm", F_DBL, RATE_OFF(tpm), 0 },
    { "conc", F_INT, RATE_OFF(conc), 0 },
};

static const field fleet_f[] = {
    I(qt_backend_view, up), S(qt_backend_view, error), I(qt_backend_view, paused),
    I(qt_backend_view, max_procs_seen), D(qt_backend_view, day_spent_usd),
    D(qt_backend_view, day_reserved_usd), I(qt_backend_view, fleet_in_flight), U(qt_backend_view, admits),
    U(qt_backend_view, commits), U(qt_backend_view, releases), U(qt_backend_view, errors),
    U(qt_backend_view, reconnects), U(qt_backend_view, noscript_reloads), U(qt_backend_view, redirects),
};

static const field cmd_f[] = {
    I(qt_ctl_cmd, op), S(qt_ctl_cmd, name), I(qt_ctl_cmd, flag), D(qt_ctl_cmd, value),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ writing */

static cJSON *obj_of(const void *p, const field *f, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    const char *b = p;
    for (size_t i = 0; o && i < n; i++) {
        const void *v = b + f[i].off;
        switch (f[i].kind) {
        case F_STR: cJSON_AddStringToObject(o, f[i].name, (const char *)v); break;
        case F_INT: cJSON_AddNumberToObject(o, f[i].name, *(const int *)v); break;
        case F_U64: cJSON_AddNumberToObject(o, f[i].name, (double)*(const uint64_t *)v); break;
        case F_SIZE: cJSON_AddNumberToObject(o, f[i].name, (double)*(const size_t *)v); break;
        case F_DBL: cJSON_AddNumberToObject(o, f[i].name, *(const double *)v); break;
        case F_STATE: cJSON_AddStringToObject(o, f[i].name, qt_job_state_name(*(const qt_job_state *)v)); break;
        case F_TYPE:
            cJSON_AddStringToObject(o, f[i].name, qt_event_type_name(*(const qt_event_type *)v));
            break;
        case F_U32A120: {
            const uint32_t *a = v;
            cJSON *arr = cJSON_AddArrayToObject(o, f[i].name);
            for (int k = 0; arr && k < 120; k++)
                cJSON_AddItemToArray(arr, cJSON_CreateNumber(a[k]));
            break;
        }
        }
    }
    return o;
}

static cJSON *arr_of(const void *base, size_t size, size_t n, const field *f, size_t nf)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, obj_of((const char *)base + i * size, f, nf));
    return a;
}

static char *print_and_free(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

static cJSON *fleet_to_json(const qt_backend_view *v)
{
    cJSON *o = obj_of(v, fleet_f, N(fleet_f));
    int np = v->n_procs < QT_BACKEND_MAX_PROCS ? v->n_procs : QT_BACKEND_MAX_PROCS;
    int nr = v->n_rates < QT_BACKEND_MAX_VIEW ? v->n_rates : QT_BACKEND_MAX_VIEW;
    int nw = v->n_wf_paused < QT_BACKEND_MAX_VIEW ? v->n_wf_paused : QT_BACKEND_MAX_VIEW;
    cJSON_AddItemToObject(o, "procs", arr_of(v->procs, sizeof v->procs[0], (size_t)(np > 0 ? np : 0), proc_f,
                                             N(proc_f)));
    cJSON_AddItemToObject(o, "rates", arr_of(v->rates, sizeof v->rates[0], (size_t)(nr > 0 ? nr : 0), rate_f,
                                             N(rate_f)));
    cJSON *wf = cJSON_AddArrayToObject(o, "wf_paused");
    for (int i = 0; wf && i < nw; i++)
        cJSON_AddItemToArray(wf, cJSON_CreateString(v->wf_paused[i]));
    return o;
}

char *qt_ctl_frame_to_json(const qt_ctl_frame *f)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "mode", f->mode);
    cJSON_AddBoolToObject(o, "finished", f->finished);
    cJSON *s = obj_of(&f->snap, snap_f, N(snap_f));
    cJSON_AddItemToObject(s, "rows", arr_of(f->snap.rows, sizeof *f->snap.rows, f->snap.n_rows, row_f, N(row_f)));
    cJSON_AddItemToObject(s, "workflows", arr_of(f->snap.workflows, sizeof *f->snap.workflows,
                                                 f->snap.n_workflows, wf_f, N(wf_f)));
    cJSON_AddItemToObject(o, "snapshot", s);
    cJSON_AddItemToObject(o, "jobs", arr_of(f->jobs, sizeof *f->jobs, f->n_jobs, job_f, N(job_f)));
    cJSON_AddNumberToObject(o, "jobs_total", (double)f->jobs_total);
    cJSON *qc = obj_of(&f->qcounts, qc_f, N(qc_f));
    cJSON *bp = cJSON_AddArrayToObject(qc, "by_priority");
    for (int p = 0; bp && p < QT_QUEUE_PRIO_LEVELS; p++)
        cJSON_AddItemToArray(bp, cJSON_CreateNumber((double)f->qcounts.by_priority[p]));
    cJSON_AddItemToObject(o, "queue", qc);
    cJSON_AddItemToObject(o, "events", arr_of(f->events, sizeof *f->events, f->n_events, ev_f, N(ev_f)));
    cJSON_AddItemToObject(o, "failed", arr_of(f->failed, sizeof *f->failed, f->n_failed, failed_f, N(failed_f)));
    cJSON_AddNumberToObject(o, "failed_total", (double)f->failed_total);
    if (f->has_fleet)
        cJSON_AddItemToObject(o, "fleet", fleet_to_json(&f->fleet));
    return print_and_free(o);
}

char *qt_ctl_detail_to_json(const qt_job_detail *d)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "job", obj_of(&d->job, job_f, N(job_f)));
    cJSON *ch = cJSON_AddArrayToObject(o, "chain");
    for (int i = 0; ch && i < d->n_chain && i < 8; i++)
        cJSON_AddItemToArray(ch, cJSON_CreateString(d->chain[i]));
    int na = d->n_attempts < 16 ? d->n_attempts : 16, nw = d->n_waits < 16 ? d->n_waits : 16;
    cJSON_AddItemToObject(o, "attempts", arr_of(d->attempts, sizeof d->attempts[0], (size_t)(na > 0 ? na : 0),
                                                att_f, N(att_f)));
    cJSON *wa = cJSON_AddArrayToObject(o, "waits");
    for (int i = 0; wa && i < nw; i++)
        cJSON_AddItemToArray(wa, cJSON_CreateString(d->waits[i]));
    return print_and_free(o);
}

char *qt_ctl_cmd_to_json(const qt_ctl_cmd *cmd)
{
    cJSON *o = obj_of(cmd, cmd_f, N(cmd_f));
    char w[2] = { cmd->which ? cmd->which : 'r', 0 };
    cJSON_AddStringToObject(o, "which", w);
    return print_and_free(o);
}

/* ------------------------------------------------------------ reading */

static double clampd(double v, double lo, double hi) { return !(v >= lo) ? lo : v > hi ? hi : v; }

static void read_obj(const cJSON *o, void *p, const field *f, size_t n)
{
    char *b = p;
    for (size_t i = 0; cJSON_IsObject(o) && i < n; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, f[i].name);
        void *v = b + f[i].off;
        if (!it)
            continue;
        double d = cJSON_IsNumber(it) ? it->valuedouble : 0;
        switch (f[i].kind) {
        case F_STR:
            if (cJSON_IsString(it))
                snprintf((char *)v, f[i].len, "%s", it->valuestring);
            break;
        case F_INT: *(int *)v = (int)clampd(d, -1e9, 1e9); break;
        case F_U64: *(uint64_t *)v = (uint64_t)clampd(d, 0, 9e15); break;
        case F_SIZE: *(size_t *)v = (size_t)clampd(d, 0, 1e12); break;
        case F_DBL: *(double *)v = isfinite(d) ? clampd(d, -1e15, 1e15) : 0; break;
        case F_STATE:
            for (int s = 0; cJSON_IsString(it) && s < QT_JOB_STATES; s++)
                if (!strcmp(it->valuestring, qt_job_state_name((qt_job_state)s)))
                    *(qt_job_state *)v = (qt_job_state)s;
            break;
        case F_TYPE:
            for (int t = 0; cJSON_IsString(it) && t < QT_EV__COUNT; t++)
                if (!strcmp(it->valuestring, qt_event_type_name((qt_event_type)t)))
                    *(qt_event_type *)v = (qt_event_type)t;
            break;
        case F_U32A120: {
            uint32_t *a = v;
            int k = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, it) {
                if (k >= 120)
                    break;
                a[k++] = cJSON_IsNumber(x) ? (uint32_t)clampd(x->valuedouble, 0, 4e9) : 0;
            }
            break;
        }
        }
    }
}

/* Reads an array of at most max objects into a calloc'd array. */
static void *read_arr(const cJSON *a, size_t size, size_t max, const field *f, size_t nf, size_t *n)
{
    *n = 0;
    size_t cnt = cJSON_IsArray(a) ? (size_t)cJSON_GetArraySize(a) : 0;
    if (cnt > max)
        cnt = max;
    char *out = calloc(cnt ? cnt : 1, size);
    if (!out)
        return NULL;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (*n >= cnt)
            break;
        read_obj(x, out + *n * size, f, nf);
        (*n)++;
    }
    return out;
}

/* Reads at most max objects of an array into a fixed array; returns how many. */
static int read_fixed(const cJSON *a, void *base, size_t size, int max, const field *f, size_t nf)
{
    int n = 0;
    const cJSON *x;
    if (!cJSON_IsArray(a))
        return 0;
    cJSON_ArrayForEach(x, a) {
        if (n >= max)
            break;
        read_obj(x, (char *)base + (size_t)n * size, f, nf);
        n++;
    }
    return n;
}

static void fleet_from_json(const cJSON *o, qt_backend_view *v)
{
    read_obj(o, v, fleet_f, N(fleet_f));
    v->n_procs = read_fixed(cJSON_GetObjectItemCaseSensitive(o, "procs"), v->procs, sizeof v->procs[0],
                            QT_BACKEND_MAX_PROCS, proc_f, N(proc_f));
    v->n_rates = read_fixed(cJSON_GetObjectItemCaseSensitive(o, "rates"), v->rates, sizeof v->rates[0],
                            QT_BACKEND_MAX_VIEW, rate_f, N(rate_f));
    const cJSON *wf = cJSON_GetObjectItemCaseSensitive(o, "wf_paused"), *x;
    v->n_wf_paused = 0;
    if (!cJSON_IsArray(wf))
        return;
    cJSON_ArrayForEach(x, wf) {
        if (v->n_wf_paused >= QT_BACKEND_MAX_VIEW)
            break;
        if (cJSON_IsString(x))
            snprintf(v->wf_paused[v->n_wf_paused++], sizeof v->wf_paused[0], "%s", x->valuestring);
    }
}

qt_err qt_ctl_frame_from_json(const char *js, size_t len, qt_ctl_frame *out)
{
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_ParseWithLength(js, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return QT_ERR_INVALID;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "mode");
    if (cJSON_IsString(m))
        snprintf(out->mode, sizeof out->mode, "%s", m->valuestring);
    out->finished = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "finished"));
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "snapshot");
    read_obj(s, &out->snap, snap_f, N(snap_f));
    out->snap.rows = read_arr(cJSON_GetObjectItemCaseSensitive(s, "rows"), sizeof *out->snap.rows, 256, row_f,
                              N(row_f), &out->snap.n_rows);
    out->snap.workflows = read_arr(cJSON_GetObjectItemCaseSensitive(s, "workflows"), sizeof *out->snap.workflows,
                                   1024, wf_f, N(wf_f), &out->snap.n_workflows);
    out->jobs = read_arr(cJSON_GetObjectItemCaseSensitive(o, "jobs"), sizeof *out->jobs, QT_CTL_MAX_JOBS, job_f,
                         N(job_f), &out->n_jobs);
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(o, "jobs_total");
    out->jobs_total = cJSON_IsNumber(jt) ? (size_t)clampd(jt->valuedouble, 0, 1e12) : out->n_jobs;
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(o, "queue");
    read_obj(qc, &out->qcounts, qc_f, N(qc_f));
    const cJSON *bp = cJSON_GetObjectItemCaseSensitive(qc, "by_priority"), *x;
    int p = 0;
    cJSON_ArrayForEach(x, bp) {
        if (p >= QT_QUEUE_PRIO_LEVELS)
            break;
        out->qcounts.by_priority[p++] = cJSON_IsNumber(x) ? (size_t)clampd(x->valuedouble, 0, 1e12) : 0;
    }
    out->events = read_arr(cJSON_GetObjectItemCaseSensitive(o, "events"), sizeof *out->events, QT_CTL_MAX_EVENTS,
                           ev_f, N(ev_f), &out->n_events);
    out->failed = read_arr(cJSON_GetObjectItemCaseSensitive(o, "failed"), sizeof *out->failed, QT_CTL_MAX_FAILED,
                           failed_f, N(failed_f), &out->n_failed);
    const cJSON *ft = cJSON_GetObjectItemCaseSensitive(o, "failed_total");
    out->failed_total = cJSON_IsNumber(ft) ? (uint64_t)clampd(ft->valuedouble, 0, 9e15) : out->n_failed;
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(o, "fleet");
    if (cJSON_IsObject(fl)) {
        out->has_fleet = 1;
        fleet_from_json(fl, &out->fleet);
    }
    cJSON_Delete(o);
    if (!out->snap.rows || !out->snap.workflows || !out->jobs || !out->events || !out->failed) {
        qt_ctl_frame_free(out);
        return QT_ERR_NOMEM;
    }
    return QT_OK;
}

qt_err qt_ctl_detail_from_json(const char *js, size_t len, qt_job_detail *out)
{
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_ParseWithLength(js, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return QT_ERR_INVALID;
    }
    read_obj(cJSON_GetObjectItemCaseSensitive(o, "job"), &out->job, job_f, N(job_f));
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(o, "chain")) {
        if (out->n_chain >= 8)
            break;
        if (cJSON_IsString(x))
            snprintf(out->chain[out->n_chain++], sizeof out->chain[0], "%s", x->valuestring);
    }
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(o, "attempts")) {
        if (out->n_attempts >= 16)
            break;
        read_obj(x, &out->attempts[out->n_attempts++], att_f, N(att_f));
    }
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(o, "waits")) {
        if (out->n_waits >= 16)
            break;
        if (cJSON_IsString(x))
            snprintf(out->waits[out->n_waits++], sizeof out->waits[0], "%s", x->valuestring);
    }
    cJSON_Delete(o);
    return QT_OK;
}

qt_err qt_ctl_cmd_from_json(const char *js, size_t len, qt_ctl_cmd *out)
{
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_ParseWithLength(js, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return QT_ERR_INVALID;
    }
    read_obj(o, out, cmd_f, N(cmd_f));
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "which");
    out->which = cJSON_IsString(w) && w->valuestring[0] == 't' ? 't' : 'r';
    cJSON_Delete(o);
    if ((unsigned)out->op >= QT_CTL__COUNT)
        return QT_ERR_INVALID;
    return QT_OK;
}
