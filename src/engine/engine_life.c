/* engine_life.c: creating the engine (limiter keys, breakers, budgets from
 * the config, the spend ledger), starting its loops, taking jobs in, and
 * shutting down so that every job still gets exactly one result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_int.h"
/* ------------------------------------------------------------ lifecycle */

/* Opens the spend ledger in cfg->state_dir (none when it is NULL or "") and
 * seeds the day budget with what the ledger holds for the current UTC day,
 * so a day budget survives restarts. A ledger that cannot be opened is a
 * warning, not an error: the engine runs without it. */
static void open_ledger(qt_engine *e)
{
    const char *dir = e->cfg->state_dir;
    if (!dir || !*dir)
        return;
    char err[512];
    e->ledger = qt_ledger_open(dir, err, sizeof err);
    if (!e->ledger) {
        fprintf(stderr, "quotatop: warning: spend ledger disabled (state_dir %s): %s; "
                        "this run's spend is not recorded\n", dir, err);
        return;
    }
    uint64_t wall = wall_of(e);
    double usd = 0;
    if (qt_ledger_day_spend(e->ledger, wall / QT_LEDGER_MS_PER_DAY, &usd) != QT_OK) {
        qt_ledger_errmsg(e->ledger, err, sizeof err);
        fprintf(stderr, "quotatop: warning: cannot read today's spend from the ledger (%s); "
                        "the day budget starts at $0\n", err);
    } else if (usd > 0) {
        qt_budget_add_prior_day_spend(e->budget, wall, usd);
    }
}

