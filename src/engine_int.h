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
#include "quotatop/limiter.h"
#include "quotatop/provider.h"
#include "quotatop/queue.h"
#include "quotatop/retry.h"

#define LAT_SAMPLES 512

/* The newest LAT_SAMPLES latencies of a model or provider (for p50/p95). */
typedef struct {
    uint32_t ms[LAT_SAMPLES];
    uint32_t n, next;
} lat_ring;

static inline void lat_add(lat_ring *r, long ms)
{
    r->ms[r->next] = ms < 0 ? 0 : (uint32_t)ms;
    r->next = (r->next + 1) % LAT_SAMPLES;
    if (r->n < LAT_SAMPLES)
        r->n++;
}

typedef struct {                  /* counters shared by models and providers */
    uint64_t requests, ok, rate_limited, errors, retries, fallbacks;
    uint64_t prompt_tokens, completion_tokens;
    double cost;
    int in_flight;
    lat_ring lat;
} row_counts;

typedef struct {
    const qt_model_cfg *cfg;
    int key;                      /* limiter key */
    qt_circuit *circuit;
    row_counts n;
} model_rt;

typedef struct {
    const qt_provider_cfg *cfg;
    const qt_provider_ops *ops;
    int key;                      /* limiter key */
    qt_circuit *circuit;
    qt_retry_budget *rbudget;
    char *api_key;                /* from the environment; never printed */
    row_counts n;
} provider_rt;

typedef struct {
    char name[48];
    uint64_t jobs, done, ok, failed, rejected, cancelled, invalid;
    uint64_t prompt_tokens, completion_tokens;
    double cost;
} wf_stats;

typedef struct {                  /* a worker waiting for limiter admission */
    int active;
    int priority;
    uint64_t order;
    int keys[2];
} waiter;

typedef struct worker {
    struct qt_engine *engine;     /* immutable after start */
    int index;
    pthread_t thread;
    int started;
    qt_http *http;                /* this worker's own handle */
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
    wf_stats *wf;
    size_t n_wf, cap_wf;
    uint64_t rng;
    int started, intake_closed, stopping, shut_down, paused;
    int aborting;                 /* read without the lock via __atomic */
    int busy;
    uint64_t pop_order;
    uint64_t jobs, done, ok, failed, rejected, cancelled, invalid;
    uint64_t requests, retries, upstream_429, fallbacks, circuit_transitions, cache_hits;
    uint64_t prompt_tokens, completion_tokens;
    double cost;
};

/* Gives job a `cancelled` result (outside the lock) and frees it. */
void engine_finish_cancelled(qt_engine *e, qt_job *job, const char *why);

#endif
