/* engine_loop.c: the event runtime: no thread per job. A small pool of
 * qt_loop threads (about one per core; one loop driven by the caller in
 * virtual time) runs every job's state machine (job_fsm.c): waits are
 * timers, requests go through the transport (contract C; live = libcurl
 * multi), and `workers` bounds the requests on the wire, not threads.
 *
 * DESIGN
 * Every decision is taken under e->lock (the one engine mutex); no lock is
 * held while building a request, during the transport's post/abort, or
 * while a result is written (on_result, the ledger).
 *
 * The pump (requested by submit, a completion, a control; it runs on the
 * loop that asked, or for other threads on the loop with the fewest
 * requests on the wire) offers queued jobs to fsm_dispatch in queue order (priority with aging),
 * looking PUMP_WINDOW entries down the queue past jobs that must wait (and,
 * when every one of those waits, PUMP_DEEP entries for the jobs of models
 * that do not: a long backlog on one key hides no other model's job). A
 * job that waits on a limiter key stays queued in its place (state
 * wait-key) and marks the key in e->blocked for the rest of the pass, so
 * the capacity that frees on a key goes to the most urgent job that needs
 * it, whether it was never sent or is back after a retry or a fallback,
 * and a job that waits never blocks one that needs other keys. Jobs that
 * leave the queue carry their action out after the lock: SEND posts
 * start_send to the job's loop; WAIT_TIMER arms a timer there; FINISH
 * writes the result. A new job goes to the pump's own loop unless that
 * loop has clearly more on the wire than the least busy one, so a loop
 * whose request finished sends the next one itself, with no hand-off
 * between threads, and the loops stay balanced. When nothing more can go,
 * one pump timer (loop 0's) is armed for the earliest time a skipped job
 * could.
 *
 * A transfer ends in on_done on its loop: the "done" event settles the
 * reservations and says what next: finish, a backoff timer, or back into
 * the queue at the place it had (keep_place). A timer's end puts the job
 * back in the queue too. Either way the pump decides who goes.
 *
 * Lifetime: a job's record (ejob) has one reference until its result plus
 * one per piece of work posted to a loop, armed timer or pending action,
 * so work that runs after the result finds `finished` and lets go.
 * Cancel: a queued job gets its result at once; a timer is cancelled on
 * its loop; a transfer is aborted on its loop (its on_done then finishes
 * the job `cancelled` and releases every reservation).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "engine_int.h"

#define PUMP_WINDOW 256   /* how far down the queue a pump looks for a job that can go */
#define PUMP_DEEP 16384   /* how far a deep look goes, for models the window did not reach */
#define PUMP_DEEP_POPS 32 /* deep looks per pump at most */
#define PUMP_BATCH 1024   /* jobs one pump takes before it lets the loop run */
#define CONN_SHARE 500    /* transfers per transport connection (curl multi) at most */

static void pump(void *ud);
static void start_send(void *ud);
static void arm_timer(void *ud);

static __thread const engine_loopctx *tls_loop;   /* the loop this thread runs, NULL none */

/* Index of the loop of e the calling thread runs, -1 for another thread
 * (in virtual time the caller drives loop 0 without being its thread). */
static int current_loop(const qt_engine *e)
{
    const engine_loopctx *lc = tls_loop;
    if (lc && e->loops && lc >= e->loops && lc < e->loops + e->nloops)
        return (int)(lc - e->loops);
    return -1;
}

/* The loop with the fewest requests on the wire (lock held). */
static int least_busy_loop(const qt_engine *e)
{
    int best = 0;
    for (int i = 1; i < e->nloops; i++)
        if (e->loops[i].in_flight < e->loops[best].in_flight)
            best = i;
    return best;
}

void ejob_release(ejob *ej)
{
    if (--ej->refs == 0)
        ejob_free(ej);
}

static qt_loop *loop_of(qt_engine *e, const ejob *ej)
{
    return e->loops[ej->loop].loop;
}

/* Runs fn(ej) on the job's loop, holding a reference for it. Lock held. */
static void post_job(qt_engine *e, ejob *ej, qt_loop_fn fn)
{
    ej->refs++;
    if (qt_loop_post(loop_of(e, ej), fn, ej) != QT_OK)
        ej->refs--;   /* out of memory: the job stays where it is */
}

