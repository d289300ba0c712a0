/* engine.c: the threaded driver of one job's state machine (job_fsm.c),
 * and the results. engine_dispatch.c is the workers' main loop,
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
 * A job's life is the state machine of job_fsm.c (route, admit, send,
 * settle, retry or fall back, finish); this file is its threaded driver:
 * a worker offers the job to fsm_dispatch, waits on a condvar for the
 * action's key or timer, sends without the lock, feeds the answer to
 * fsm_done, and writes the result of a FINISH action. A job that must wait
 * after it was taken (a retry's backoff, a fallback's limit) keeps its
 * worker. Counters, histories and latencies go to the metrics module.
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
    const char *finish_reason, *tool_calls;   /* a cache answer's (res NULL) */
} outcome;

/* Emits the one result of a job, updates the counters and frees the job.
 * Called WITHOUT the lock (on_result may do I/O). */
static void finish(qt_engine *e, ejob *ej, const outcome *o)
{
    qt_job *job = ej->job;
    uint64_t now = now_of(e);
    qt_result r = {
        .id = job->id, .workflow = job->workflow, .status = o->status, .model = job->model,
        .endpoint = job->endpoint,
        .model_used = o->model_used, .provider = o->provider, .attempts = o->attempts,
        .prompt_tokens = o->prompt_tokens, .completion_tokens = o->completion_tokens,
        .cost_usd = o->cost_usd, .queued_ms = job->dispatched_ms > job->enqueued_ms
                                                 ? (long)(job->dispatched_ms - job->enqueued_ms) : 0,
        .latency_ms = o->latency_ms, .cached = o->cached, .error = o->error, .content = o->content,
    };
    if (!job->dispatched_ms)
        r.queued_ms = now > job->enqueued_ms ? (long)(now - job->enqueued_ms) : 0;
    engine_result_details(&r, o->res);
    if (o->res == NULL && o->cached) {
        r.finish_reason = o->finish_reason;
        r.tool_calls = o->tool_calls;
    }
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
    ej->finished = 1;
    int last = --ej->refs == 0;   /* posted work may still point at the record */
    if (o->status == QT_STATUS_FAILED)
        event(e, QT_EV_ERROR, job->model, o->provider, job->workflow, job->id, "job %s failed: %.100s",
              job->id, o->error ? o->error : "?");
    /* Waiters want "all done" (wait_done) or, threaded, "a worker freed"
     * (shutdown's grace); the event runtime wakes them only for the first. */
    if (!e->evented || e->done >= e->jobs)
        pthread_cond_broadcast(&e->done_cond);
    pthread_mutex_unlock(&e->lock);
    qt_job_free(job);
    if (last)
        ejob_free(ej);
}

void engine_finish_simple(qt_engine *e, ejob *ej, qt_status st, int attempts, const char *err)
{
    outcome o = { .status = st, .attempts = attempts, .error = err };
    finish(e, ej, &o);
}

void engine_finish_cancelled(qt_engine *e, ejob *ej, const char *why)
{
    engine_finish_simple(e, ej, QT_STATUS_CANCELLED, ej->f.c.attempts, why);
}

int64_t engine_est_prompt(qt_engine *e, const qt_job *job, int mi)
{
    return fsm_est_prompt(&e->env, job, mi);
}

