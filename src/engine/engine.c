/* engine.c: the engine's shared pieces: a job's result (finish, the
 * ledger, the OpenAI rendering of a FINISH action), its attempt history,
 * and the wait on a condition variable of the engine's clock. The job's
 * life is the state machine of job_fsm.c, driven by the event runtime
 * (engine_loop.c); engine_send.c builds and classifies one attempt,
 * engine_life.c creates, feeds and stops the engine, engine_ctl.c holds
 * the controls and readers, engine_fleet.c the shared backend's seam.
 *
 * DESIGN
 * One mutex (e->lock) guards every policy object (queue, limiter, budget,
 * circuits, retry budgets, estimator, cache) and the engine's own state;
 * nobody holds it while building a request, talking to the network or
 * calling on_result. done_cond (CLOCK_MONOTONIC) is signalled when the
 * intake is closed and every job has its result, and while stopping when
 * nothing is in flight (not at every result: `serve`'s main thread would
 * wake once a request). Counters, histories and
 * latencies go to the metrics module.
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
 * never stall a waiter for long. Called with e->lock held. */
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
    engine_loop_result_given(e);

    static const qt_job_status map[] = {
        [QT_STATUS_OK] = QT_JOB_OK, [QT_STATUS_FAILED] = QT_JOB_FAILED,
        [QT_STATUS_REJECTED] = QT_JOB_REJECTED, [QT_STATUS_CANCELLED] = QT_JOB_CANCELLED,
        [QT_STATUS_INVALID] = QT_JOB_INVALID,
    };
    qt_metrics_record_job(e->metrics, qt_metrics_workflow_index(e->metrics, job->workflow),
                          map[o->status]);
    pthread_mutex_lock(&e->lock);
    e->done++;
    ejob_unlink(e, ej);
    ej->finished = 1;
    int last = --ej->refs == 0;   /* posted work may still point at the record */
    if (o->status == QT_STATUS_FAILED)
        event(e, QT_EV_ERROR, job->model, o->provider, job->workflow, job->id, "job %s failed: %.100s",
              job->id, o->error ? o->error : "?");
    /* Waiters want "all done" (wait_done, shutdown), which needs the
     * intake closed: while it is open (serve) a result wakes nobody;
     * shutdown's grace waits for "nothing in flight", which complete()
     * signals. */
    if (e->done >= e->jobs && e->intake_closed)
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
    if (!av.ttfb_ms && a->built && a->resp.ttfb_ms > 0)   /* a whole answer: its headers' arrival */
        av.ttfb_ms = (uint64_t)a->resp.ttfb_ms;
    if (a->parsed_ok) {
        av.prompt_tokens = a->res.prompt_tokens > 0 ? (int)a->res.prompt_tokens : 0;
        av.completion_tokens = a->res.completion_tokens > 0 ? (int)a->res.completion_tokens : 0;
    }
    if (a->limits.retry_after_ms > 0)
        av.retry_after_ms = (uint64_t)a->limits.retry_after_ms;
    uint64_t now = now_of(e), sent = now > av.total_ms ? now - av.total_ms : 0;
    av.at_ms = sent > ej->job->enqueued_ms ? sent - ej->job->enqueued_ms : 0;
    if (a->built) {   /* what the upstream says it allows (replay learns it) */
        av.limit_requests = a->limits.requests.limit > 0 ? a->limits.requests.limit : 0;
        av.limit_tokens = a->limits.tokens.limit > 0 ? a->limits.tokens.limit : 0;
    }
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