void engine_loop_request_pump(qt_engine *e)
{
    if (e->pump_posted || !e->loops || e->stopping)
        return;
    int k = current_loop(e);
    if (k < 0)
        k = least_busy_loop(e);
    if (qt_loop_post(e->loops[k].loop, pump, e) == QT_OK)
        e->pump_posted = 1;
}

/* On loop 0: (re)arms the pump timer at e->pump_at. */
static void pump_timer_fired(void *ud)
{
    qt_engine *e = ud;
    pthread_mutex_lock(&e->lock);
    e->pump_timer = NULL;
    e->pump_at = UINT64_MAX;
    pthread_mutex_unlock(&e->lock);
    pump(e);
}

static void rearm(void *ud)
{
    qt_engine *e = ud;
    pthread_mutex_lock(&e->lock);
    e->rearm_posted = 0;
    if (e->pump_timer)
        qt_loop_timer_cancel(e->loops[0].loop, e->pump_timer);
    e->pump_timer = e->pump_at == UINT64_MAX ? NULL
                                             : qt_loop_timer_add(e->loops[0].loop, e->pump_at,
                                                                 pump_timer_fired, e);
    pthread_mutex_unlock(&e->lock);
}

/* The pump should run again at `at` (lock held; called on loop 0). */
static void pump_at(qt_engine *e, uint64_t at)
{
    if (at >= e->pump_at)
        return;
    e->pump_at = at;
    if (!e->rearm_posted && qt_loop_post(e->loops[0].loop, rearm, e) == QT_OK)
        e->rearm_posted = 1;
}

void engine_loop_requeue(qt_engine *e, ejob *ej)
{
    qt_job *job = ej->job;
    int64_t est = engine_est_prompt(e, job, job->model_idx) + max_tokens_of(e, job, job->model_idx);
    qt_queue_job qj = { .id = job->id, .workflow = job->workflow, .model = job->model,
                        .priority = job->priority,
                        .est_tokens = est > UINT32_MAX ? UINT32_MAX : (uint32_t)est, .payload = ej,
                        .keep_place = 1, .keep_enqueue_ms = ej->q_enq_ms, .keep_seq = ej->q_seq };
    if (qt_queue_push(e->queue, &qj, now_of(e)) == QT_OK) {
        ej->in_queue = 1;
        e->models[job->model_idx].queued++;
    }
    engine_loop_request_pump(e);
}

/* ------------------------------------------------------------ the pump */

typedef struct {
    qt_engine *e;
    uint64_t now, wall, wake;
    fsm_action *fin;   /* the loop's scratch for FINISH actions */
    int nfin;
} pump_ctx;

/* Offers one queued job the chance to go now. 1: it leaves the queue with
 * an action in ej->act; 0: it waits on a key, in its place. */
static int pump_accept(void *ud, const qt_queue_view *v)
{
    pump_ctx *pc = ud;
    qt_engine *e = pc->e;
    ejob *ej = v->payload;
    model_rt *mr = &e->models[ej->job->model_idx];
    if (ej->pass == e->pass || e->in_flight_jobs >= e->max_in_flight) {
        mr->wait_pass = e->pass;
        return 0;
    }
    if (ej->fl && engine_fleet_holds(e, ej, pc->now, &pc->wake)) {
        mr->wait_pass = e->pass;
        return 0;   /* the fleet said wait (backend.kind "redis") */
    }
    fsm_action act;
    fsm_dispatch(&e->env, &ej->f, ej->job, pc->now, pc->wall, &act);
    engine_sync_state(e, ej);
    if (act.kind == FSM_WAIT_KEY) {
        ej->pass = e->pass;
        mr->wait_pass = e->pass;
        if (act.until > pc->now && act.until < pc->wake)
            pc->wake = act.until;
        return 0;
    }
    if (act.kind == FSM_FINISH) {
        if (pc->nfin >= PUMP_BATCH)
            return 0;   /* not reached: a pump takes at most PUMP_BATCH jobs */
        ej->act_fin = &pc->fin[pc->nfin++];
        *ej->act_fin = act;
    }
    ej->act = act.kind;
    ej->act_until = act.until;
    ej->q_enq_ms = v->enqueue_ms;
    ej->q_seq = v->seq;
    if (act.kind == FSM_SEND)
        e->in_flight_jobs++;
    return 1;
}

