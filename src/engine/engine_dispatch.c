/* engine_dispatch.c: the worker threads' main loop. A free worker takes the
 * most urgent queued job that can make progress now (qt_queue_pop_first with
 * can_go), carries it to its result with engine_run_job (engine.c), and
 * sleeps when nothing can go, until the first job could or capacity frees.
 */
#include <string.h>

#include "engine_int.h"

/* How far down the queue a free worker looks for a job that can go now. */
#define PICK_WINDOW 256

typedef struct {
    qt_engine *e;
    uint64_t now;
    uint64_t wake;        /* earliest time a skipped job could go */
    signed char *memo;    /* per model: -1 unknown, 0 must wait, 1 can go */
} pick_ctx;

/* Whether a queued job can make progress now: its model's limiter (with one
 * of its providers) would admit it, or its model is unavailable anyway (the
 * router then falls back or waits briefly). Jobs whose model is at its limit
 * are skipped, so a slow model's backlog does not take every worker while
 * other models have capacity. Lock held (called from qt_queue_pop_first). */
static int can_go(void *ud, const qt_queue_view *v)
{
    pick_ctx *pc = ud;
    qt_engine *e = pc->e;
    int mi = qt_config_model_index(e->cfg, v->model);
    if (mi < 0)
        return 1;   /* a name longer than the view holds: do not guess */
    if (pc->memo[mi] >= 0)
        return pc->memo[mi];
    model_rt *mr = &e->models[mi];
    uint64_t until = UINT64_MAX, best = UINT64_MAX;
    if (!qt_circuit_peek(mr->circuit, pc->now) || fsm_key_held(&e->env, mr->key, pc->now, &until))
        return pc->memo[mi] = 1;
    const qt_model_cfg *m = mr->cfg;
    for (size_t k = 0; k < m->n_providers; k++) {
        provider_rt *pr = &e->providers[m->provider_idx[k]];
        int keys[2] = { mr->key, pr->key };
        uint64_t w = qt_limiter_wait_ms(e->limiter, keys, 2, v->est_tokens, pc->now);
        if (w < best)
            best = w;
    }
    if (best == 0)
        return pc->memo[mi] = 1;
    uint64_t at = best == QT_LIMITER_NEVER ? pc->now + 1000 : pc->now + best;
    if (at < pc->wake)
        pc->wake = at;
    return pc->memo[mi] = 0;
}

void *engine_worker_main(void *arg)
{
    worker *wk = arg;
    qt_engine *e = wk->engine;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        void *payload = NULL;
        qt_err r = QT_ERR_NOTFOUND;
        pick_ctx pc = { e, now_of(e), UINT64_MAX, e->pick_memo };
        if (!e->stopping) {
            memset(e->pick_memo, -1, e->cfg->n_models);
            r = qt_queue_pop_first(e->queue, pc.now, PICK_WINDOW, can_go, &pc, &payload, NULL);
        }
        if (r == QT_OK) {
            ejob *ej = payload;
            e->models[ej->job->model_idx].queued--;
            uint64_t order = ++e->pop_order;
            wk->current = ej;
            e->busy++;
            pthread_mutex_unlock(&e->lock);
            engine_run_job(e, wk, ej, order);
            pthread_mutex_lock(&e->lock);
            e->busy--;
            continue;
        }
        if (e->stopping)
            break;
        if (r == QT_ERR_CLOSED && e->intake_closed) {
            /* Closed and nothing ready: done, unless jobs only wait for a
             * pause to end (they are still queued). */
            qt_queue_counts qc;
            qt_queue_counts_get(e->queue, &qc);
            if (qc.total == 0)
                break;
        }
        if (r == QT_ERR_LIMIT) {
            /* Jobs are queued but none can go yet: sleep until the first
             * could, or until capacity frees or a job arrives (both
             * broadcast admit_cond while someone waits here). */
            e->idle_waiting++;
            engine_wait_until(e, &e->admit_cond, pc.wake);
            e->idle_waiting--;
            continue;
        }
        pthread_cond_wait(&e->work_cond, &e->lock);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}
