/* engine_int.h: the engine's private state, shared by engine.c (workers)
 * and engine_ctl.c (controls, snapshots, summary). Not a public header.
 *
 * Every field below e->lock is guarded by it unless marked otherwise. */
#ifndef QT_ENGINE_INT_H
#define QT_ENGINE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "quotatop/budget.h"
#include "quotatop/cache.h"
#include "quotatop/circuit.h"
#include "quotatop/engine.h"
#include "quotatop/events.h"
#include "quotatop/http.h"
#include "quotatop/ledger.h"
#include "quotatop/limiter.h"
#include "quotatop/metrics.h"
#include "quotatop/provider.h"
#include "quotatop/queue.h"
#include "quotatop/retry.h"

typedef struct {
    const qt_model_cfg *cfg;
    int key;                      /* limiter key */
    qt_circuit *circuit;
    int in_flight;                /* requests on the wire */
    size_t queued;                /* its jobs in the queue (for wait estimates) */
} model_rt;

typedef struct {
    const qt_provider_cfg *cfg;
    const qt_provider_ops *ops;
    int key;                      /* limiter key */
    qt_circuit *circuit;
    qt_retry_budget *rbudget;
    char *api_key;                /* from the environment; never printed */
    int in_flight;
} provider_rt;

typedef struct {                  /* a worker waiting for limiter admission */
    int active;
    int priority;
    uint64_t order;
    int keys[2];
    int blocking_key;             /* the key it waits for, -1 before its first try */
} waiter;

typedef struct worker {
    struct qt_engine *engine;     /* immutable after start */
    int index;
    pthread_t thread;
    int started;
    qt_http *http;                /* this worker's own handle */
    qt_job *current;              /* the job it carries (engine lock), NULL when idle */
} worker;

struct qt_engine {
    const qt_config *cfg;         /* immutable */
    qt_clock *clock;
    int nworkers;
    qt_engine_on_result on_result;
    void *on_result_ud;
    int want_openai_json;
    uint64_t start_ms;
    worker *workers;              /* threads: touched by start/shutdown only */
    qt_events *events;            /* has its own lock */
    qt_metrics *metrics;          /* has its own lock; model/provider index = config index */
    qt_ledger *ledger;            /* has its own lock; NULL when disabled or unusable */
    int ledger_warned;            /* a failed record was reported (__atomic, no lock) */

    pthread_mutex_t lock;         /* guards everything below */
    pthread_cond_t work_cond, admit_cond, done_cond;
    qt_queue *queue;
    qt_limiter *limiter;
    qt_budget *budget;
    qt_estimator *est;
    qt_cache *cache;
    model_rt *models;             /* cfg->n_models */
    provider_rt *providers;       /* cfg->n_providers */
    waiter *waiters;              /* one per worker */
    uint64_t rng;
    int started, intake_closed, stopping, shut_down, paused;
    int aborting;                 /* read without the lock via __atomic */
    int busy;
    int idle_waiting;             /* free workers waiting for a queued job's capacity */
    signed char *pick_memo;       /* per model scratch for dispatch (engine.c) */
    uint64_t pop_order;
    uint64_t jobs, done;          /* submitted / given their result */
};

static inline uint64_t now_of(qt_engine *e) { return qt_clock_now_ms(e->clock); }
static inline uint64_t wall_of(qt_engine *e) { return qt_clock_wall_ms(e->clock); }

/* The job's max_tokens, else the model's default (what providers count). */
static inline int max_tokens_of(const qt_engine *e, const qt_job *job, int mi)
{
    return job->max_tokens > 0 ? job->max_tokens : e->cfg->models[mi].default_max_tokens;
}

/* One upstream request and what came of it (engine_send.c fills it). */
typedef struct {
    qt_http_response resp;
    qt_provider_result res;
    int parsed_ok;              /* res valid */
    qt_provider_error perr;
    char err[640];
    qt_retry_verdict verdict;
    qt_provider_limits limits;
    int built;                  /* the request could be built */
    int streamed;               /* a 2xx stream reached the sink (no retry) */
    int client_gone;            /* the sink's client went away */
} engine_attempt;

/* engine.c */
/* Estimated prompt tokens of job on model mi (calibrated, plus framing).
 * Lock held. */
int64_t engine_est_prompt(qt_engine *e, const qt_job *job, int mi);
/* Gives job a `cancelled` result (outside the lock) and frees it. */
void engine_finish_cancelled(qt_engine *e, qt_job *job, const char *why);
/* Gives job its final result (outside the lock) and frees it. */
void engine_finish_simple(qt_engine *e, qt_job *job, qt_status st, int attempts, const char *err);
/* Waits on cond (e->lock held) until the engine clock reads until_ms, a
 * signal, or one second at most. */
void engine_wait_until(qt_engine *e, pthread_cond_t *cond, uint64_t until_ms);
/* Carries one job to its result (no lock held on entry or exit). */
void engine_run_job(qt_engine *e, worker *wk, qt_job *job, uint64_t order);
/* 1 when a limiter key is held (429 cooldown, provider reset) past now;
 * *until gets the end. Lock held. */
int engine_key_held(qt_engine *e, int key, uint64_t now, uint64_t *until);

/* engine_dispatch.c */
/* A worker thread's body (arg: its worker). */
void *engine_worker_main(void *arg);

/* engine_send.c (no lock held) */
void engine_send(qt_engine *e, qt_http *http, const qt_job *job, int mi, int pi, engine_attempt *a);
void engine_attempt_free(engine_attempt *a);
/* Turns a response's rate-limit headers into limiter feedback (lock held). */
void engine_feed_limits(qt_engine *e, int key, const qt_provider_limits *l, uint64_t now);
/* The metrics outcome of a failed attempt. */
qt_outcome engine_outcome_of(const engine_attempt *a);

#endif