/* The deep look: only jobs of models none of whose jobs waited in this
 * pass (the rest are passed over at the cost of a comparison). */
static int pump_accept_unseen(void *ud, const qt_queue_view *v)
{
    pump_ctx *pc = ud;
    const ejob *ej = v->payload;
    if (pc->e->models[ej->job->model_idx].wait_pass == pc->e->pass)
        return 0;
    return pump_accept(ud, v);
}

/* Whether some model has queued jobs none of which waited in this pass:
 * the window may not have reached them. */
static int some_model_unseen(const qt_engine *e)
{
    for (size_t mi = 0; mi < e->cfg->n_models; mi++)
        if (e->models[mi].queued > 0 && e->models[mi].wait_pass != e->pass)
            return 1;
    return 0;
}

/* Carries out the actions the pump decided, without the lock (on loop self). */
static void run_actions(qt_engine *e, ejob *list, int self)
{
    for (ejob *ej = list, *next; ej; ej = next) {
        next = ej->fx_next;
        switch (ej->act) {
        case FSM_SEND:
            if (ej->loop == self)
                start_send(ej);   /* takes the action's reference */
            else if (qt_loop_post(loop_of(e, ej), start_send, ej) != QT_OK)
                start_send(ej);
            break;
        case FSM_WAIT_TIMER:
            if (ej->loop == self || qt_loop_post(loop_of(e, ej), arm_timer, ej) != QT_OK)
                arm_timer(ej);
            break;
        default: /* FSM_FINISH */
            engine_finish_action(e, ej, ej->act_fin, NULL);
            ej->act_fin = NULL;
            pthread_mutex_lock(&e->lock);
            ejob_release(ej);
            pthread_mutex_unlock(&e->lock);
            break;
        }
    }
}

static void pump(void *ud)
{
    qt_engine *e = ud;
    int self = current_loop(e);
    if (self < 0)
        self = 0;   /* virtual time: the caller drives loop 0 */
    pthread_mutex_lock(&e->lock);
    e->pump_posted = 0;
    if (e->stopping) {
        pthread_mutex_unlock(&e->lock);
        return;
    }
    e->pass++;
    memset(e->blocked, 0, qt_limiter_key_count(e->limiter));
    pump_ctx pc = { e, now_of(e), wall_of(e), UINT64_MAX, e->loops[self].fin, 0 };
    ejob *list = NULL, **tail = &list;
    int n = 0, deep = 0;
    while (e->in_flight_jobs < e->max_in_flight) {
        void *payload = NULL;
        qt_err r = qt_queue_pop_first(e->queue, pc.now, PUMP_WINDOW, pump_accept, &pc, &payload, NULL);
        if (r == QT_ERR_LIMIT && deep < PUMP_DEEP_POPS && some_model_unseen(e)) {
            /* Every job of the window waits, and some model's jobs are
             * further down: a backlog longer than the window must not hide
             * them (a fast model's jobs, the probe a HALF_OPEN breaker
             * waits for: issue 12, defect 14). Look further, passing over
             * the models that wait; when nothing is found, every model
             * counts as seen for the rest of the pass. */
            deep++;
            r = qt_queue_pop_first(e->queue, pc.now, PUMP_DEEP, pump_accept_unseen, &pc, &payload, NULL);
            if (r != QT_OK)
                for (size_t mi = 0; mi < e->cfg->n_models; mi++)
                    e->models[mi].wait_pass = e->pass;
        }
        if (r != QT_OK)
            break;
        ejob *ej = payload;
        ej->in_queue = 0;
        e->models[ej->job->model_idx].queued--;
        if (!ej->order) {
            /* Its loop and connection from now on: this loop, unless it
             * has clearly more on the wire than the least busy one. */
            ej->order = ++e->pop_order;
            int least = least_busy_loop(e), k = self;
            if (e->loops[k].in_flight > e->loops[least].in_flight + 1 + e->loops[least].in_flight / 8)
                k = least;
            ej->loop = k;
            ej->conn = (int)(e->loops[k].next_conn++ % (unsigned)e->loops[k].nconns);
        }
        if (ej->act == FSM_SEND)
            e->loops[ej->loop].in_flight++;
        if (ej->act == FSM_SEND && !ej->job->dispatched_ms)
            ej->job->dispatched_ms = pc.now;
        ej->refs++;   /* the action's */
        ej->fx_next = NULL;
        *tail = ej;
        tail = &ej->fx_next;
        if (++n >= PUMP_BATCH) {
            engine_loop_request_pump(e);   /* more after the loop had its turn */
            break;
        }
    }
    qt_queue_counts qc;
    qt_queue_counts_get(e->queue, &qc);
    if (qc.ready > 0 && e->in_flight_jobs < e->max_in_flight) {
        /* Jobs wait on keys: look again when the first could go (and at
         * least every second, whatever frees capacity in between). */
        uint64_t at = pc.now + 1000;
        pump_at(e, pc.wake < at ? pc.wake : at);
    }
    pthread_mutex_unlock(&e->lock);
    run_actions(e, list, self);
}

