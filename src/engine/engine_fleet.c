/* engine_fleet.c: the event runtime's side of the shared backend
 * (backend.kind "redis"): after the job's machine admitted an attempt on
 * this process's limiter and budget (the pump's FSM_SEND), the fleet
 * decides too, and the attempt's outcome is settled there as the machine
 * settles it here. Fleet pauses reach the engine through
 * engine_fleet_control (engine_ctl.c).
 *
 * DESIGN. Nothing here waits for Redis. start_send, on the job's loop,
 * asks the gate (backend_gate.h) and returns; the gate answers at once
 * when it can decide alone (Redis down, a hint) or later on the backend's
 * thread, and the answer is posted back to the job's loop (fleet_resume):
 *  - GO: engine_loop_send builds and sends the request; a GO with a delay
 *    (a slot taken ahead) first sleeps on a loop timer of the job's loop
 *    (slot_fired: the gate checks that the fleet was not paused and Redis
 *    did not go down meanwhile);
 *  - WAIT: the machine gives everything back (fsm_unadmit: state wait-key,
 *    on "fleet pacing on model:x" until T), the job goes back into the
 *    queue at its place, and the pump passes it over until T, holding the
 *    key the fleet named for it (e->blocked), so a less urgent job does not
 *    take the fleet's next slot first and jobs on other keys go on;
 *  - BUDGET: a fleet budget refuses: everything given back, the job is
 *    `rejected` (no cheaper model is tried for a fleet budget).
 * A job must stop (cancel, shutdown) whatever the answer: the ticket is
 * given back and the send path ends it `cancelled` without sending. A
 * cancel that comes while the fleet decides takes effect when the answer
 * comes (within about backend.timeout_ms); one that comes while the job
 * sleeps to its slot cancels the timer at once.
 *
 * References: the pump's action reference (start_send's) carries the job
 * through the fleet's answer and the slot timer to engine_loop_send, or is
 * let go by engine_loop_unsent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static void fleet_resume(void *ud);

static int must_stop(qt_engine *e, const ejob *ej)
{
    return e->aborting || e->stopping || __atomic_load_n(&ej->job->cancel_requested, __ATOMIC_RELAXED);
}

/* The gate's answer (the backend's thread, or the job's loop when it
 * decided at once): carried to the job's loop. */
static void fleet_answered(void *ud, qt_gate_ticket *t, const qt_gate_answer *a)
{
    ejob *ej = ud;
    (void)t;
    ej->fl->ans = *a;
    /* The post's lock orders these writes before fleet_resume reads them.
     * A post fails only when out of memory: try again a few times rather
     * than strand the job (nothing else would give it its result). */
    qt_loop *l = ej->eng->loops[ej->loop].loop;
    for (int i = 0; i < 100; i++)
        if (qt_loop_post(l, fleet_resume, ej) == QT_OK)
            return;
}

int engine_fleet_start(qt_engine *e, ejob *ej)
{
    pthread_mutex_lock(&e->lock);
    if (must_stop(e, ej) || (!ej->fl && !(ej->fl = calloc(1, sizeof *ej->fl)))) {
        pthread_mutex_unlock(&e->lock);
        return 0;   /* stopping (or out of memory): the send path ends it */
    }
    fsm_job *j = &ej->f;
    const qt_model_cfg *m = &e->cfg->models[j->mi];
    double cost = qt_budget_cost(m->input_usd_per_mtok, m->output_usd_per_mtok, j->prompt_est,
                                 j->est_tokens - j->prompt_est);
    int mi = j->mi, pi = j->pi;
    int64_t est = j->est_tokens;
    ejob_set_state(e, ej, QT_JOB_IN_FLIGHT, "fleet admission (redis)", 0);
    pthread_mutex_unlock(&e->lock);
    /* No lock: the gate may answer before it returns. */
    qt_backend_gate_admit(e->gate, mi, pi, ej->job->workflow, est, cost, &ej->fl->gt, fleet_answered, ej);
    return 1;
}

/* A WAIT or a BUDGET: the machine gives everything back; the job goes back
 * into the queue until the fleet's time, or gets its `rejected` result.
 * The job's loop, no lock. */
static void fleet_refused(qt_engine *e, ejob *ej, const qt_gate_answer *a)
{
    pthread_mutex_lock(&e->lock);
    uint64_t now = now_of(e);
    fsm_job *j = &ej->f;
    if (a->verdict == QT_GATE_WAIT) {
        uint64_t until = now + (a->wait_ms > 0 ? a->wait_ms : 1);
        engine_fleet_job *fl = ej->fl;
        fl->until = until;
        fl->hold_key[0] = a->rate != 1 ? e->models[j->mi].key : -1;
        fl->hold_key[1] = a->rate != 0 ? e->providers[j->pi].key : -1;
        fsm_unadmit(&e->env, j, now, wall_of(e), a->reason, until);
        engine_sync_state(e, ej);
        engine_loop_requeue(e, ej);
        engine_loop_unsent(e, ej);
        pthread_mutex_unlock(&e->lock);
        return;
    }
    fsm_unadmit(&e->env, j, now, wall_of(e), NULL, 0);
    engine_sync_state(e, ej);
    pthread_mutex_unlock(&e->lock);
    fsm_action act;
    memset(&act, 0, sizeof act);
    act.kind = FSM_FINISH;
    act.status = QT_STATUS_REJECTED;
    snprintf(act.error, sizeof act.error, "%s", a->reason);
    engine_finish_action(e, ej, &act, NULL);
    pthread_mutex_lock(&e->lock);
    engine_loop_unsent(e, ej);
    pthread_mutex_unlock(&e->lock);
}