qt_engine *qt_engine_new(const qt_engine_opts *opts, char *err, size_t errlen)
{
    const qt_config *cfg = opts->cfg;
    qt_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->cfg = cfg;
    e->clock = opts->clock ? opts->clock : qt_clock_system();
    e->on_result = opts->on_result;
    e->on_result_ud = opts->on_result_ud;
    e->on_results_flush = opts->on_results_flush;
    e->on_results_flush_ud = opts->on_results_flush_ud;
    e->want_openai_json = opts->want_openai_json;
    e->transport = opts->transport ? opts->transport : qt_transport_live();
    e->virtual_time = opts->virtual_time;
    e->pump_at = UINT64_MAX;
    e->rng = opts->seed ? opts->seed : (qt_wall_ms() ^ 0x9e3779b97f4a7c15ull) | 1;
    e->start_ms = now_of(e);
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->done_cond, &ca);
    pthread_condattr_destroy(&ca);

    e->queue = qt_queue_new((uint64_t)cfg->queue.aging_ms);
    e->limiter = qt_limiter_new(cfg->limits.burst_ms);
    e->budget = qt_budget_new(cfg->budget.run_usd, cfg->budget.day_usd, cfg->budget.warn_ratio,
                              cfg->budget.on_exhausted);
    e->est = qt_estimator_new();
    e->cache = qt_cache_new(1024);
    e->events = qt_events_new(1024);
    e->metrics = qt_metrics_new(e->start_ms);
    e->models = calloc(cfg->n_models + 1, sizeof *e->models);
    e->providers = calloc(cfg->n_providers + 1, sizeof *e->providers);
    /* No worker threads: `workers` bounds the requests in flight. */
    e->max_in_flight = opts->workers > 0 ? opts->workers : cfg->workers;
    if (!e->queue || !e->limiter || !e->budget || !e->est || !e->cache || !e->events
        || !e->metrics || !e->models || !e->providers) {
        snprintf(err, errlen, "out of memory");
        qt_engine_free(e);
        return NULL;
    }
    for (size_t i = 0; i < cfg->budget.n_workflows; i++)
        qt_budget_set_workflow(e->budget, cfg->budget.workflows[i].name, cfg->budget.workflows[i].usd);
    open_ledger(e);

    qt_circuit_params cp = qt_circuit_params_default();
    cp.failure_threshold = cfg->circuit.failure_threshold;
    cp.failure_ratio = cfg->circuit.failure_ratio;
    cp.window_ms = (uint64_t)cfg->circuit.window_ms;
    cp.cooldown_ms = (uint64_t)(cfg->circuit.cooldown_ms > 0 ? cfg->circuit.cooldown_ms : 1);
    cp.cooldown_max_ms = (uint64_t)cfg->circuit.cooldown_max_ms;
    cp.half_open_max = cfg->circuit.half_open_max;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        provider_rt *p = &e->providers[i];
        const qt_provider_cfg *pc = &cfg->providers[i];
        p->cfg = pc;
        qt_metrics_provider_index(e->metrics, pc->name);   /* index i, as in the config */
        p->ops = qt_provider_ops_for(pc->kind);
        char keyname[300];
        snprintf(keyname, sizeof keyname, "provider:%s", pc->name);
        p->key = qt_limiter_add_key(e->limiter, keyname, qt_config_effective(cfg, pc->rpm),
                                    qt_config_effective(cfg, pc->tpm), pc->max_concurrent);
        p->circuit = qt_circuit_new(&cp);
        p->rbudget = qt_retry_budget_new(cfg->retry.budget_ratio, 10000, 10);
        const char *k = pc->api_key_env ? getenv(pc->api_key_env) : NULL;
        p->api_key = k && *k ? strdup(k) : NULL;
        if (!p->ops || p->key < 0 || !p->circuit || !p->rbudget) {
            snprintf(err, errlen, "cannot set up provider %s", pc->name);
            qt_engine_free(e);
            return NULL;
        }
    }
    for (size_t i = 0; i < cfg->n_models; i++) {
        model_rt *m = &e->models[i];
        const qt_model_cfg *mc = &cfg->models[i];
        m->cfg = mc;
        qt_metrics_model_index(e->metrics, mc->name);      /* index i, as in the config */
        char keyname[300];
        snprintf(keyname, sizeof keyname, "model:%s", mc->name);
        m->key = qt_limiter_add_key(e->limiter, keyname, qt_config_effective(cfg, mc->rpm),
                                    qt_config_effective(cfg, mc->tpm), 0);
        m->circuit = qt_circuit_new(&cp);
        if (m->key < 0 || !m->circuit) {
            snprintf(err, errlen, "cannot set up model %s", mc->name);
            qt_engine_free(e);
            return NULL;
        }
    }
    e->blocked = calloc(qt_limiter_key_count(e->limiter) + 1, 1);
    if (!e->blocked) {
        snprintf(err, errlen, "out of memory");
        qt_engine_free(e);
        return NULL;
    }
    e->env = (fsm_env){ .cfg = cfg, .limiter = e->limiter, .budget = e->budget, .est = e->est,
                        .cache = e->cache, .models = e->models, .providers = e->providers,
                        .rng = &e->rng, .events = e->events, .metrics = e->metrics,
                        .blocked = e->blocked };
    if (cfg->backend.kind == QT_BACKEND_REDIS && !e->virtual_time) {
        /* The fleet (Redis) decides every admission with this process's
         * limiter and budget; a process with the proxy shows as "serve".
         * Not in virtual time: a replay simulates this process alone. */
        qt_backend_gate_opts go = { .cfg = cfg, .mode = opts->want_openai_json ? "serve" : "run",
                                    .events = e->events, .clock = e->clock,
                                    .on_control = engine_fleet_control, .ud = e };
        e->gate = qt_backend_gate_new(&go, err, errlen);
        if (!e->gate) {
            qt_engine_free(e);
            return NULL;
        }
    }
    return e;
}

qt_err qt_engine_start(qt_engine *e)
{
    return engine_loop_start(e);
}

/* Queues one record (e->lock held); the caller requests the pump. */
static qt_err submit_locked(qt_engine *e, ejob *ej)
{
    qt_job *job = ej->job;
    job->enqueued_ms = now_of(e);
    e->jobs++;
    e->by_endpoint[(unsigned)job->endpoint % QT_ENDPOINT_COUNT]++;
    int64_t est = engine_est_prompt(e, job, job->model_idx) + max_tokens_of(e, job, job->model_idx);
    qt_queue_job qj = { .id = job->id, .workflow = job->workflow, .model = job->model,
                        .priority = job->priority,
                        .est_tokens = est > UINT32_MAX ? UINT32_MAX : (uint32_t)est,
                        .payload = ej };
    qt_err r = e->intake_closed || e->stopping ? QT_ERR_CLOSED
               : ejob_find(e, job->id) ? QT_ERR_INVALID
                                                     : qt_queue_push(e->queue, &qj, job->enqueued_ms);
    if (r == QT_OK) {
        ejob_link(e, ej);
        ej->in_queue = 1;
        e->models[job->model_idx].queued++;
    }
    return r;
}