/* ------------------------------------------------------------ a job's loop */

/* Finishes a job that cannot go on (cancelled, shutting down). Lock held
 * on entry and exit; released around the result. */
static void finish_stopped(qt_engine *e, ejob *ej)
{
    const char *why = ej->job->cancel_requested ? QT_CANCELLED_BY_OPERATOR
                                                : "cancelled: quotatop is shutting down";
    pthread_mutex_unlock(&e->lock);
    engine_finish_cancelled(e, ej, why);
    pthread_mutex_lock(&e->lock);
}

static int must_stop(qt_engine *e, const ejob *ej)
{
    return e->aborting || e->stopping || __atomic_load_n(&ej->job->cancel_requested, __ATOMIC_RELAXED);
}

static void timer_fired(void *ud)
{
    ejob *ej = ud;
    qt_engine *e = ej->eng;
    pthread_mutex_lock(&e->lock);
    ej->timer = NULL;
    if (!ej->finished) {
        if (must_stop(e, ej)) {
            finish_stopped(e, ej);
        } else {
            fsm_action act;
            fsm_timer(&ej->f, now_of(e), &act);
            engine_sync_state(e, ej);
            engine_loop_requeue(e, ej);
        }
    }
    ejob_release(ej);   /* the timer's */
    pthread_mutex_unlock(&e->lock);
}

/* On the job's loop: arms the timer of a WAIT_TIMER action (the action's
 * reference becomes the timer's). */
static void arm_timer(void *ud)
{
    ejob *ej = ud;
    qt_engine *e = ej->eng;
    pthread_mutex_lock(&e->lock);
    if (!ej->finished && must_stop(e, ej))
        finish_stopped(e, ej);
    if (ej->finished) {
        ejob_release(ej);
    } else {
        ej->timer = qt_loop_timer_add(loop_of(e, ej), ej->act_until, timer_fired, ej);
        if (!ej->timer) {
            engine_loop_requeue(e, ej);
            ejob_release(ej);
        }
    }
    pthread_mutex_unlock(&e->lock);
}

/* On lc's thread, once every job left is on the wire (the intake closed):
 * no connection freed from now on is needed again (a retry opens its own),
 * so the transport closes each as its transfer ends rather than all of them
 * at shutdown (10,000 at once took ~0.2 s at the end of a run). */
static void drain_loop(engine_loopctx *lc)
{
    if (lc->drained || lc->eng->transport->drain == NULL)
        return;
    lc->drained = 1;
    for (int k = 0; k < lc->nconns; k++)
        if (lc->conns[k])
            lc->eng->transport->drain(lc->conns[k]);
}

/* The attempt is over (on the job's loop, no lock): the "done" event, then
 * its action. Frees x. */
