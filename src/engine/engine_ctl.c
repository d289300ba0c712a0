/* engine_ctl.c: the engine's controls (pause, cancel, reprioritize,
 * throttle), its snapshot for readers, and the summary object.
 *
 * DESIGN
 * Every function takes e->lock for as short as it can: controls change the
 * policy objects and ask for a pump pass, so waiting jobs are offered again
 * at once; readers copy plain values out under the lock and do all formatting
 * (percentiles, JSON) after releasing it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "engine_int.h"

static void apply_pause(qt_engine *e, int paused, const char *how)
{
    pthread_mutex_lock(&e->lock);
    int was = e->paused;
    e->paused = paused ? 1 : 0;
    if (paused)
        qt_queue_pause_all(e->queue);
    else
        qt_queue_resume_all(e->queue);
    engine_loop_request_pump(e);
    pthread_mutex_unlock(&e->lock);
    if (was != e->paused)
        qt_events_addf(e->events, paused ? QT_EV_PAUSE : QT_EV_RESUME, now_of(e),
                       qt_clock_wall_ms(e->clock), NULL, NULL, NULL, "%s%s",
                       paused ? "dispatch paused" : "dispatch resumed", how);
}

void qt_engine_pause(qt_engine *e, int paused)
{
    apply_pause(e, paused, "");
    if (e->gate)   /* every process sharing the quota (Redis) */
        qt_backend_gate_control(e->gate, paused ? "pause" : "resume", NULL, NULL, 0);
}

int qt_engine_paused(qt_engine *e)
{
    pthread_mutex_lock(&e->lock);
    int p = e->paused;
    pthread_mutex_unlock(&e->lock);
    return p;
}

static qt_err apply_pause_workflow(qt_engine *e, const char *workflow, int paused)
{
    pthread_mutex_lock(&e->lock);
    qt_err r = paused ? qt_queue_pause_workflow(e->queue, workflow)
                      : qt_queue_resume_workflow(e->queue, workflow);
    engine_loop_request_pump(e);
    pthread_mutex_unlock(&e->lock);
    if (r == QT_OK)
        qt_events_addf(e->events, paused ? QT_EV_PAUSE : QT_EV_RESUME, now_of(e),
                       qt_clock_wall_ms(e->clock), NULL, workflow, NULL, "workflow %s %s", workflow,
                       paused ? "paused" : "resumed");
    return r;
}

qt_err qt_engine_pause_workflow(qt_engine *e, const char *workflow, int paused)
{
    qt_err r = apply_pause_workflow(e, workflow, paused);
    if (r == QT_OK && e->gate)
        qt_backend_gate_control(e->gate, paused ? "wfpause" : "wfresume", workflow, NULL, 0);
    return r;
}

static void apply_fleet_limits(qt_engine *e);

void engine_fleet_control(void *ud, const char *op, const char *arg)
{
    qt_engine *e = ud;
    if (!strcmp(op, "pause") || !strcmp(op, "resume"))
        apply_pause(e, !strcmp(op, "pause"), " (fleet)");
    else if ((!strcmp(op, "wfpause") || !strcmp(op, "wfresume")) && arg && *arg)
        apply_pause_workflow(e, arg, !strcmp(op, "wfpause"));
    else if (!strcmp(op, "limit"))
        apply_fleet_limits(e);
}

qt_err qt_engine_cancel(qt_engine *e, const char *job_id)
{
    pthread_mutex_lock(&e->lock);
    ejob *ej = ejob_find(e, job_id);
    if (!ej) {
        pthread_mutex_unlock(&e->lock);
        return QT_ERR_NOTFOUND;
    }
    return engine_loop_cancel(e, ej);   /* releases the lock */
}

qt_err qt_engine_reprioritize(qt_engine *e, const char *job_id, int priority)
{
    if (priority < QT_QUEUE_PRIO_MIN || priority > QT_QUEUE_PRIO_MAX)
        return QT_ERR_INVALID;
    pthread_mutex_lock(&e->lock);
    qt_err r = qt_queue_reprioritize(e->queue, job_id, priority);
    ejob *ej = ejob_find(e, job_id);
    if (ej) {
        /* Queued: its place changed above; elsewhere (a timer, the wire)
         * it counts when the job comes back to the queue. */
        ej->job->priority = priority;
        r = QT_OK;
        engine_loop_request_pump(e);
    }
    pthread_mutex_unlock(&e->lock);
    return r;
}