/* The result of a record submit_locked refused (no lock held). */
static void submit_refused(qt_engine *e, ejob *ej, qt_err r)
{
    char msg[200];
    if (r == QT_ERR_INVALID)
        snprintf(msg, sizeof msg, "duplicate job id \"%.100s\" (a job with this id has no result yet)",
                 ej->job->id);
    else
        snprintf(msg, sizeof msg, "not queued: %s", r == QT_ERR_CLOSED ? "quotatop is shutting down"
                                                                     : qt_strerror(r));
    engine_finish_simple(e, ej, r == QT_ERR_INVALID ? QT_STATUS_INVALID : QT_STATUS_CANCELLED, 0, msg);
}

qt_err qt_engine_submit(qt_engine *e, qt_job *job)
{
    qt_err r;
    qt_engine_submit_many(e, &job, 1, &r);
    return r;
}

void qt_engine_submit_many(qt_engine *e, qt_job **jobs, size_t n, qt_err *errs)
{
    enum { BATCH = 256 };
    for (size_t off = 0; off < n; off += BATCH) {
        size_t m = n - off < BATCH ? n - off : BATCH;
        ejob *ej[BATCH];
        qt_err r[BATCH];
        for (size_t i = 0; i < m; i++) {   /* allocated outside the lock */
            ej[i] = ejob_new(e, jobs[off + i]);
            if (!ej[i])
                qt_job_free(jobs[off + i]);
        }
        int queued = 0;
        pthread_mutex_lock(&e->lock);
        for (size_t i = 0; i < m; i++) {
            r[i] = ej[i] ? submit_locked(e, ej[i]) : QT_ERR_NOMEM;
            queued |= r[i] == QT_OK;
        }
        if (queued)
            engine_loop_request_pump(e);
        pthread_mutex_unlock(&e->lock);
        for (size_t i = 0; i < m; i++) {
            if (ej[i] && r[i] != QT_OK)
                submit_refused(e, ej[i], r[i]);
            if (errs)
                errs[off + i] = r[i];
        }
    }
}

qt_err qt_engine_submit_bounded(qt_engine *e, qt_job *job, size_t max_queue, uint64_t max_wait_ms,
                                size_t *depth, uint64_t *wait_ms)
{
    ejob *ej = ejob_new(e, job);
    if (!ej) {
        qt_job_free(job);
        return QT_ERR_NOMEM;
    }
    pthread_mutex_lock(&e->lock);
    qt_queue_counts qc;
    qt_queue_counts_get(e->queue, &qc);
    uint64_t w = engine_estimate_wait_locked(e, job->model_idx, job->prompt_chars, job->max_tokens);
    int full = qc.total >= max_queue;
    int too_long = w != UINT64_MAX && w > max_wait_ms;
    /* Every model is down but @cache has this answer: it is answered at
     * once (the wait estimated is the probe's, which it will not take). */
    int refuse = full || (too_long && !fsm_cache_answers_now(&e->env, job, now_of(e)));
    qt_err r = refuse ? QT_ERR_LIMIT : submit_locked(e, ej);
    if (r == QT_OK)
        engine_loop_request_pump(e);
    pthread_mutex_unlock(&e->lock);
    if (depth)
        *depth = qc.total;
    if (wait_ms)
        *wait_ms = w;
    if (refuse) {
        ejob_free(ej);   /* the job is still the caller's */
        return QT_ERR_LIMIT;
    }
    if (r != QT_OK)
        submit_refused(e, ej, r);   /* its result (shutting down, duplicate id) */
    return QT_OK;
}