static void complete(engine_xfer *x)
{
    ejob *ej = x->ej;
    qt_engine *e = x->e;
    fsm_attempt a;
    engine_xfer_classify(x, &a);
    pthread_mutex_lock(&e->lock);
    ej->x = NULL;
    engine_record_attempt(e, ej, x->mi, x->pi, &a);
    if (ej->fl)
        engine_fleet_settle(e, ej, &a);   /* the fleet's ticket, as the machine settles its own */
    fsm_action act;
    fsm_done(&e->env, &ej->f, ej->job, &a, now_of(e), wall_of(e), &act);
    e->in_flight_jobs--;
    e->loops[ej->loop].in_flight--;
    engine_sync_state(e, ej);
    if (act.kind == FSM_FINISH && act.status == QT_STATUS_CANCELLED && must_stop(e, ej))
        snprintf(act.error, sizeof act.error, "%s",
                 ej->job->cancel_requested ? QT_CANCELLED_BY_OPERATOR
                                           : "cancelled: quotatop is shutting down");
    if (act.kind == FSM_FINISH) {
        /* What follows the result is done first, so that the result is the
         * last take of the lock (finish's own): one take fewer a request.
         * finish counts this job done, hence the - 1. */
        engine_loop_request_pump(e);
        if (e->in_flight_jobs == 0 && e->stopping)
            pthread_cond_broadcast(&e->done_cond);
        ejob_release(ej);   /* start_send's; finish holds the record's own */
        int drain = e->intake_closed && e->jobs - e->done - 1 <= (uint64_t)e->in_flight_jobs;
        pthread_mutex_unlock(&e->lock);
        engine_finish_action(e, ej, &act, &a);
        if (drain)
            drain_loop(&e->loops[x->loop]);
        fsm_attempt_free(&a);
        free(x);
        return;
    }
    if (must_stop(e, ej)) {
        finish_stopped(e, ej);
    } else if (act.kind == FSM_WAIT_TIMER) {
        ej->timer = qt_loop_timer_add(loop_of(e, ej), act.until, timer_fired, ej);
        if (ej->timer)
            ej->refs++;
        else
            engine_loop_requeue(e, ej);
    } else {
        engine_loop_requeue(e, ej);
    }
    engine_loop_request_pump(e);
    if (e->in_flight_jobs == 0 && e->stopping)   /* shutdown's grace waits for that */
        pthread_cond_broadcast(&e->done_cond);
    ejob_release(ej);   /* start_send's */
    int drain = e->intake_closed && e->jobs - e->done <= (uint64_t)e->in_flight_jobs;
    pthread_mutex_unlock(&e->lock);
    if (drain)
        drain_loop(&e->loops[x->loop]);
    fsm_attempt_free(&a);
    free(x);
}

static void on_done(void *ud, qt_http_response *resp)
{
    engine_xfer *x = ud;
    x->handle = NULL;
    x->resp = *resp;   /* ours now; the attempt's in complete() */
    complete(x);
}

/* The attempt never left (the fleet waits or refuses: engine_fleet.c). */
void engine_loop_unsent(qt_engine *e, ejob *ej)
{
    e->in_flight_jobs--;
    e->loops[ej->loop].in_flight--;
    engine_loop_request_pump(e);
    if (e->in_flight_jobs == 0 && e->stopping)   /* shutdown's grace waits for that */
        pthread_cond_broadcast(&e->done_cond);
    ejob_release(ej);   /* start_send's */
}

/* On the job's loop: the fleet decides first (backend.kind "redis"), then
 * the request is built and posted. */
static void start_send(void *ud)
{
    ejob *ej = ud;
    if (ej->eng->gate && engine_fleet_start(ej->eng, ej))
        return;   /* its answer carries on (engine_fleet.c) */
    engine_loop_send(ej);
}

/* On the job's loop: builds the request and posts it (holds the action's
 * reference until complete). */