qt_err qt_engine_scale_limit(qt_engine *e, const char *name, int is_provider, char which,
                             double factor)
{
    pthread_mutex_lock(&e->lock);
    int key = -1;
    if (is_provider) {
        int i = qt_config_provider_index(e->cfg, name);
        if (i >= 0)
            key = e->providers[i].key;
    } else {
        int i = qt_config_model_index(e->cfg, name);
        if (i >= 0)
            key = e->models[i].key;
    }
    if (key < 0) {
        pthread_mutex_unlock(&e->lock);
        return QT_ERR_NOTFOUND;
    }
    uint64_t now = now_of(e);
    qt_limiter_stats st;
    qt_limiter_key_stats(e->limiter, key, now, &st);
    double old = which == 't' ? st.tpm : st.rpm, nv = old;
    qt_err r;
    if (factor <= 0) {
        r = qt_limiter_restore(e->limiter, key, now);
        nv = which == 't' ? st.cfg_tpm : st.cfg_rpm;
    } else {
        /* An unlimited limit cannot be scaled; a limited one never drops
         * below one unit per minute. */
        nv = old > 0 ? old * factor : 0;
        if (nv > 0 && nv < 1)
            nv = 1;
        r = qt_limiter_set_limits(e->limiter, key, which == 't' ? -1 : nv, which == 't' ? nv : -1, -1,
                                  now);
    }
    engine_loop_request_pump(e);
    pthread_mutex_unlock(&e->lock);
    if (r == QT_OK) {
        qt_event ev;
        qt_event_init(&ev, QT_EV_LIMIT_CHANGE, now, qt_clock_wall_ms(e->clock));
        qt_event_subject(&ev, is_provider ? NULL : name, is_provider ? name : NULL, NULL, NULL);
        ev.value = nv;
        ev.limit = old;
        qt_event_msgf(&ev, "%s %s limit %s: %.0f -> %.0f", name, which == 't' ? "TPM" : "RPM",
                      factor <= 0 ? "restored" : factor < 1 ? "lowered" : "raised", old, nv);
        qt_events_add(e->events, &ev);
        if (e->gate) {   /* the same limit for every process sharing the quota */
            char kn[QT_BACKEND_NAME];
            snprintf(kn, sizeof kn, "%s:%s", is_provider ? "provider" : "model", name);
            qt_backend_gate_control(e->gate, "limit", kn, which == 't' ? "tpm" : "rpm", factor <= 0 ? -1 : nv);
        }
    }
    return r;
}

/* A limit changed somewhere in the fleet: this process's limiter takes the
 * fleet's overrides (or its configured limits where there is none), so
 * what the dashboard shows and what Redis enforces agree. */
static void apply_fleet_limits(qt_engine *e)
{
    qt_backend_view *v = malloc(sizeof *v);
    if (!v)
        return;
    qt_backend_gate_view(e->gate, v);
    pthread_mutex_lock(&e->lock);
    uint64_t now = now_of(e);
    for (int i = 0; i < v->n_rates; i++) {
        int key = qt_limiter_key_find(e->limiter, v->rates[i].name);
        if (key < 0)
            continue;
        if (v->rates[i].rpm < 0 && v->rates[i].tpm < 0) {
            qt_limiter_stats st;
            if (qt_limiter_key_stats(e->limiter, key, now, &st) == QT_OK && st.changed_live)
                qt_limiter_restore(e->limiter, key, now);
        } else {
            qt_limiter_set_limits(e->limiter, key, v->rates[i].rpm, v->rates[i].tpm, -1, now);
        }
    }
    engine_loop_request_pump(e);   /* a raised limit may let queued jobs go */
    pthread_mutex_unlock(&e->lock);
    free(v);
}

