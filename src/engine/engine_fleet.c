/* engine_fleet.c: the threaded driver's side of the shared backend
 * (backend.kind "redis"): after the job's machine admitted an attempt on
 * this process's limiter and budget, the fleet decides too (one Redis round
 * trip through the gate, backend_gate.h), and the attempt's outcome is
 * settled there as the machine settles it here. Fleet pauses reach the
 * engine through engine_fleet_control (engine_ctl.c).
 *
 * INTERIM: the worker waits for the gate's answer without the engine lock,
 * at most backend.timeout_ms; when the engine runs on a qt_loop, the
 * admission becomes a qt_backend_admit whose callback resumes the job.
 */
#include <stdio.h>
#include <string.h>

#include "engine_int.h"

int engine_fleet_admit(qt_engine *e, ejob *ej, qt_gate_ticket *gt)
{
    fsm_job *j = &ej->f;
    const qt_model_cfg *m = e->cfg->models[j->mi].name ? &e->cfg->models[j->mi] : NULL;
    double cost = m ? qt_budget_cost(m->input_usd_per_mtok, m->output_usd_per_mtok, j->prompt_est,
                                     j->est_tokens - j->prompt_est)
                    : 0;
    uint64_t wait = 0;
    char reason[300];
    pthread_mutex_unlock(&e->lock);
    qt_gate_verdict v = qt_backend_gate_admit(e->gate, j->mi, j->pi, ej->job->workflow, j->est_tokens, cost,
                                              gt, &wait, reason, sizeof reason);
    pthread_mutex_lock(&e->lock);
    if (v == QT_GATE_GO)
        return 0;
    uint64_t now = now_of(e);
    fsm_unadmit(&e->env, j, now, wall_of(e), v == QT_GATE_WAIT ? reason : NULL, now + wait);
    engine_sync_state(e, ej);
    if (v == QT_GATE_WAIT) {
        /* No broadcast: what was given back was taken a moment ago; waking
         * every waiter for it would only send them to the fleet's "wait". */
        engine_wait_until(e, &e->admit_cond, now + (wait > 0 ? wait : 1));
        return 1;
    }
    /* A fleet budget refuses: the job is rejected (no cheaper model is
     * tried for a fleet budget). */
    pthread_cond_broadcast(&e->admit_cond);
    fsm_action act;
    memset(&act, 0, sizeof act);
    act.kind = FSM_FINISH;
    act.status = QT_STATUS_REJECTED;
    snprintf(act.error, sizeof act.error, "%s", reason);
    pthread_mutex_unlock(&e->lock);
    engine_finish_action(e, ej, &act, NULL);
    pthread_mutex_lock(&e->lock);
    return 2;
}

void engine_fleet_settle(qt_engine *e, const ejob *ej, const fsm_attempt *a, qt_gate_ticket *gt)
{
    const fsm_job *j = &ej->f;
    if (a->built && a->resp.transport == QT_HTTP_ABORTED && !a->streamed) {
        qt_backend_gate_commit(e->gate, gt, j->est_tokens, 0);
    } else if (a->verdict.cls == QT_RETRY_OK) {
        long pt = a->res.prompt_tokens, ct = a->res.completion_tokens;
        int64_t charged = pt + fsm_max_tokens(e->cfg, ej->job, j->mi);
        qt_backend_gate_commit(e->gate, gt, charged > pt + ct ? charged : pt + ct,
                               fsm_cost(&e->cfg->models[j->mi], &a->res));
    } else if (a->built && a->resp.transport == QT_HTTP_CONNECT) {
        qt_backend_gate_release(e->gate, gt);   /* never reached the provider */
    } else {
        qt_backend_gate_commit(e->gate, gt, a->resp.transport == QT_HTTP_TIMEOUT ? j->est_tokens : 0, 0);
    }
}