void engine_loop_send(ejob *ej)
{
    qt_engine *e = ej->eng;
    engine_xfer *x = malloc(sizeof *x);
    pthread_mutex_lock(&e->lock);
    int stop = must_stop(e, ej) || !x;
    int mi = ej->f.mi, pi = ej->f.pi;
    /* From here a cancel aborts x: its abort_on_loop runs on this loop,
     * after this function, when x has its handle (or complete() took it). */
    ej->x = x;
    __atomic_store_n(&ej->streaming, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&ej->first_byte_ms, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&e->lock);
    if (!x) {
        /* Out of memory: an attempt that never left, given back at once. */
        pthread_mutex_lock(&e->lock);
        fsm_attempt a;
        memset(&a, 0, sizeof a);
        a.built = 1;
        a.resp.transport = QT_HTTP_ABORTED;
        if (ej->fl)
            engine_fleet_drop(e, ej);
        fsm_action act;
        fsm_done(&e->env, &ej->f, ej->job, &a, now_of(e), wall_of(e), &act);
        e->in_flight_jobs--;
        e->loops[ej->loop].in_flight--;
        finish_stopped(e, ej);
        engine_loop_request_pump(e);
        ejob_release(ej);
        pthread_mutex_unlock(&e->lock);
        return;
    }
    int built = engine_xfer_build(e, ej, mi, pi, x);
    x->loop = ej->loop;
    x->conn = ej->conn;
    if (stop && built) {
        x->resp.transport = QT_HTTP_ABORTED;   /* cancelled before it left: nothing sent */
        if (ej->fl) {
            pthread_mutex_lock(&e->lock);
            engine_fleet_drop(e, ej);   /* the fleet's too */
            pthread_mutex_unlock(&e->lock);
        }
        complete(x);
        return;
    }
    if (!built) {
        complete(x);
        return;
    }
    x->handle = e->transport->post(e->loops[x->loop].conns[x->conn], x->url, (const char *const *)x->req.headers,
                                   x->req.n_headers, x->req.body, x->req.body_len,
                                   e->providers[pi].cfg->timeout_ms,
                                   x->stream ? engine_xfer_on_data : NULL, on_done, x);
    if (!x->handle) {
        x->resp.transport = QT_HTTP_OTHER;
        snprintf(x->resp.error, sizeof x->resp.error, "out of memory");
        complete(x);
    }
}

/* ------------------------------------------------------------ cancel */

static void cancel_timer_on_loop(void *ud)
{
    ejob *ej = ud;
    qt_engine *e = ej->eng;
    pthread_mutex_lock(&e->lock);
    if (!ej->finished && ej->timer) {
        qt_loop_timer_cancel(loop_of(e, ej), ej->timer);
        ej->timer = NULL;
        ej->refs--;   /* the timer's (ours keeps the record) */
        finish_stopped(e, ej);
    }
    ejob_release(ej);
    pthread_mutex_unlock(&e->lock);
}

static void abort_on_loop(void *ud)
{
    ejob *ej = ud;
    qt_engine *e = ej->eng;
    pthread_mutex_lock(&e->lock);
    engine_xfer *x = ej->finished ? NULL : ej->x;
    void *h = x ? x->handle : NULL;
    void *conn = x ? e->loops[x->loop].conns[x->conn] : NULL;
    pthread_mutex_unlock(&e->lock);
    if (h)
        e->transport->abort(conn, h);   /* its on_done finishes the job */
    pthread_mutex_lock(&e->lock);
    ejob_release(ej);
    pthread_mutex_unlock(&e->lock);
}

/* Stops a job wherever it is (lock held): the queue, a timer, the wire.
 * Jobs between two of these (an action on its way) stop when it arrives. */
static void stop_job(qt_engine *e, ejob *ej)
{
    if (ej->timer)
        post_job(e, ej, cancel_timer_on_loop);
    else if (ej->x)
        post_job(e, ej, abort_on_loop);
    else if (ej->fl)
        engine_fleet_stop(e, ej);   /* sleeping to a fleet slot */
}

qt_err engine_loop_cancel(qt_engine *e, ejob *ej)
{
    __atomic_store_n(&ej->job->cancel_requested, 1, __ATOMIC_RELAXED);
    if (ej->in_queue) {
        qt_queue_cancel(e->queue, ej->job->id, NULL);
        ej->in_queue = 0;
        e->models[ej->job->model_idx].queued--;
        pthread_mutex_unlock(&e->lock);
        qt_events_addf(e->events, QT_EV_CANCEL, now_of(e), wall_of(e), ej->job->model,
                       ej->job->workflow, ej->job->id, "job %s cancelled", ej->job->id);
        engine_finish_cancelled(e, ej, QT_CANCELLED_BY_OPERATOR);
        return QT_OK;
    }
    stop_job(e, ej);
    pthread_mutex_unlock(&e->lock);
    return QT_OK;
}