/* The wait before model mi could take the request: its limiter keys (holds
 * after a 429 included), the same model's queued jobs, and its circuit if
 * open. UINT64_MAX when unknown. Lock held. */
static uint64_t model_wait_ms(qt_engine *e, int mi, size_t prompt_chars, int max_tokens, uint64_t now)
{
    const qt_model_cfg *m = &e->cfg->models[mi];
    int keys[2] = { e->models[mi].key, e->providers[m->provider_idx[0]].key };
    int64_t est = qt_estimator_estimate(e->est, m->name, prompt_chars)
                  + (max_tokens > 0 ? max_tokens : m->default_max_tokens);
    uint64_t w = qt_limiter_wait_ms(e->limiter, keys, 2, est, now);
    /* Jobs of the same model already queued go first (jobs of other models
     * do not hold it up): each costs at least one emission interval of the
     * model's RPM. */
    qt_limiter_stats st;
    qt_limiter_key_stats(e->limiter, keys[0], now, &st);
    if (w != UINT64_MAX && st.rpm > 0)
        w += (uint64_t)((double)e->models[mi].queued * 60000.0 / st.rpm);
    if (w != UINT64_MAX && !qt_circuit_peek(e->models[mi].circuit, now)) {
        uint64_t t = qt_circuit_next_probe_ms(e->models[mi].circuit, now);
        uint64_t cw = t == QT_CIRCUIT_NEVER ? UINT64_MAX : t > now ? t - now : 0;
        w = cw > w ? cw : w;
    }
    return w;
}

uint64_t engine_estimate_wait_locked(qt_engine *e, int model_idx, size_t prompt_chars, int max_tokens)
{
    if (model_idx < 0 || (size_t)model_idx >= e->cfg->n_models)
        return UINT64_MAX;
    uint64_t now = now_of(e);
    /* Over the whole fallback chain: a primary held for a minute after a
     * 429 does not make the request wait when its fallback is free. */
    int chain[16];
    int has_cache = 0;
    size_t n = qt_config_chain(e->cfg, model_idx, chain, QT_ARRAY_LEN(chain), &has_cache);
    uint64_t w = n ? UINT64_MAX : model_wait_ms(e, model_idx, prompt_chars, max_tokens, now);
    for (size_t k = 0; k < n; k++) {
        uint64_t mw = model_wait_ms(e, chain[k], prompt_chars, max_tokens, now);
        w = mw < w ? mw : w;
    }
    return w;
}

size_t qt_engine_queue_depth(qt_engine *e)
{
    pthread_mutex_lock(&e->lock);
    qt_queue_counts qc;
    qt_queue_counts_get(e->queue, &qc);
    pthread_mutex_unlock(&e->lock);
    return qc.total;
}

int qt_engine_in_flight(qt_engine *e)
{
    pthread_mutex_lock(&e->lock);
    int n = 0;
    for (size_t i = 0; i < e->cfg->n_providers; i++)
        n += e->providers[i].in_flight;
    pthread_mutex_unlock(&e->lock);
    return n;
}

size_t qt_engine_unfinished(qt_engine *e)
{
    pthread_mutex_lock(&e->lock);
    size_t n = e->n_live;
    pthread_mutex_unlock(&e->lock);
    return n;
}

int qt_engine_workers(const qt_engine *e)
{
    return e->max_in_flight;   /* set once by qt_engine_new */
}

size_t qt_engine_queue_head(qt_engine *e, qt_queue_view *out, size_t max)
{
    pthread_mutex_lock(&e->lock);
    size_t n = qt_queue_snapshot(e->queue, now_of(e), 1, out, max);
    pthread_mutex_unlock(&e->lock);
    return n;
}

qt_events *qt_engine_events(qt_engine *e) { return e->events; }

/* ------------------------------------------------------------ snapshot */