/* Records what one attempt came to in the job's history. Lock held. */
void engine_record_attempt(qt_engine *e, ejob *ej, int mi, int pi, const fsm_attempt *a)
{
    qt_attempt_view av;
    memset(&av, 0, sizeof av);
    snprintf(av.model, sizeof av.model, "%s", e->cfg->models[mi].name);
    snprintf(av.provider, sizeof av.provider, "%s", e->cfg->providers[pi].name);
    av.status = a->built && a->resp.transport == QT_HTTP_OK ? a->resp.status : 0;
    av.total_ms = a->resp.elapsed_ms > 0 ? (uint64_t)a->resp.elapsed_ms : 0;
    av.ttfb_ms = __atomic_load_n(&ej->first_byte_ms, __ATOMIC_RELAXED);
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

/* Copies the machine's state into the job's record (views). Lock held. */
void engine_sync_state(qt_engine *e, ejob *ej)
{
    ej->cur_mi = ej->f.mi;
    ej->cur_pi = ej->f.pi;
    ej->cost_usd = ej->f.cost_usd;
    ejob_set_state(e, ej, ej->f.state, ej->f.wait_on, ej->f.until);
}

/* Carries out a FINISH action: the ledger for a billed answer, the OpenAI
 * rendering for the proxy, the result. Called WITHOUT the lock; frees the
 * job. a is the attempt the action came from (NULL for none). */
void engine_finish_action(qt_engine *e, ejob *ej, fsm_action *act, const fsm_attempt *a)
{
    qt_job *job = ej->job;
    uint64_t wall = wall_of(e);
    const char *oj = NULL;
    char *answer = NULL;   /* a messages job's Anthropic-shaped answer */
    if (act->billed && a) {
        if (e->want_openai_json && (job->endpoint == QT_ENDPOINT_MESSAGES || job->endpoint == QT_ENDPOINT_RESPONSES))
            oj = answer = qt_provider_answer_json(job->endpoint, &a->res);
        else if (e->want_openai_json)
            oj = a->res.openai_json;
        /* Billed: into the ledger before the result goes out. */
        qt_ledger_call lc = { .wall_ms = wall, .workflow = job->workflow, .model = job->model,
                              .model_used = act->model_used, .provider = act->provider,
                              .job_id = job->id, .prompt_tokens = act->prompt_tokens,
                              .completion_tokens = act->completion_tokens, .cost_usd = act->cost_usd };
        ledger_record(e, &lc);
    }
    outcome o = { .status = act->status, .model_used = act->model_used, .provider = act->provider,
                  .attempts = ej->f.c.attempts, .prompt_tokens = act->prompt_tokens,
                  .completion_tokens = act->completion_tokens, .cost_usd = act->cost_usd,
                  .latency_ms = act->latency_ms, .cached = act->cached, .content = act->content,
                  .error = act->status == QT_STATUS_OK ? NULL : act->error, .openai_json = oj,
                  .http_status = act->http_status, .res = act->billed && a ? &a->res : NULL,
                  .finish_reason = act->owned_finish, .tool_calls = act->owned_tool_calls };
    char *owned_content = act->owned_content, *owned_model = act->owned_model;
    char *owned_finish = act->owned_finish, *owned_calls = act->owned_tool_calls;
    finish(e, ej, &o);
    free(owned_content);
    free(owned_model);
    free(owned_finish);
    free(owned_calls);
    free(answer);
}

/* ------------------------------------------------------------ the worker */

/* Marks in e->blocked the keys that waiters more urgent than worker w are
 * held back by (all their keys when they have not tried yet), so a less
 * urgent job does not take that capacity first. Lock held. */
static void fill_blocked(qt_engine *e, int w, const ejob *ej)
{
    memset(e->blocked, 0, qt_limiter_key_count(e->limiter));
    const waiter *me = &e->waiters[w];
    int prio = ej->job->priority;
    uint64_t order = ej->order;
    (void)me;
    for (int i = 0; i < e->nworkers; i++) {
        const waiter *o = &e->waiters[i];
        if (i == w || !o->active)
            continue;
        if (o->priority > prio || (o->priority == prio && o->order > order))
            continue;
        if (o->blocking_key >= 0) {
            e->blocked[o->blocking_key] = 1;
        } else {
            e->blocked[o->keys[0]] = 1;
            e->blocked[o->keys[1]] = 1;
        }
    }
}

/* The worker waits for the key of a WAIT_KEY action, in (priority, pop
 * order) among the workers that wait. Lock held. */
static void wait_key(qt_engine *e, worker *wk, ejob *ej, const fsm_action *act, uint64_t now)
{
    waiter *me = &e->waiters[wk->index];
    int keys[2] = { e->models[ej->f.mi].key, e->providers[ej->f.pi].key };
    me->active = 1;
    me->priority = ej->job->priority;
    me->order = ej->order;
    me->keys[0] = keys[0];
    me->keys[1] = keys[1];
    me->blocking_key = act->key;
    engine_wait_until(e, &e->admit_cond, act->until > now ? act->until : now + 1000);
}

/* One attempt on the wire: send without the lock, then the "done" event.
 * Returns 1 when the job has its result (written, job freed). Lock held on
 * entry and exit. */
static int run_attempt(qt_engine *e, worker *wk, ejob *ej)
{
    qt_job *job = ej->job;
    int mi = ej->f.mi, pi = ej->f.pi;
    if (!job->dispatched_ms)
        job->dispatched_ms = now_of(e);
    __atomic_store_n(&ej->streaming, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&ej->first_byte_ms, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&e->lock);

    fsm_attempt a;
    engine_send(e, wk->http, ej, mi, pi, &a);

    pthread_mutex_lock(&e->lock);
    engine_record_attempt(e, ej, mi, pi, &a);
    fsm_action act;
    fsm_done(&e->env, &ej->f, job, &a, now_of(e), wall_of(e), &act);
    engine_sync_state(e, ej);
    pthread_cond_broadcast(&e->admit_cond);
    if (act.kind == FSM_FINISH && act.status == QT_STATUS_CANCELLED
        && (e->aborting || job->cancel_requested))
        snprintf(act.error, sizeof act.error, "%s",
                 job->cancel_requested ? QT_CANCELLED_BY_OPERATOR : "cancelled: quotatop is shutting down");
    if (act.kind != FSM_FINISH) {
        fsm_attempt_free(&a);
        return 0;
    }
    pthread_mutex_unlock(&e->lock);
    engine_finish_action(e, ej, &act, &a);
    fsm_attempt_free(&a);
    pthread_mutex_lock(&e->lock);
    return 1;
}

/* Carries one job to its result. Called without the lock. */
void engine_run_job(qt_engine *e, worker *wk, ejob *ej, uint64_t order)
{
    qt_job *job = ej->job;
    waiter *me = &e->waiters[wk->index];
    pthread_mutex_lock(&e->lock);
    ej->order = order;
    ej->f.state = QT_JOB_ROUTED;
    engine_sync_state(e, ej);
    for (;;) {
        uint64_t now = now_of(e);
        if (e->aborting || job->cancel_requested) {
            me->active = 0;
            pthread_mutex_unlock(&e->lock);
            engine_finish_cancelled(e, ej, job->cancel_requested ? QT_CANCELLED_BY_OPERATOR
                                               : "cancelled: quotatop is shutting down");
            return;
        }
        if (now < ej->f.c.not_before) {
            engine_wait_until(e, &e->admit_cond, ej->f.c.not_before);
            continue;
        }
        if (e->paused || qt_queue_workflow_paused(e->queue, job->workflow)) {
            /* Nothing new is sent while paused; the job keeps its place. */
            ejob_set_state(e, ej, QT_JOB_ROUTED, "paused", 0);
            engine_wait_until(e, &e->admit_cond, now + 1000);
            continue;
        }
        fill_blocked(e, wk->index, ej);
        fsm_action act;
        fsm_dispatch(&e->env, &ej->f, job, now, wall_of(e), &act);
        engine_sync_state(e, ej);
        if (act.capacity_changed)
            pthread_cond_broadcast(&e->admit_cond);
        if (act.kind == FSM_WAIT_KEY) {
            wait_key(e, wk, ej, &act, now);
            continue;
        }
        me->active = 0;
        if (act.kind == FSM_WAIT_TIMER) {
            engine_wait_until(e, &e->admit_cond, act.until);
        } else if (act.kind == FSM_FINISH) {
            pthread_mutex_unlock(&e->lock);
            engine_finish_action(e, ej, &act, NULL);
            return;
        } else if (act.kind == FSM_SEND) {
            pthread_cond_broadcast(&e->admit_cond);   /* the next waiter may go */
            if (run_attempt(e, wk, ej)) {
                pthread_mutex_unlock(&e->lock);
                return;
            }
        }
    }
}