/* ------------------------------------------------------------ life */

void engine_loop_result_given(qt_engine *e)
{
    if (!e->on_results_flush)
        return;
    int k = current_loop(e);
    if (k >= 0)
        e->loops[k].results_given = 1;   /* flush_results, before the loop waits */
    else
        e->on_results_flush(e->on_results_flush_ud);
}

/* The loop's before-wait hook: the results of this turn leave together. */
static void flush_results(void *ud)
{
    engine_loopctx *lc = ud;
    if (!lc->results_given)
        return;
    lc->results_given = 0;
    lc->eng->on_results_flush(lc->eng->on_results_flush_ud);
}

static void *loop_main(void *arg)
{
    engine_loopctx *lc = arg;
    tls_loop = lc;
    qt_loop_run(lc->loop);
    return NULL;
}

/* Checks that `workers` sockets fit under RLIMIT_NOFILE, raising the soft
 * limit up to the hard one when that helps; says what to raise otherwise. */
static void check_nofile(int workers)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t need = (rlim_t)workers + 256;   /* a socket per request + files, listeners, curl */
    if (rl.rlim_cur >= need)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (want > rl.rlim_cur) {
        struct rlimit nl = { want, rl.rlim_max };
        if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
            rl.rlim_cur = want;
    }
    if (rl.rlim_cur < need)
        fprintf(stderr, "quotatop: warning: workers %d needs about %llu open files, the limit is %llu "
                        "(hard %llu): fewer requests will be in flight; raise it with "
                        "`ulimit -n %llu` (or LimitNOFILE= for a service, nofile in "
                        "/etc/security/limits.conf)\n",
                workers, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
                (unsigned long long)rl.rlim_max, (unsigned long long)need);
}

/* How many loop threads: about one per core (QT_LOOP_THREADS overrides). */
static int loop_count(void)
{
    const char *s = getenv("QT_LOOP_THREADS");
    long n = s && *s ? strtol(s, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > 64)
        n = 64;
    return (int)n;
}

qt_err engine_loop_start(qt_engine *e)
{
    if (!e->virtual_time)
        check_nofile(e->max_in_flight);
    int n = e->virtual_time ? 1 : loop_count();
    e->loops = calloc((size_t)n, sizeof *e->loops);
    if (!e->loops)
        return QT_ERR_NOMEM;
    e->nloops = n;
    for (int i = 0; i < n; i++) {
        engine_loopctx *lc = &e->loops[i];
        lc->eng = e;
        lc->loop = qt_loop_new(e->virtual_time ? e->clock : NULL);
        if (lc->loop && e->on_results_flush)
            qt_loop_set_before_wait(lc->loop, flush_results, lc);
        /* libcurl's multi slows down with thousands of connections to one
         * host (its connection cache is searched linearly), so a loop
         * spreads its transfers over one multi per ~CONN_SHARE of them. */
        int nc = e->virtual_time ? 1 : (e->max_in_flight / n + CONN_SHARE - 1) / CONN_SHARE;
        lc->conns = calloc((size_t)(nc > 0 ? nc : 1), sizeof *lc->conns);
        lc->fin = malloc(PUMP_BATCH * sizeof *lc->fin);   /* pages are touched only when used */
        if (!lc->loop || !lc->conns || !lc->fin)
            return QT_ERR_NOMEM;
        lc->nconns = nc > 0 ? nc : 1;
        for (int k = 0; k < lc->nconns; k++)
            if (!(lc->conns[k] = e->transport->open(e->transport, lc->loop)))
                return QT_ERR_NOMEM;
    }
    pthread_mutex_lock(&e->lock);
    e->started = 1;
    engine_loop_request_pump(e);   /* jobs submitted before start */
    pthread_mutex_unlock(&e->lock);
    if (e->virtual_time)
        return QT_OK;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&e->loops[i].thread, NULL, loop_main, &e->loops[i]) != 0)
            return QT_ERR_NOMEM;
        e->loops[i].started = 1;
    }
    return QT_OK;
}