static void fill_row(qt_engine *e, qt_engine_row *row, const char *name, int is_provider, int key,
                     const qt_circuit *circ, int in_flight, uint64_t now)
{
    snprintf(row->name, sizeof row->name, "%.63s", name);
    row->is_provider = is_provider;
    qt_circuit_status cs = qt_circuit_state(circ, now);
    static const char *const names[] = { "CLOSED", "OPEN", "HALF_OPEN" };
    snprintf(row->circuit, sizeof row->circuit, "%s", names[cs]);
    uint64_t probe = qt_circuit_next_probe_ms(circ, now);
    row->next_probe_in_ms = cs == QT_CIRCUIT_OPEN && probe != QT_CIRCUIT_NEVER && probe > now
                                ? probe - now : 0;
    qt_limiter_stats st;
    if (qt_limiter_key_stats(e->limiter, key, now, &st) == QT_OK) {
        row->rpm = st.rpm;
        row->tpm = st.tpm;
        row->cfg_rpm = st.cfg_rpm;
        row->cfg_tpm = st.cfg_tpm;
        row->changed_live = st.changed_live;
        row->requests_60s = st.requests_60s;
        row->tokens_60s = st.tokens_60s;
        row->max_concurrent = st.max_concurrent;
        row->held_until_in_ms = st.held_until_ms > now ? st.held_until_ms - now : 0;
    }
    row->in_flight = in_flight;
}

/* Copies the counters, latency and history of a metrics series into a row. */
static void fill_counts(qt_engine_row *row, const qt_metrics_series *m)
{
    row->requests = m->requests_total;
    row->ok = m->requests[QT_OUTCOME_OK];
    row->rate_limited = m->requests[QT_OUTCOME_RATE_LIMITED];
    row->errors = m->requests_total - row->ok - row->rate_limited;
    row->retries = m->retries;
    row->fallbacks = m->fallbacks;
    row->prompt_tokens = m->prompt_tokens;
    row->completion_tokens = m->completion_tokens;
    row->cached_tokens = m->cached_tokens;
    row->cache_write_tokens = m->cache_write_tokens;
    row->cost_usd = m->cost_usd;
    row->p50_ms = m->p50_ms > 0 ? m->p50_ms : 0;
    row->p95_ms = m->p95_ms > 0 ? m->p95_ms : 0;
    memcpy(row->rps, m->rps, sizeof row->rps);
    memcpy(row->tps, m->tps, sizeof row->tps);
}

/* The fleet's part of a snapshot (backend.kind "redis"): from the gate's
 * view, no engine lock (the view has its own). */
static void fleet_snapshot(qt_engine *e, qt_engine_snapshot *s)
{
    qt_backend_view *v = malloc(sizeof *v);
    if (!v)
        return;
    qt_backend_gate_view(e->gate, v);
    qt_gate_state st = qt_backend_gate_state(e->gate);
    s->fleet_state = st == QT_GATE_SHARED ? 1 : st == QT_GATE_LOCAL_SHARE ? 2 : 3;
    s->fleet_divisor = qt_backend_gate_divisor(e->gate);
    s->fleet_procs = v->n_procs;
    s->fleet_in_flight = v->fleet_in_flight;
    for (int i = 0; i < v->n_rates; i++)
        if (!strncmp(v->rates[i].name, "model:", 6)) {
            s->fleet_requests_60s += v->rates[i].requests_60s;
            s->fleet_tokens_60s += v->rates[i].tokens_60s;
        }
    s->fleet_day_spent_usd = v->day_spent_usd;
    free(v);
}

qt_err qt_engine_fleet_view(qt_engine *e, qt_backend_view *out)
{
    memset(out, 0, sizeof *out);
    if (!e->gate)
        return QT_ERR_NOTFOUND;
    qt_backend_gate_view(e->gate, out);
    return QT_OK;
}

