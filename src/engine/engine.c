/* engine.c: the scheduler's job loop: routing, reservations, the retry and
 * fallback loop of one job. engine_dispatch.c is the workers' main loop,
 * engine_send.c talks to the upstream, engine_life.c creates, feeds and
 * stops the engine, engine_ctl.c holds the controls and readers.
 *
 * DESIGN
 * One mutex (e->lock) guards every policy object (queue, limiter, budget,
 * circuits, retry budgets, estimator, cache) and the engine's own state.
 * Workers hold it only to decide and to record; they never hold it while
 * building a request, talking to the network or calling on_result.
 * Three condition variables, all on CLOCK_MONOTONIC:
 *   work_cond   a job was queued, dispatch was resumed, or we are stopping;
 *   admit_cond  capacity may have freed (a commit or release, a limit or
 *               pause change, a circuit transition), or we are stopping;
 *   done_cond   a job got its result.
 * A worker that must wait for the limiter sleeps exactly until the earliest
 * time the limiter gave it (or until admit_cond), never polls. Workers
 * waiting on a limiter key are admitted in (priority, pop order): a worker
 * does not try to reserve while a more urgent waiter is held back by a key
 * it needs too, so capacity goes to waiters one at a time and in order, with
 * no thundering herd, and a slow model does not stall the others.
 *
 * Dispatch (engine_dispatch.c): a free worker takes the most urgent queued
 * job that can go now, looking down the queue (PICK_WINDOW entries) past
 * jobs whose model is at its limit, so a slow model's backlog never takes
 * every worker while other models have capacity; when none can go it sleeps
 * until the first could.
 *
 * A job's life in a worker (run_job): route -> reserve -> send -> record,
 * looping until it has a final status. The per-job routing state (which
 * models of the chain are exhausted, attempts per model, the backoff) lives
 * on the worker's stack in a job_ctx; a job that must wait after it was
 * taken (a retry's backoff, a fallback's limit) keeps its worker. Counters,
 * histories and latencies go to the metrics module.
 */
#include "quotatop/engine.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "engine_int.h"


/* ------------------------------------------------------------ helpers */

/* xorshift64*: jitter for backoff and weighted provider choice. */
static uint64_t next_rand(qt_engine *e)
{
    uint64_t x = e->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    e->rng = x;
    return x * 2685821657736338717ull;
}

/* Waits on cond until the engine clock reads until_ms (or a signal). Real
 * waits are capped at one second so a manual clock or a missed wakeup can
 * never stall a worker for long. Called with e->lock held. */
void engine_wait_until(qt_engine *e, pthread_cond_t *cond, uint64_t until_ms)
{
    uint64_t now = now_of(e);
    uint64_t delta = until_ms > now ? until_ms - now : 0;
    if (delta > 1000)
        delta = 1000;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(delta / 1000);
    ts.tv_nsec += (long)(delta % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cond, &e->lock, &ts);
}