void qt_engine_submit_invalid(qt_engine *e, const char *id, const char *workflow, const char *reason)
{
    qt_job *job = calloc(1, sizeof *job);
    if (!job)
        return;
    job->id = strdup(id ? id : "?");
    job->workflow = strdup(workflow ? workflow : "default");
    ejob *ej = ejob_new(e, job);
    if (!ej) {
        qt_job_free(job);
        return;
    }
    pthread_mutex_lock(&e->lock);
    e->jobs++;
    job->enqueued_ms = now_of(e);
    pthread_mutex_unlock(&e->lock);
    engine_finish_simple(e, ej, QT_STATUS_INVALID, 0, reason);
}

void qt_engine_close_intake(qt_engine *e)
{
    pthread_mutex_lock(&e->lock);
    e->intake_closed = 1;
    qt_queue_close(e->queue);
    pthread_cond_broadcast(&e->done_cond);   /* wait_done may hold now */
    pthread_mutex_unlock(&e->lock);
}

int qt_engine_wait_done(qt_engine *e, int64_t timeout_ms)
{
    if (e->virtual_time && e->loops)
        qt_engine_run_virtual(e);
    pthread_mutex_lock(&e->lock);
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_of(e) + (uint64_t)timeout_ms;
    while (e->done < e->jobs || !e->intake_closed) {
        if (now_of(e) >= deadline)
            break;
        engine_wait_until(e, &e->done_cond, deadline);
    }
    int done = e->done >= e->jobs && e->intake_closed;
    pthread_mutex_unlock(&e->lock);
    return done;
}

/* Gives every queued job a `cancelled` result. */
static void cancel_queued(qt_engine *e, const char *why)
{
    for (;;) {
        void *payloads[64];
        pthread_mutex_lock(&e->lock);
        size_t n = qt_queue_drain(e->queue, payloads, NULL, 64);
        for (size_t i = 0; i < n; i++) {
            e->models[((ejob *)payloads[i])->job->model_idx].queued--;
            ((ejob *)payloads[i])->in_queue = 0;
        }
        pthread_mutex_unlock(&e->lock);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            engine_finish_simple(e, payloads[i], QT_STATUS_CANCELLED, 0, why);
    }
}

void qt_engine_shutdown(qt_engine *e, int64_t grace_ms)
{
    pthread_mutex_lock(&e->lock);
    if (e->shut_down) {
        pthread_mutex_unlock(&e->lock);
        return;
    }
    e->stopping = 1;
    e->intake_closed = 1;
    qt_queue_close(e->queue);
    pthread_cond_broadcast(&e->done_cond);
    pthread_mutex_unlock(&e->lock);
    cancel_queued(e, "cancelled: quotatop was stopped before the job was sent");
    engine_loop_shutdown(e, grace_ms);
    cancel_queued(e, "cancelled: quotatop was stopped before the job was sent");
    pthread_mutex_lock(&e->lock);
    e->shut_down = 1;
    pthread_mutex_unlock(&e->lock);
}

void qt_engine_free(qt_engine *e)
{
    if (!e)
        return;
    if (!e->shut_down && e->queue && e->models)   /* every job gets its result */
        qt_engine_shutdown(e, 0);
    engine_loop_free(e);
    for (size_t i = 0; e->providers && i < e->cfg->n_providers; i++) {
        qt_circuit_free(e->providers[i].circuit);
        qt_retry_budget_free(e->providers[i].rbudget);
        if (e->providers[i].api_key) {
            memset(e->providers[i].api_key, 0, strlen(e->providers[i].api_key));
            free(e->providers[i].api_key);
        }
    }
    qt_backend_gate_free(e->gate);   /* the loops are gone: no ticket is taken any more */
    for (size_t i = 0; e->models && i < e->cfg->n_models; i++)
        qt_circuit_free(e->models[i].circuit);
    free(e->models);
    free(e->providers);
    free(e->blocked);
    free(e->idmap);
    qt_queue_free(e->queue);
    qt_limiter_free(e->limiter);
    qt_budget_free(e->budget);
    qt_estimator_free(e->est);
    qt_cache_free(e->cache);
    qt_events_free(e->events);
    qt_metrics_free(e->metrics);
    qt_ledger_close(e->ledger);   /* after the loops: nobody records any more */
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->done_cond);
    free(e);
}