/* Waits (live) or runs the loop (virtual) until cond holds or deadline. */
static void wait_for(qt_engine *e, int (*cond)(qt_engine *), uint64_t deadline)
{
    if (e->virtual_time) {
        qt_loop_run_virtual(e->loops[0].loop);
        return;
    }
    pthread_mutex_lock(&e->lock);
    while (!cond(e) && now_of(e) < deadline)
        engine_wait_until(e, &e->done_cond, deadline);
    pthread_mutex_unlock(&e->lock);
}

static int none_in_flight(qt_engine *e) { return e->in_flight_jobs == 0; }
static int all_done(qt_engine *e) { return e->done >= e->jobs; }

/* On a loop at shutdown: closes its transports (aborting what is still on
 * the wire: on_done runs here, on the loop that owns it), then stops it. */
static void close_on_loop(void *ud)
{
    engine_loopctx *lc = ud;
    for (int k = 0; k < lc->nconns; k++) {
        lc->eng->transport->close(lc->conns[k]);
        lc->conns[k] = NULL;
    }
    qt_loop_stop(lc->loop);
}

void engine_loop_shutdown(qt_engine *e, int64_t grace_ms)
{
    if (e->loops) {
        /* Grace: requests in flight may finish; waiting jobs stop after. */
        wait_for(e, none_in_flight, now_of(e) + (uint64_t)(grace_ms > 0 ? grace_ms : 0));
        pthread_mutex_lock(&e->lock);
        __atomic_store_n(&e->aborting, 1, __ATOMIC_RELAXED);
        for (ejob *ej = e->live; ej; ej = ej->next)
            stop_job(e, ej);
        pthread_mutex_unlock(&e->lock);
        wait_for(e, all_done, now_of(e) + 10000);
        if (e->gate) {
            /* Leave the fleet while the loops run: an admission Redis has
             * not answered yet is answered now, and its job stops. */
            qt_backend_gate_close(e->gate);
            wait_for(e, all_done, now_of(e) + 2000);
        }
        /* Each loop closes its own transports (cached connections: closing
         * 10,000 sockets took ~150 ms on one thread) and then stops; the
         * loops do it at the same time. */
        for (int i = 0; i < e->nloops; i++)
            if (e->loops[i].started && qt_loop_post(e->loops[i].loop, close_on_loop, &e->loops[i]) != QT_OK)
                qt_loop_stop(e->loops[i].loop);
        for (int i = 0; i < e->nloops; i++)
            if (e->loops[i].started) {
                pthread_join(e->loops[i].thread, NULL);
                e->loops[i].started = 0;
            }
        /* What a loop did not close (virtual time: no thread; a failed
         * post) is closed here; on_done runs here then. */
        for (int i = 0; i < e->nloops; i++)
            for (int k = 0; k < e->loops[i].nconns; k++)
                if (e->loops[i].conns[k]) {
                    e->transport->close(e->loops[i].conns[k]);
                    e->loops[i].conns[k] = NULL;
                }
    }
}

void engine_loop_free(qt_engine *e)
{
    for (int i = 0; e->loops && i < e->nloops; i++) {
        for (int k = 0; e->loops[i].conns && k < e->loops[i].nconns; k++)
            if (e->loops[i].conns[k])
                e->transport->close(e->loops[i].conns[k]);
        free(e->loops[i].conns);
        free(e->loops[i].fin);
        qt_loop_free(e->loops[i].loop);
    }
    free(e->loops);
    e->loops = NULL;
}

qt_err qt_engine_run_virtual(qt_engine *e)
{
    if (!e->virtual_time || !e->loops)
        return QT_ERR_INVALID;
    qt_loop_run_virtual(e->loops[0].loop);
    return QT_OK;
}

qt_loop *qt_engine_loop(qt_engine *e)
{
    return e->loops ? e->loops[0].loop : NULL;
}

int qt_engine_live_loops(const qt_engine *e)
{
    return e->loops && !e->virtual_time && e->started ? e->nloops : 0;
}

qt_loop *qt_engine_loop_at(qt_engine *e, int i)
{
    return e->loops && i >= 0 && i < e->nloops ? e->loops[i].loop : NULL;
}