/* The job must stop: its ticket goes back and the send path ends it
 * `cancelled` without sending. The job's loop, no lock. */
static void fleet_stopped(qt_engine *e, ejob *ej)
{
    pthread_mutex_lock(&e->lock);
    engine_fleet_drop(e, ej);
    pthread_mutex_unlock(&e->lock);
    engine_loop_send(ej);
}

/* What an answer comes to, on the job's loop (no lock). */
static void fleet_apply(qt_engine *e, ejob *ej, const qt_gate_answer *a)
{
    if (a->verdict != QT_GATE_GO) {
        fleet_refused(e, ej, a);
        return;
    }
    pthread_mutex_lock(&e->lock);
    ejob_set_state(e, ej, QT_JOB_IN_FLIGHT, "", 0);
    pthread_mutex_unlock(&e->lock);
    engine_loop_send(ej);
}

static void slot_fired(void *ud)
{
    ejob *ej = ud;
    qt_engine *e = ej->eng;
    pthread_mutex_lock(&e->lock);
    ej->fl->timer = NULL;
    int stop = must_stop(e, ej);
    pthread_mutex_unlock(&e->lock);
    if (stop) {
        fleet_stopped(e, ej);
        return;
    }
    qt_gate_answer a;
    qt_backend_gate_slot(e->gate, &ej->fl->gt, &a);
    fleet_apply(e, ej, &a);
}

static void fleet_resume(void *ud)
{
    ejob *ej = ud;
    qt_engine *e = ej->eng;
    qt_gate_answer a = ej->fl->ans;
    pthread_mutex_lock(&e->lock);
    if (must_stop(e, ej)) {
        pthread_mutex_unlock(&e->lock);
        fleet_stopped(e, ej);
        return;
    }
    if (a.verdict == QT_GATE_GO && a.delay_ms > 0) {
        /* A slot taken ahead: this job's, sent when it comes. */
        uint64_t at = now_of(e) + a.delay_ms;
        qt_loop *l = e->loops[ej->loop].loop;
        ej->fl->timer = qt_loop_timer_add(l, at, slot_fired, ej);
        if (ej->fl->timer) {
            ejob_set_state(e, ej, QT_JOB_IN_FLIGHT, "fleet slot (redis)", at);
            pthread_mutex_unlock(&e->lock);
            return;
        }
    }
    pthread_mutex_unlock(&e->lock);
    fleet_apply(e, ej, &a);
}

int engine_fleet_holds(qt_engine *e, ejob *ej, uint64_t now, uint64_t *wake)
{
    engine_fleet_job *fl = ej->fl;
    if (fl->until <= now)
        return 0;
    for (int i = 0; i < 2; i++)
        if (fl->hold_key[i] >= 0)
            e->blocked[fl->hold_key[i]] = 1;
    if (fl->until < *wake)
        *wake = fl->until;
    return 1;
}

static void stop_slot_on_loop(void *ud)
{
    ejob *ej = ud;
    qt_engine *e = ej->eng;
    pthread_mutex_lock(&e->lock);
    qt_timer *t = ej->finished ? NULL : ej->fl->timer;
    if (t) {
        qt_loop_timer_cancel(e->loops[ej->loop].loop, t);
        ej->fl->timer = NULL;
    }
    pthread_mutex_unlock(&e->lock);
    if (t)
        fleet_stopped(e, ej);   /* the action's reference goes with it */
    pthread_mutex_lock(&e->lock);
    ejob_release(ej);   /* this work's */
    pthread_mutex_unlock(&e->lock);
}

int engine_fleet_stop(qt_engine *e, ejob *ej)
{
    if (!ej->fl->timer)
        return 0;
    ej->refs++;
    if (qt_loop_post(e->loops[ej->loop].loop, stop_slot_on_loop, ej) != QT_OK) {
        ej->refs--;   /* out of memory: it stops when its slot comes */
        return 0;
    }
    return 1;
}

void engine_fleet_drop(qt_engine *e, ejob *ej)
{
    if (ej->fl && ej->fl->gt.active)
        qt_backend_gate_release(e->gate, &ej->fl->gt);
}

void engine_fleet_settle(qt_engine *e, ejob *ej, const fsm_attempt *a)
{
    qt_gate_ticket *gt = &ej->fl->gt;
    if (!gt->active)
        return;
    const fsm_job *j = &ej->f;
    if (!a->built || a->resp.transport == QT_HTTP_CONNECT) {
        qt_backend_gate_release(e->gate, gt);   /* never reached the provider */
    } else if (a->resp.transport == QT_HTTP_ABORTED && !a->streamed) {
        qt_backend_gate_commit(e->gate, gt, j->est_tokens, 0);   /* it may have */
    } else if (a->verdict.cls == QT_RETRY_OK) {
        long pt = a->res.prompt_tokens, ct = a->res.completion_tokens;
        int64_t charged = pt + fsm_max_tokens(e->cfg, ej->job, j->mi);
        qt_backend_gate_commit(e->gate, gt, charged > pt + ct ? charged : pt + ct,
                               fsm_cost(&e->cfg->models[j->mi], &a->res));
    } else {
        qt_backend_gate_commit(e->gate, gt, a->resp.transport == QT_HTTP_TIMEOUT ? j->est_tokens : 0, 0);
    }
}