qt_err qt_engine_snapshot_take(qt_engine *e, qt_engine_snapshot *s)
{
    memset(s, 0, sizeof *s);
    size_t nrows = e->cfg->n_models + e->cfg->n_providers;
    qt_queue_workflow_count wc[64];
    s->rows = calloc(nrows + 1, sizeof *s->rows);
    if (!s->rows)
        return QT_ERR_NOMEM;

    pthread_mutex_lock(&e->lock);
    uint64_t now = now_of(e);
    s->uptime_ms = now - e->start_ms;
    s->paused = e->paused;
    s->workers = e->max_in_flight;
    s->busy = e->in_flight_jobs;
    qt_queue_counts qc;
    qt_queue_counts_get(e->queue, &qc);
    s->queued = qc.total;
    size_t taken = e->n_live > qc.total ? e->n_live - qc.total : 0;
    s->waiting = taken > (size_t)e->in_flight_jobs ? taken - (size_t)e->in_flight_jobs : 0;
    s->jobs = e->jobs;
    memcpy(s->by_endpoint, e->by_endpoint, sizeof s->by_endpoint);
    s->done = e->done;
    int in_flight = 0;
    for (size_t i = 0; i < e->cfg->n_models; i++)
        fill_row(e, &s->rows[s->n_rows++], e->cfg->models[i].name, 0, e->models[i].key,
                 e->models[i].circuit, e->models[i].in_flight, now);
    for (size_t i = 0; i < e->cfg->n_providers; i++) {
        fill_row(e, &s->rows[s->n_rows++], e->cfg->providers[i].name, 1, e->providers[i].key,
                 e->providers[i].circuit, e->providers[i].in_flight, now);
        in_flight += e->providers[i].in_flight;
    }
    qt_budget_snap bs;
    int have_budget = qt_budget_snapshot(e->budget, qt_clock_wall_ms(e->clock), &bs) == QT_OK;
    size_t nwc = qt_queue_workflow_counts(e->queue, wc, QT_ARRAY_LEN(wc));
    pthread_mutex_unlock(&e->lock);

    /* The counters live in the metrics module (its own lock). */
    qt_metrics_gauge_set(e->metrics, QT_GAUGE_QUEUE_DEPTH, (int64_t)s->queued);
    qt_metrics_gauge_set(e->metrics, QT_GAUGE_INFLIGHT, in_flight);
    qt_metrics_gauge_set(e->metrics, QT_GAUGE_WORKERS_BUSY, s->busy);
    qt_metrics_snapshot ms;
    if (qt_metrics_snapshot_take(e->metrics, now, &ms) != QT_OK) {
        if (have_budget)
            qt_budget_snap_free(&bs);
        qt_engine_snapshot_free(s);
        return QT_ERR_NOMEM;
    }
    for (size_t i = 0; i < e->cfg->n_models && i < ms.n_models; i++)
        fill_counts(&s->rows[i], &ms.models[i]);
    for (size_t i = 0; i < e->cfg->n_providers && i < ms.n_providers; i++)
        fill_counts(&s->rows[e->cfg->n_models + i], &ms.providers[i]);
    const qt_metrics_totals *t = &ms.totals;
    s->ok = t->jobs[QT_JOB_OK];
    s->failed = t->jobs[QT_JOB_FAILED];
    s->rejected = t->jobs[QT_JOB_REJECTED];
    s->cancelled = t->jobs[QT_JOB_CANCELLED];
    s->invalid = t->jobs[QT_JOB_INVALID];
    s->requests = t->requests_total;
    s->retries = t->retries;
    s->upstream_429 = t->requests[QT_OUTCOME_RATE_LIMITED];
    s->fallbacks = t->fallbacks;
    s->circuit_transitions = t->counters[QT_COUNTER_CIRCUIT_TRANSITIONS];
    s->cache_hits = t->counters[QT_COUNTER_CACHE_HITS];
    s->prompt_tokens = t->prompt_tokens;
    s->completion_tokens = t->completion_tokens;
    s->cached_tokens = t->cached_tokens;
    s->cache_write_tokens = t->cache_write_tokens;
    s->cost_usd = t->cost_usd;

    /* Workflows: the union of those with traffic and those queued. */
    s->workflows = calloc(ms.n_workflows + nwc + 1, sizeof *s->workflows);
    if (s->workflows) {
        for (size_t i = 0; i < ms.n_workflows; i++) {
            const qt_metrics_workflow *mw = &ms.workflows[i];
            qt_engine_wf *w = &s->workflows[s->n_workflows++];
            snprintf(w->name, sizeof w->name, "%.63s", mw->name);
            w->ok = mw->jobs[QT_JOB_OK];
            w->failed = mw->jobs[QT_JOB_FAILED];
            w->rejected = mw->jobs[QT_JOB_REJECTED];
            w->cancelled = mw->jobs[QT_JOB_CANCELLED];
            w->invalid = mw->jobs[QT_JOB_INVALID];
            w->done = w->ok + w->failed + w->rejected + w->cancelled + w->invalid;
            w->calls = mw->calls;
            w->prompt_tokens = mw->prompt_tokens;
            w->completion_tokens = mw->completion_tokens;
            w->cost_usd = mw->cost_usd;
        }
        for (size_t k = 0; k < nwc && k < QT_ARRAY_LEN(wc); k++) {
            qt_engine_wf *w = NULL;
            for (size_t i = 0; i < s->n_workflows && !w; i++)
                if (!strcmp(s->workflows[i].name, wc[k].name))
                    w = &s->workflows[i];
            if (!w) {
                w = &s->workflows[s->n_workflows++];
                snprintf(w->name, sizeof w->name, "%.63s", wc[k].name);
            }
            w->queued = wc[k].count;
            w->paused = wc[k].paused;
        }
        for (size_t i = 0; i < s->n_workflows; i++) {
            qt_engine_wf *w = &s->workflows[i];
            w->jobs = w->done + w->queued;
            w->limit_usd = qt_config_workflow_budget(e->cfg, w->name);
        }
    }
    qt_metrics_snapshot_free(&ms);
    if (have_budget) {
        s->run_spent_usd = bs.run_spent_usd;
        s->run_limit_usd = bs.run_limit_usd;
        s->day_spent_usd = bs.day_spent_usd;
        s->day_limit_usd = bs.day_limit_usd;
        qt_budget_snap_free(&bs);
    }
    if (e->gate)
        fleet_snapshot(e, s);
    return QT_OK;
}