/* Appends an event (the ring has its own short lock; order: engine -> events). */
__attribute__((format(printf, 7, 8)))
static void event(qt_engine *e, qt_event_type type, const char *model, const char *provider,
                  const char *workflow, const char *job_id, const char *fmt, ...)
{
    qt_event ev;
    qt_event_init(&ev, type, now_of(e), wall_of(e));
    qt_event_subject(&ev, model, provider, workflow, job_id);
    char msg[QT_EVENT_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qt_event_msgf(&ev, "%s", msg);
    qt_events_add(e->events, &ev);
}

static void circuit_event(qt_engine *e, const char *what, const qt_circuit_transition *tr)
{
    if (!tr->changed)
        return;
    qt_metrics_count(e->metrics, QT_COUNTER_CIRCUIT_TRANSITIONS, 1);
    qt_event ev;
    qt_event_init(&ev, QT_EV_CIRCUIT, now_of(e), wall_of(e));
    qt_event_transition(&ev, qt_circuit_state_name(tr->from), qt_circuit_state_name(tr->to),
                        tr->reason);
    qt_event_subject(&ev, what, NULL, NULL, NULL);
    qt_event_msgf(&ev, "circuit %s %s -> %s (%s)", what, qt_circuit_state_name(tr->from),
                  qt_circuit_state_name(tr->to), tr->reason);
    qt_events_add(e->events, &ev);
    pthread_cond_broadcast(&e->admit_cond);
}
/* ------------------------------------------------------------ results */

/* Records a billed call in the ledger (if any). Called WITHOUT the engine
 * lock; the ledger has its own. A failure never touches the result: it is
 * reported once per engine and the next calls are still tried. */
static void ledger_record(qt_engine *e, const qt_ledger_call *c)
{
    if (!e->ledger || qt_ledger_record(e->ledger, c) == QT_OK)
        return;
    if (__atomic_exchange_n(&e->ledger_warned, 1, __ATOMIC_RELAXED))
        return;
    char msg[300];
    qt_ledger_errmsg(e->ledger, msg, sizeof msg);
    fprintf(stderr, "quotatop: warning: cannot record spend in the ledger (%s); "
                    "results are unaffected, further failures are not reported\n", msg);
}

typedef struct {
    qt_status status;
    const char *model_used, *provider;
    int attempts;
    long prompt_tokens, completion_tokens;
    double cost_usd;
    long latency_ms;
    int cached;
    const char *error, *content, *openai_json;
    int http_status;
    const qt_provider_result *res;   /* the answer's details (ok only), or NULL */
} outcome;

/* Emits the one result of a job, updates the counters and frees the job.
 * Called WITHOUT the lock (on_result may do I/O). */
static void finish(qt_engine *e, ejob *ej, const outcome *o)
{
    qt_job *job = ej->job;
    uint64_t now = now_of(e);
    qt_result r = {
        .id = job->id, .workflow = job->workflow, .status = o->status, .model = job->model,
        .model_used = o->model_used, .provider = o->provider, .attempts = o->attempts,
        .prompt_tokens = o->prompt_tokens, .completion_tokens = o->completion_tokens,
        .cost_usd = o->cost_usd, .queued_ms = job->dispatched_ms > job->enqueued_ms
                                                 ? (long)(job->dispatched_ms - job->enqueued_ms) : 0,
        .latency_ms = o->latency_ms, .cached = o->cached, .error = o->error, .content = o->content,
    };
    if (!job->dispatched_ms)
        r.queued_ms = now > job->enqueued_ms ? (long)(now - job->enqueued_ms) : 0;
    engine_result_details(&r, o->res);
    qt_result_extra extra = { .openai_json = o->openai_json, .http_status = o->http_status,
                              .attempts = ej->att, .n_attempts = ej->n_att,
                              .enqueued_wall_ms = ej->enqueued_wall_ms,
                              .queue_wait_ms = (uint64_t)r.queued_ms };
    if (e->on_result)
        e->on_result(e->on_result_ud, job, &r, &extra);

    static const qt_job_status map[] = {
        [QT_STATUS_OK] = QT_JOB_OK, [QT_STATUS_FAILED] = QT_JOB_FAILED,
        [QT_STATUS_REJECTED] = QT_JOB_REJECTED, [QT_STATUS_CANCELLED] = QT_JOB_CANCELLED,
        [QT_STATUS_INVALID] = QT_JOB_INVALID,
    };
    qt_metrics_record_job(e->metrics, qt_metrics_workflow_index(e->metrics, job->workflow),
                          map[o->status]);
    pthread_mutex_lock(&e->lock);
    e->done++;
    for (int i = 0; i < e->nworkers; i++)   /* nobody may reach it after the free below */
        if (e->workers[i].current == ej)
            e->workers[i].current = NULL;
    ejob_unlink(e, ej);
    if (o->status == QT_STATUS_FAILED)
        event(e, QT_EV_ERROR, job->model, o->provider, job->workflow, job->id, "job %s failed: %.100s",
              job->id, o->error ? o->error : "?");
    pthread_cond_broadcast(&e->done_cond);
    pthread_mutex_unlock(&e->lock);
    qt_job_free(job);
    ejob_free(ej);
}

void engine_finish_simple(qt_engine *e, ejob *ej, qt_status st, int attempts, const char *err)
{
    outcome o = { .status = st, .attempts = attempts, .error = err };
    finish(e, ej, &o);
}

void engine_finish_cancelled(qt_engine *e, ejob *ej, const char *why)
{
    engine_finish_simple(e, ej, QT_STATUS_CANCELLED, ej->c.attempts, why);
}
/* ------------------------------------------------------------ routing */


enum route_result { ROUTE_GO, ROUTE_WAIT, ROUTE_END, ROUTE_REJECT };

int64_t engine_est_prompt(qt_engine *e, const qt_job *job, int mi)
{
    int64_t t = qt_estimator_estimate(e->est, e->cfg->models[mi].name, job->prompt_chars);
    /* Providers add a few tokens of framing per message; estimate high. */
    return t + 4 * job->n_messages + 3;
}

/* Worst-case cost of the job on model mi, for a prompt estimate. */
static double est_cost(qt_engine *e, const qt_job *job, int mi, int64_t prompt)
{
    const qt_model_cfg *m = &e->cfg->models[mi];
    return qt_budget_cost(m->input_usd_per_mtok, m->output_usd_per_mtok, prompt,
                          max_tokens_of(e, job, mi));
}

int engine_key_held(qt_engine *e, int key, uint64_t now, uint64_t *until)
{
    qt_limiter_stats st;
    if (qt_limiter_key_stats(e->limiter, key, now, &st) != QT_OK)
        return 0;
    if (st.held_until_ms > now) {
        *until = st.held_until_ms;
        return 1;
    }
    return 0;
}

/* Marks chain position k exhausted for this job; why says what the next
 * model is standing in for (the fallback is recorded when the job is sent
 * elsewhere, see note_fallback). Lock held. */
static void give_up_model(job_ctx *c, size_t k, const char *why)
{
    c->exhausted[k] = 1;
    snprintf(c->skip_reason, sizeof c->skip_reason, "%s", why);
}

/* Records a fallback when the job goes to chain position k although an
 * earlier model was meant to take it (exhausted, circuit open, cooling down).
 * Lock held. */
static void note_fallback(qt_engine *e, job_ctx *c, const qt_job *job, size_t k)
{
    size_t from_k = c->last_k >= 0 ? (size_t)c->last_k : 0;
    if (k == from_k)
        return;
    const char *from = e->cfg->models[c->chain[from_k]].name;
    const char *to = e->cfg->models[c->chain[k]].name;
    qt_metrics_record_fallback(e->metrics, c->chain[from_k],
                               qt_metrics_workflow_index(e->metrics, job->workflow));
    qt_event ev;
    qt_event_init(&ev, QT_EV_FALLBACK, now_of(e), wall_of(e));
    qt_event_subject(&ev, from, NULL, job->workflow, job->id);
    qt_event_transition(&ev, from, to, c->skip_reason);
    qt_event_msgf(&ev, "fallback %s -> %s (%s)", from, to, c->skip_reason);
    qt_events_add(e->events, &ev);
}

/* Picks a provider of model mi whose circuit admits and that is not held,
 * by weight. Returns its index or -1 (then *until is when one may return). */
static int pick_provider(qt_engine *e, int mi, uint64_t now, uint64_t *until)
{
    const qt_model_cfg *m = &e->cfg->models[mi];
    int ok[16];
    double weights[16], total = 0;
    size_t n = 0;
    for (size_t k = 0; k < m->n_providers && n < 16; k++) {
        int pi = m->provider_idx[k];
        provider_rt *p = &e->providers[pi];
        uint64_t t;
        if (!qt_circuit_peek(p->circuit, now)) {
            t = qt_circuit_next_probe_ms(p->circuit, now);
            if (t < *until)
                *until = t;
            continue;
        }
        if (engine_key_held(e, p->key, now, &t)) {
            if (t < *until)
                *until = t;
            continue;
        }
        ok[n] = pi;
        weights[n] = p->cfg->weight > 0 ? p->cfg->weight : 0;
        total += weights[n];
        n++;
    }
    if (n == 0)
        return -1;
    if (n == 1 || total <= 0)
        return ok[0];
    double r = (double)(next_rand(e) >> 11) / 9007199254740992.0 * total;
    for (size_t i = 0; i < n; i++) {
        if (r < weights[i])
            return ok[i];
        r -= weights[i];
    }
    return ok[n - 1];
}

/* Chooses where the job goes next. Lock held.
 * ROUTE_GO: *k_out, *pi_out set. ROUTE_WAIT: nothing available before *until.
 * ROUTE_END: every model is exhausted. ROUTE_REJECT: the budget refuses
 * (on_exhausted reject); c->last_error holds the reason. */
static int route(qt_engine *e, job_ctx *c, const qt_job *job, uint64_t now, size_t *k_out,
                 int *pi_out, uint64_t *until)
{
    *until = UINT64_MAX;
    int any_left = 0;
    for (size_t k = 0; k < c->n; k++) {
        if (c->exhausted[k])
            continue;
        int mi = c->chain[k];
        const qt_model_cfg *m = &e->cfg->models[mi];
        char why[200];
        if (engine_cannot_carry(e, job, mi, why, sizeof why)) {
            /* Never a retryable error: skip the model, say why (engine_send.c). */
            snprintf(c->last_error, sizeof c->last_error, "%s", why);
            event(e, QT_EV_FALLBACK, m->name, NULL, job->workflow, job->id, "job %s skips %s: %.150s",
                  job->id, m->name, why);
            c->budget_refused = 0;
            c->uncarried++;
            give_up_model(c, k, "cannot carry the request");
            continue;
        }
        int64_t prompt = engine_est_prompt(e, job, mi);
        int mt = max_tokens_of(e, job, mi);
        if (m->context_window > 0 && prompt + mt > m->context_window) {
            snprintf(c->last_error, sizeof c->last_error,
                     "%s: prompt (~%lld tokens) + max_tokens %d exceeds its context window %ld",
                     m->name, (long long)prompt, mt, m->context_window);
            c->budget_refused = 0;
            give_up_model(c, k, "context window");
            continue;
        }
        double cost = est_cost(e, job, mi, prompt);
        if (!qt_budget_fits(e->budget, job->workflow, cost, wall_of(e))) {
            qt_budget_res probe;
            unsigned evs = 0;
            char reason[256] = "";
            if (qt_budget_reserve(e->budget, job->workflow, cost, wall_of(e), &probe, reason,
                                  sizeof reason, &evs) == QT_OK)
                qt_budget_release(e->budget, &probe, wall_of(e));
            if (evs & (QT_BUDGET_EV_EXHAUSTED_RUN | QT_BUDGET_EV_EXHAUSTED_DAY
                       | QT_BUDGET_EV_EXHAUSTED_WORKFLOW))
                event(e, QT_EV_BUDGET_EXHAUSTED, m->name, NULL, job->workflow, job->id,
                      "budget exhausted: %.120s", reason);
            snprintf(c->last_error, sizeof c->last_error, "%s: %s", m->name, reason);
            if (e->cfg->budget.on_exhausted == QT_EXHAUSTED_REJECT)
                return ROUTE_REJECT;
            c->budget_refused = 1;
            give_up_model(c, k, "budget");
            continue;
        }
        any_left = 1;
        model_rt *mr = &e->models[mi];
        uint64_t t;
        if (!qt_circuit_peek(mr->circuit, now)) {
            t = qt_circuit_next_probe_ms(mr->circuit, now);
            if (t < *until)
                *until = t;
            snprintf(c->skip_reason, sizeof c->skip_reason, "circuit open");
            continue;
        }
        if (engine_key_held(e, mr->key, now, &t)) {
            if (t < *until)
                *until = t;
            snprintf(c->skip_reason, sizeof c->skip_reason, "cooling down after 429");
            continue;
        }
        int pi = pick_provider(e, mi, now, until);
        if (pi < 0) {
            snprintf(c->skip_reason, sizeof c->skip_reason, "no provider available");
            continue;
        }
        *k_out = k;
        *pi_out = pi;
        return ROUTE_GO;
    }
    return any_left ? ROUTE_WAIT : ROUTE_END;
}

/* 1 when a waiter more urgent than worker w is held back by one of keys: it
 * must have that capacity first. A more urgent waiter held back by a key w
 * does not need (its own model's RPM, say) does not stop w, so one busy
 * model cannot stall the others on a shared provider. A waiter that has not
 * tried yet (blocking_key -1) counts as needing all of its keys. Lock held. */
static int blocked_by_better(qt_engine *e, int w, const int keys[2])
{
    const waiter *me = &e->waiters[w];
    for (int i = 0; i < e->nworkers; i++) {
        const waiter *o = &e->waiters[i];
        if (i == w || !o->active)
            continue;
        if (o->priority > me->priority || (o->priority == me->priority && o->order > me->order))
            continue;
        for (int b = 0; b < 2; b++) {
            if (o->blocking_key >= 0 ? o->blocking_key == keys[b]
                                     : (o->keys[0] == keys[b] || o->keys[1] == keys[b]))
                return 1;
        }
    }
    return 0;
}

/* The key of keys[] that makes a reservation wait longest. Lock held. */
static int blocking_key_of(qt_engine *e, const int keys[2], int64_t tokens, uint64_t now)
{
    uint64_t w0 = qt_limiter_wait_ms(e->limiter, &keys[0], 1, tokens, now);
    uint64_t w1 = qt_limiter_wait_ms(e->limiter, &keys[1], 1, tokens, now);
    return w1 > w0 ? keys[1] : keys[0];
}
/* Records what one attempt came to in the job's history. Lock held. */
static void record_attempt(qt_engine *e, ejob *ej, int mi, int pi, const engine_attempt *a)
{
    qt_attempt_view av;
    memset(&av, 0, sizeof av);
    snprintf(av.model, sizeof av.model, "%s", e->cfg->models[mi].name);
    snprintf(av.provider, sizeof av.provider, "%s", e->cfg->providers[pi].name);
    av.status = a->built && a->resp.transport == QT_HTTP_OK ? a->resp.status : 0;
    av.total_ms = a->resp.elapsed_ms > 0 ? (uint64_t)a->resp.elapsed_ms : 0;
    av.ttfb_ms = ej->first_byte_ms;
    if (a->parsed_ok) {
        av.prompt_tokens = a->res.prompt_tokens > 0 ? (int)a->res.prompt_tokens : 0;
        av.completion_tokens = a->res.completion_tokens > 0 ? (int)a->res.completion_tokens : 0;
    }
    if (a->limits.retry_after_ms > 0)
        av.retry_after_ms = (uint64_t)a->limits.retry_after_ms;
    if (!a->parsed_ok || a->verdict.cls != QT_RETRY_OK)
        snprintf(av.error, sizeof av.error, "%.159s", a->err[0] ? a->err
                                                  : a->verdict.reason ? a->verdict.reason : "error");
    ejob_add_attempt(ej, &av);
}

/* ------------------------------------------------------------ the worker */

/* Carries one job to its result. Called without the lock. */
void engine_run_job(qt_engine *e, worker *wk, ejob *ej, uint64_t order)
{
    qt_job *job = ej->job;
    job_ctx *cp = &ej->c;
    memset(cp, 0, sizeof *cp);
    cp->last_k = -1;
    cp->order = order;
    cp->n = qt_config_chain(e->cfg, job->model_idx, cp->chain, MAX_CHAIN, &cp->has_cache);
    snprintf(cp->last_error, sizeof cp->last_error, "no model of the chain could take the job");
    waiter *me = &e->waiters[wk->index];

    pthread_mutex_lock(&e->lock);
    ejob_set_state(e, ej, QT_JOB_ROUTED, NULL, 0);
    for (;;) {
        uint64_t now = now_of(e);
        if (e->aborting || job->cancel_requested) {
            me->active = 0;
            pthread_mutex_unlock(&e->lock);
            engine_finish_simple(e, ej, QT_STATUS_CANCELLED, cp->attempts,
                          job->cancel_requested ? QT_CANCELLED_BY_OPERATOR
                                                : "cancelled: quotatop is shutting down");
            return;
        }
        if (now < cp->not_before) {
            char on[EJ_WAIT_LEN];
            snprintf(on, sizeof on, "retry of %.60s", ej->cur_mi >= 0 ? e->cfg->models[ej->cur_mi].name : "?");
            ejob_set_state(e, ej, QT_JOB_WAIT_BACKOFF, on, cp->not_before);
            engine_wait_until(e, &e->admit_cond, cp->not_before);
            continue;
        }
        if (e->paused || qt_queue_workflow_paused(e->queue, job->workflow)) {
            /* Nothing new is sent while paused; the job keeps its place. */
            ejob_set_state(e, ej, QT_JOB_ROUTED, "paused", 0);
            engine_wait_until(e, &e->admit_cond, now + 1000);
            continue;
        }
        size_t k = 0;
        int pi = -1;
        uint64_t until;
        int r = route(e, cp, job, now, &k, &pi, &until);
        if (r == ROUTE_REJECT || r == ROUTE_END) {
            me->active = 0;
            char *content = NULL, *used = NULL;
            if (r == ROUTE_END && cp->has_cache
                && qt_cache_get(e->cache, qt_cache_key(job->model, job->body), &content, &used)) {
                qt_metrics_count(e->metrics, QT_COUNTER_CACHE_HITS, 1);
                event(e, QT_EV_CACHE_HIT, job->model, NULL, job->workflow, job->id,
                      "job %s answered from cache (%s)", job->id, used);
                pthread_mutex_unlock(&e->lock);
                outcome o = { .status = QT_STATUS_OK, .model_used = used, .provider = QT_CACHE_MODEL,
                              .attempts = cp->attempts, .cached = 1, .content = content };
                finish(e, ej, &o);
                free(content);
                free(used);
                return;
            }
            int rejected = r == ROUTE_REJECT || cp->budget_refused;
            pthread_mutex_unlock(&e->lock);
            char msg[400];
            snprintf(msg, sizeof msg, "%s%s", cp->last_error,
                     rejected || cp->n <= 1 ? "" : " (every model of the chain was tried)");
            outcome o = { .status = rejected ? QT_STATUS_REJECTED : QT_STATUS_FAILED,
                          .attempts = cp->attempts, .error = msg, 
                          .http_status = cp->uncarried == (int)cp->n ? 400 : cp->last_status };
            finish(e, ej, &o);
            return;
        }
        if (r == ROUTE_WAIT) {
            me->active = 0;
            ejob_set_state(e, ej, QT_JOB_WAIT_PROBE, cp->skip_reason, until == UINT64_MAX ? 0 : until);
            engine_wait_until(e, &e->admit_cond, until);
            continue;
        }

        int mi = cp->chain[k];
        model_rt *mr = &e->models[mi];
        provider_rt *pr = &e->providers[pi];
        int keys[2] = { mr->key, pr->key };
        int64_t prompt_est = engine_est_prompt(e, job, mi);
        int64_t est_tokens = prompt_est + max_tokens_of(e, job, mi);
        if (!me->active || me->keys[0] != keys[0] || me->keys[1] != keys[1])
            me->blocking_key = -1;   /* a new wait: not known yet */
        me->active = 1;
        me->priority = job->priority;
        me->order = cp->order;
        me->keys[0] = keys[0];
        me->keys[1] = keys[1];
        ej->cur_mi = mi;
        ej->cur_pi = pi;
        if (blocked_by_better(e, wk->index, keys)) {
            me->blocking_key = blocking_key_of(e, keys, est_tokens, now);
            char on[EJ_WAIT_LEN];
            snprintf(on, sizeof on, "%.60s (a more urgent job first)",
                     qt_limiter_key_name(e->limiter, me->blocking_key));
            ejob_set_state(e, ej, QT_JOB_WAIT_KEY, on, 0);
            engine_wait_until(e, &e->admit_cond, now + 1000);
            continue;
        }
        qt_limiter_res lres;
        uint64_t earliest = 0;
        qt_err lr = qt_limiter_reserve(e->limiter, keys, 2, est_tokens, now, &lres, &earliest);
        if (lr != QT_OK) {
            me->blocking_key = blocking_key_of(e, keys, est_tokens, now);
            ejob_set_state(e, ej, QT_JOB_WAIT_KEY, qt_limiter_key_name(e->limiter, me->blocking_key),
                           earliest == QT_LIMITER_NEVER ? 0 : earliest);
            engine_wait_until(e, &e->admit_cond, earliest == QT_LIMITER_NEVER ? now + 1000 : earliest);
            continue;
        }
        /* Admitted by the limiter: reserve the worst-case cost and take the
         * circuits' permits, all under the same lock, or give it all back. */
        qt_budget_res bres;
        unsigned bev = 0;
        char reason[256] = "";
        double cost = est_cost(e, job, mi, prompt_est);
        if (qt_budget_reserve(e->budget, job->workflow, cost, wall_of(e), &bres, reason,
                              sizeof reason, &bev) != QT_OK) {
            qt_limiter_release(e->limiter, &lres, now);
            continue;   /* route() will see the refusal and decide */
        }
        qt_circuit_permit mperm = { 0 }, pperm = { 0 };
        qt_circuit_transition tr;
        memset(&tr, 0, sizeof tr);
        int m_ok = qt_circuit_allow(mr->circuit, now, &mperm, &tr);
        circuit_event(e, mr->cfg->name, &tr);
        memset(&tr, 0, sizeof tr);
        int p_ok = m_ok && qt_circuit_allow(pr->circuit, now, &pperm, &tr);
        circuit_event(e, pr->cfg->name, &tr);
        if (!m_ok || !p_ok) {
            if (m_ok)
                qt_circuit_record(mr->circuit, &mperm, QT_CIRCUIT_IGNORED, now, &tr);
            qt_limiter_release(e->limiter, &lres, now);
            qt_budget_release(e->budget, &bres, wall_of(e));
            pthread_cond_broadcast(&e->admit_cond);
            continue;
        }
        me->active = 0;
        pthread_cond_broadcast(&e->admit_cond);   /* the next waiter may go */
        note_fallback(e, cp, job, k);
        cp->last_k = (int)k;
        cp->attempts++;
        mr->in_flight++;
        pr->in_flight++;
        if (cp->attempts == 1)   /* retries do not feed the budget that limits them */
            qt_retry_budget_record_request(pr->rbudget, now);
        if (!job->dispatched_ms)
            job->dispatched_ms = now;
        __atomic_store_n(&ej->streaming, 0, __ATOMIC_RELAXED);
        ej->first_byte_ms = 0;
        ejob_set_state(e, ej, QT_JOB_IN_FLIGHT, NULL, 0);
        pthread_mutex_unlock(&e->lock);

        /* ---- no lock: build, send, parse ---- */
        engine_attempt a;
        engine_send(e, wk->http, ej, mi, pi, &a);

        pthread_mutex_lock(&e->lock);
        now = now_of(e);
        uint64_t wall = wall_of(e);
        record_attempt(e, ej, mi, pi, &a);
        ejob_set_state(e, ej, QT_JOB_ROUTED, NULL, 0);
        mr->in_flight--;
        pr->in_flight--;
        if (a.built && a.resp.transport == QT_HTTP_ABORTED && !a.streamed) {
            /* Stopped by shutdown or cancel: no verdict on anyone; the loop's
             * top writes the `cancelled` result. */
            qt_limiter_commit(e->limiter, &lres, est_tokens, now);
            qt_budget_release(e->budget, &bres, wall_of(e));
            qt_circuit_record(mr->circuit, &mperm, QT_CIRCUIT_IGNORED, now, &tr);
            qt_circuit_record(pr->circuit, &pperm, QT_CIRCUIT_IGNORED, now, &tr);
            pthread_cond_broadcast(&e->admit_cond);
            engine_attempt_free(&a);
            continue;
        }
        qt_retry_verdict v = a.verdict;
        long latency = a.resp.elapsed_ms;
        cp->last_status = a.resp.status;
        engine_feed_limits(e, mr->key, &a.limits, now);

        /* Reconcile the reservations with what happened. */
        if (v.cls == QT_RETRY_OK) {
            long pt = a.res.prompt_tokens, ct = a.res.completion_tokens;
            /* Providers count prompt + max_tokens against TPM when they admit
             * a request and do not give unused max_tokens back, so that is
             * what the limiter keeps: the estimate's error on the prompt is
             * refunded or charged, the unused completion is not. */
            int64_t charged = pt + max_tokens_of(e, job, mi);
            qt_limiter_commit(e->limiter, &lres, charged > pt + ct ? charged : pt + ct, now);
            double actual = engine_cost(mr->cfg, &a.res);
            bev = 0;
            qt_budget_commit(e->budget, &bres, actual, pt, ct, wall, &bev);
            ej->cost_usd += actual;
            if (bev & (QT_BUDGET_EV_WARN_RUN | QT_BUDGET_EV_WARN_DAY | QT_BUDGET_EV_WARN_WORKFLOW)) {
                const char *which = bev & QT_BUDGET_EV_WARN_RUN ? "run"
                                    : bev & QT_BUDGET_EV_WARN_DAY ? "day" : "workflow";
                event(e, QT_EV_BUDGET_WARN, mr->cfg->name, NULL, job->workflow, job->id,
                      "%s budget passed %.0f%% (workflow %s)", which,
                      e->cfg->budget.warn_ratio * 100, job->workflow);
            }
            qt_estimator_observe(e->est, mr->cfg->name, job->prompt_chars,
                                 pt > 4 ? pt : 0);
            qt_metrics_request mreq = { mi, pi, qt_metrics_workflow_index(e->metrics, job->workflow),
                                        QT_OUTCOME_OK, (uint64_t)(latency > 0 ? latency : 0),
                                        (uint64_t)pt, (uint64_t)ct, actual };
            qt_metrics_record_request(e->metrics, &mreq, now);
            if (cp->has_cache)
                qt_cache_put(e->cache, qt_cache_key(job->model, job->body), a.res.content,
                             mr->cfg->name);
        } else if (a.built && a.resp.transport == QT_HTTP_CONNECT) {
            qt_limiter_release(e->limiter, &lres, now);   /* never reached the provider */
            qt_budget_release(e->budget, &bres, wall);
        } else {
            /* It reached the provider (or may have): the request counts, the
             * tokens were not consumed, nothing is billed. */
            qt_limiter_commit(e->limiter, &lres, a.resp.transport == QT_HTTP_TIMEOUT ? est_tokens : 0, now);
            qt_budget_release(e->budget, &bres, wall);
        }
        qt_circuit_outcome co = v.cls == QT_RETRY_OK ? QT_CIRCUIT_SUCCESS
                                : v.upstream_failure ? QT_CIRCUIT_FAILURE
                                : v.rate_limited ? QT_CIRCUIT_IGNORED
                                : a.built ? QT_CIRCUIT_SUCCESS : QT_CIRCUIT_IGNORED;
        memset(&tr, 0, sizeof tr);
        qt_circuit_record(mr->circuit, &mperm, co, now, &tr);
        circuit_event(e, mr->cfg->name, &tr);
        /* The provider's breaker judges the provider: only failures to reach
         * it (timeouts, connection errors) count against it. An HTTP answer,
         * even a 5xx about one model, shows the provider is up; that model's
         * own breaker takes the failure. */
        qt_circuit_outcome pco = co;
        if (co == QT_CIRCUIT_FAILURE && a.resp.transport == QT_HTTP_OK)
            pco = QT_CIRCUIT_SUCCESS;
        memset(&tr, 0, sizeof tr);
        qt_circuit_record(pr->circuit, &pperm, pco, now, &tr);
        circuit_event(e, pr->cfg->name, &tr);
        pthread_cond_broadcast(&e->admit_cond);

        if (v.cls == QT_RETRY_OK) {
            const char *oj = e->want_openai_json ? a.res.openai_json : NULL;
            pthread_mutex_unlock(&e->lock);
            double actual = engine_cost(mr->cfg, &a.res);
            /* Billed: into the ledger before the result goes out (disk I/O,
             * so only now that the engine lock is released). */
            qt_ledger_call lc = { .wall_ms = wall, .workflow = job->workflow, .model = job->model,
                                  .model_used = mr->cfg->name, .provider = pr->cfg->name,
                                  .job_id = job->id, .prompt_tokens = a.res.prompt_tokens,
                                  .completion_tokens = a.res.completion_tokens, .cost_usd = actual };
            ledger_record(e, &lc);
            outcome o = { .status = QT_STATUS_OK, .model_used = mr->cfg->name,
                          .provider = pr->cfg->name, .attempts = cp->attempts,
                          .prompt_tokens = a.res.prompt_tokens,
                          .completion_tokens = a.res.completion_tokens, .cost_usd = actual,
                          .latency_ms = latency, .content = a.res.content, .openai_json = oj,
                          .http_status = a.resp.status, .res = &a.res };
            finish(e, ej, &o);
            engine_attempt_free(&a);
            return;
        }

        /* Not ok: remember why, count it, decide. */
        if (a.built)
            snprintf(cp->last_error, sizeof cp->last_error, "%.60s via %.60s: %.170s", mr->cfg->name,
                     pr->cfg->name, a.err[0] ? a.err : v.reason);
        else
            snprintf(cp->last_error, sizeof cp->last_error, "%.60s: %.230s", mr->cfg->name, a.err);
        cp->budget_refused = 0;
        qt_metrics_request mreq = { mi, pi, qt_metrics_workflow_index(e->metrics, job->workflow),
                                    engine_outcome_of(&a), (uint64_t)(latency > 0 ? latency : 0), 0, 0, 0 };
        qt_metrics_record_request(e->metrics, &mreq, now);
        if (v.cls == QT_RETRY_FATAL) {
            pthread_mutex_unlock(&e->lock);
            int gone = a.client_gone || job->cancel_requested;
            outcome o = { .status = gone ? QT_STATUS_CANCELLED : QT_STATUS_FAILED,
                          .attempts = cp->attempts, .error = cp->last_error, .http_status = cp->last_status };
            finish(e, ej, &o);
            engine_attempt_free(&a);
            return;
        }
        if (v.cls == QT_RETRY_FALLBACK) {
            give_up_model(cp, k, v.reason);
            engine_attempt_free(&a);
            continue;
        }
        /* Retryable: wait as the upstream asks, else back off with jitter. */
        cp->tries[k]++;
        qt_retry_policy pol = { e->cfg->retry.max_attempts, e->cfg->retry.base_ms,
                                e->cfg->retry.cap_ms, e->cfg->retry.max_retry_after_ms };
        qt_retry_hints h;
        qt_retry_hints_init(&h);
        h.now_wall_ms = (int64_t)wall;
        if (a.limits.retry_after_ms >= 0)
            h.retry_after_ms = a.limits.retry_after_ms;
        if (v.rate_limited) {
            if (a.limits.requests.remaining == 0)
                h.reset_requests_ms = a.limits.requests.reset_ms;
            if (a.limits.tokens.remaining == 0)
                h.reset_tokens_ms = a.limits.tokens.reset_ms;
        }
        int64_t wait = 0;
        qt_retry_decision d = qt_retry_wait_ms(&pol, cp->tries[k], &h, next_rand(e), &wait);
        if (d == QT_RETRY_WAIT && !v.rate_limited && !qt_retry_budget_try_spend(pr->rbudget, now)) {
            d = QT_RETRY_MOVE_ON;
            v.reason = "retry budget spent";
        }
        if (d == QT_RETRY_WAIT) {
            qt_metrics_record_retry(e->metrics, mi, pi, qt_metrics_workflow_index(e->metrics, job->workflow));
            qt_event ev;
            qt_event_init(&ev, v.rate_limited ? QT_EV_RATE_LIMITED : QT_EV_RETRY, now, wall);
            qt_event_subject(&ev, mr->cfg->name, pr->cfg->name, job->workflow, job->id);
            ev.http_status = a.resp.status;
            ev.attempt = cp->tries[k];
            ev.wait_ms = (uint64_t)wait;
            qt_event_transition(&ev, NULL, NULL, v.reason);
            qt_event_msgf(&ev, "%s %s: %s, retry %d in %lldms", v.rate_limited ? "429" : "retry",
                          mr->cfg->name, v.reason, cp->tries[k], (long long)wait);
            qt_events_add(e->events, &ev);
            if (v.rate_limited)
                qt_limiter_hold(e->limiter, mr->key, now + (uint64_t)wait);   /* cooldown */
            else
                cp->not_before = now + (uint64_t)wait;
        } else {
            /* A 429 asking for more than max_retry_after_ms: this job moves
             * down the chain, and the key cools down for the capped wait so
             * the next jobs do not earn the same 429. */
            if (d == QT_RETRY_MOVE_ON && v.rate_limited)
                qt_limiter_hold(e->limiter, mr->key, now + (uint64_t)qt_retry_hold_cap_ms(&pol, wait));
            give_up_model(cp, k, d == QT_RETRY_MOVE_ON ? v.reason : "attempts used up");
        }
        engine_attempt_free(&a);
    }
}