qt_metrics *qt_engine_metrics(qt_engine *e) { return e->metrics; }

void qt_engine_snapshot_free(qt_engine_snapshot *s)
{
    if (!s)
        return;
    free(s->rows);
    free(s->workflows);
    s->rows = NULL;
    s->workflows = NULL;
}

/* ------------------------------------------------------------ summary */

char *qt_engine_summary_json(qt_engine *e, double elapsed_s)
{
    qt_engine_snapshot s;
    if (qt_engine_snapshot_take(e, &s) != QT_OK)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "jobs", (double)s.jobs);
    cJSON_AddNumberToObject(o, "ok", (double)s.ok);
    cJSON_AddNumberToObject(o, "failed", (double)s.failed);
    cJSON_AddNumberToObject(o, "rejected", (double)s.rejected);
    cJSON_AddNumberToObject(o, "cancelled", (double)s.cancelled);
    cJSON_AddNumberToObject(o, "invalid", (double)s.invalid);
    cJSON_AddNumberToObject(o, "requests", (double)s.requests);
    cJSON_AddNumberToObject(o, "retries", (double)s.retries);
    cJSON_AddNumberToObject(o, "upstream_429", (double)s.upstream_429);
    cJSON_AddNumberToObject(o, "fallbacks", (double)s.fallbacks);
    cJSON_AddNumberToObject(o, "circuit_transitions", (double)s.circuit_transitions);
    cJSON_AddNumberToObject(o, "cache_hits", (double)s.cache_hits);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)s.prompt_tokens);
    cJSON_AddNumberToObject(o, "completion_tokens", (double)s.completion_tokens);
    cJSON_AddNumberToObject(o, "cached_tokens", (double)s.cached_tokens);
    cJSON_AddNumberToObject(o, "cache_write_tokens", (double)s.cache_write_tokens);
    char num[40];
    snprintf(num, sizeof num, "%.9f", s.cost_usd);
    cJSON_AddRawToObject(o, "cost_usd", num);
    snprintf(num, sizeof num, "%.3f", elapsed_s);
    cJSON_AddRawToObject(o, "elapsed_s", num);
    /* Spend past a limit, and why: a limit is only passed when an answer
     * used more than its reservation assumed (usage above max_tokens). */
    pthread_mutex_lock(&e->lock);
    uint64_t over_calls = e->env.overuse_calls;
    char cause[sizeof e->env.overuse_cause];
    memcpy(cause, e->env.overuse_cause, sizeof cause);
    pthread_mutex_unlock(&e->lock);
    double run_over = s.run_limit_usd > 0 && s.run_spent_usd > s.run_limit_usd ? s.run_spent_usd - s.run_limit_usd : 0;
    double day_over = s.day_limit_usd > 0 && s.day_spent_usd > s.day_limit_usd ? s.day_spent_usd - s.day_limit_usd : 0;
    cJSON *ov = cJSON_AddObjectToObject(o, "overshoot");
    snprintf(num, sizeof num, "%.9f", run_over);
    cJSON_AddRawToObject(ov, "run_usd", num);
    snprintf(num, sizeof num, "%.9f", day_over);
    cJSON_AddRawToObject(ov, "day_usd", num);
    cJSON_AddNumberToObject(ov, "calls_over_max_tokens", (double)over_calls);
    if (cause[0])
        cJSON_AddStringToObject(ov, "cause", cause);
    else
        cJSON_AddNullToObject(ov, "cause");
    cJSON *wfs = cJSON_AddObjectToObject(o, "workflows");
    for (size_t i = 0; i < s.n_workflows; i++) {
        const qt_engine_wf *w = &s.workflows[i];
        cJSON *x = cJSON_AddObjectToObject(wfs, w->name);
        cJSON_AddNumberToObject(x, "jobs", (double)w->jobs);
        cJSON_AddNumberToObject(x, "ok", (double)w->ok);
        cJSON_AddNumberToObject(x, "failed", (double)w->failed);
        cJSON_AddNumberToObject(x, "rejected", (double)w->rejected);
        cJSON_AddNumberToObject(x, "cancelled", (double)w->cancelled);
        cJSON_AddNumberToObject(x, "invalid", (double)w->invalid);
        cJSON_AddNumberToObject(x, "prompt_tokens", (double)w->prompt_tokens);
        cJSON_AddNumberToObject(x, "completion_tokens", (double)w->completion_tokens);
        snprintf(num, sizeof num, "%.9f", w->cost_usd);
        cJSON_AddRawToObject(x, "cost_usd", num);
    }
    cJSON *ms = cJSON_AddObjectToObject(o, "models");
    cJSON *ps = cJSON_AddObjectToObject(o, "providers");
    for (size_t i = 0; i < s.n_rows; i++) {
        const qt_engine_row *r = &s.rows[i];
        cJSON *x = cJSON_AddObjectToObject(r->is_provider ? ps : ms, r->name);
        cJSON_AddNumberToObject(x, "requests", (double)r->requests);
        cJSON_AddNumberToObject(x, "ok", (double)r->ok);
        cJSON_AddNumberToObject(x, "upstream_429", (double)r->rate_limited);
        cJSON_AddNumberToObject(x, "errors", (double)r->errors);
        cJSON_AddNumberToObject(x, "retries", (double)r->retries);
        cJSON_AddNumberToObject(x, "fallbacks", (double)r->fallbacks);
        cJSON_AddNumberToObject(x, "prompt_tokens", (double)r->prompt_tokens);
        cJSON_AddNumberToObject(x, "completion_tokens", (double)r->completion_tokens);
        cJSON_AddNumberToObject(x, "cached_tokens", (double)r->cached_tokens);
        cJSON_AddNumberToObject(x, "cache_write_tokens", (double)r->cache_write_tokens);
        snprintf(num, sizeof num, "%.9f", r->cost_usd);
        cJSON_AddRawToObject(x, "cost_usd", num);
        cJSON_AddStringToObject(x, "circuit", r->circuit);
    }
    qt_engine_snapshot_free(&s);
    char *out = cJSON_Print(o);
    cJSON_Delete(o);
    return out;
}
