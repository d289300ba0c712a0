/* job_fsm.h: one job's life as an explicit state machine over the policy
 * modules (limiter, budget, circuits, retry, estimator, cache).
 *
 *            dispatch                         done(ok | fatal)
 *   QUEUED ----------> [route, admit] --SEND--> IN_FLIGHT ---------> DONE
 *     ^ ROUTED              |   |  |                | done(retryable)
 *     |                     |   |  +--FINISH------> DONE  (rejected, chain used up, @cache)
 *     |        WAIT_KEY <---+   +--WAIT_TIMER--> WAIT_PROBE (nothing of the chain available)
 *     |   (stays queued:        |                     |
 *     |    dispatched again     |                     | timer
 *     |    when capacity frees) |                     v
 *     +--------- REDISPATCH <---+----------------- ROUTED <-- timer -- WAIT_BACKOFF
 *                 (fallback, 429 hold)                             (retry after a wait)
 *
 * Every transition is a function of (job state, event, now) over the policy
 * objects in fsm_env: no I/O, no locks, no threads, no clock reads. The
 * caller (the engine's driver) serialises calls (it holds the engine lock),
 * turns actions into effects (send a request, arm a timer, put the job back
 * in the queue, write the result) and feeds the results back as events.
 * The same machine runs under the live runtime and under virtual time; unit
 * tests drive it with plain numbers for now.
 *
 * Events: fsm_dispatch (the driver offers the job a chance to go now),
 * fsm_done (the attempt on the wire ended), fsm_timer (its wait ended).
 * Cancellation is the driver's (it removes the job from wherever it waits,
 * or aborts the transfer, which comes back as fsm_done with
 * QT_HTTP_ABORTED and releases every reservation).
 *
 * Thread-safety: none; calls on one env are serialised by the caller.
 */
#ifndef QT_JOB_FSM_H
#define QT_JOB_FSM_H

#include <stdint.h>

#include "quotatop/budget.h"
#include "quotatop/cache.h"
#include "quotatop/circuit.h"
#include "quotatop/config.h"
#include "quotatop/engine.h"
#include "quotatop/events.h"
#include "quotatop/http.h"
#include "quotatop/jobs.h"
#include "quotatop/limiter.h"
#include "quotatop/metrics.h"
#include "quotatop/provider.h"
#include "quotatop/retry.h"

#define MAX_CHAIN 32

typedef struct {
    const qt_model_cfg *cfg;
    int key;                      /* limiter key */
    qt_circuit *circuit;
    int in_flight;                /* requests on the wire */
    size_t queued;                /* its jobs in the queue (for wait estimates) */
    uint64_t wait_pass;           /* the pump pass in which a job of it waited (engine_loop.c) */
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

/* The policy objects a transition reads and changes. */
typedef struct {
    const qt_config *cfg;
    qt_limiter *limiter;
    qt_budget *budget;
    qt_estimator *est;
    qt_cache *cache;
    model_rt *models;             /* cfg->n_models */
    provider_rt *providers;       /* cfg->n_providers */
    uint64_t *rng;                /* xorshift state (jitter, weighted choice) */
    qt_events *events;            /* NULL: no events */
    qt_metrics *metrics;          /* NULL: no counters */
    /* Per limiter key, set by the driver before a dispatch (and by a dispatch
     * that waits on a key): a more urgent job waits for this key, so a less
     * urgent one must not take its capacity. NULL: none. */
    unsigned char *blocked;
    /* Answers whose usage passed what the request allowed (completion
     * tokens above max_tokens): how many, and the last one in words, for
     * the summary's overshoot (issue 12). */
    uint64_t overuse_calls;
    char overuse_cause[256];
} fsm_env;

/* The routing state of one job: which models of its chain are used up,
 * attempts per model, the backoff, the last error. */
typedef struct {
    int chain[MAX_CHAIN];
    size_t n;
    int has_cache;
    unsigned char exhausted[MAX_CHAIN];
    int tries[MAX_CHAIN];          /* failed attempts per model */
    int attempts;                  /* upstream requests for this job */
    uint64_t not_before;           /* backoff: no attempt before this */
    int last_k;                    /* chain index last tried, -1 none */
    int budget_refused;            /* every refusal so far came from the budget */
    char last_error[300];
    char skip_reason[64];          /* why the model before the next one was passed over */
    int uncarried;                 /* chain models skipped: they cannot carry the request */
    int last_status;
} job_ctx;

/* One job's machine: its state, routing state and, while on the wire, the
 * reservations of its attempt. */
typedef struct {
    qt_job_state state;
    char wait_on[96];              /* WAIT_*: the key, timer or reason */
    uint64_t until;                /* WAIT_*: known end, 0 unknown */
    job_ctx c;
    /* the attempt (valid in IN_FLIGHT) */
    size_t k;                      /* chain position */
    int mi, pi;                    /* model, provider; -1 none */
    int64_t prompt_est, est_tokens;
    qt_limiter_res lres;
    qt_budget_res bres;
    qt_circuit_permit mperm, pperm;
    double cost_usd;               /* billed so far */
} fsm_job;

/* One upstream request and what came of it (the driver fills it from the
 * transport's answer; see engine_send.c). */
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
} fsm_attempt;

typedef enum {
    FSM_SEND,         /* send attempt (mi, pi) now; state IN_FLIGHT */
    FSM_WAIT_KEY,     /* leave it queued until capacity frees on `key` (until: best guess) */
    FSM_WAIT_TIMER,   /* arm a timer at `until`, then fsm_timer (WAIT_BACKOFF / WAIT_PROBE) */
    FSM_REDISPATCH,   /* put it back in the queue at its place; state ROUTED */
    FSM_FINISH,       /* write the result below; state DONE */
} fsm_act_kind;

typedef struct {
    fsm_act_kind kind;
    uint64_t until;
    int key;
    int capacity_changed;       /* reservations were given back / circuits moved */
    /* FSM_FINISH */
    qt_status status;
    const char *model_used, *provider;   /* static (config) strings or `owned` */
    long prompt_tokens, completion_tokens;
    double cost_usd;
    long latency_ms;
    int cached;
    int billed;                 /* an ok upstream answer: record it in the ledger */
    const char *content;        /* the attempt's, or `owned_content` */
    char *owned_content, *owned_model;   /* cache answers: the caller frees them */
    char *owned_finish, *owned_tool_calls; /* cache answers: the original's finish reason and
                                             * tool calls (JSON text), or NULL; caller frees */
    char error[400];
    int http_status;
} fsm_action;

/* Sets up j for job (its chain from the config). */
void fsm_job_init(fsm_job *j, const qt_config *cfg, const qt_job *job);

/* Estimated prompt tokens of job on model mi (calibrated, plus framing). */
int64_t fsm_est_prompt(const fsm_env *env, const qt_job *job, int mi);
/* The job's max_tokens, else the model's default. */
int fsm_max_tokens(const qt_config *cfg, const qt_job *job, int mi);

/* Event "dispatch": route, then admit (limiter, budget, circuits). Any
 * state but IN_FLIGHT and DONE. */
void fsm_dispatch(fsm_env *env, fsm_job *j, const qt_job *job, uint64_t now, uint64_t wall,
                  fsm_action *out);

/* Event "done": the attempt ended. Settles the reservations, feeds the
 * circuits, limiter and estimator, and decides: finish, retry after a
 * wait, or go again (fallback, 429 hold). A QT_HTTP_ABORTED transfer
 * (cancel, shutdown) releases everything and finishes `cancelled`. */
void fsm_done(fsm_env *env, fsm_job *j, const qt_job *job, const fsm_attempt *a, uint64_t now,
              uint64_t wall, fsm_action *out);

/* The driver's shared admission (backend.kind "redis", backend_gate.h)
 * refused an attempt fsm_dispatch had admitted (state IN_FLIGHT, nothing
 * sent): the limiter and budget reservations and the circuits' permits are
 * given back, the attempt is not counted, and the job waits on `on` until
 * `until` (WAIT_KEY; ROUTED when on is NULL). */
void fsm_unadmit(fsm_env *env, fsm_job *j, uint64_t now, uint64_t wall, const char *on, uint64_t until);

/* Event "timer": a WAIT_BACKOFF / WAIT_PROBE wait ended: REDISPATCH. */
void fsm_timer(fsm_job *j, uint64_t now, fsm_action *out);

/* Nonzero when no provider of model mi can carry the job's request (n > 1,
 * logprobs or a json_schema response_format to an anthropic-kind model);
 * why names the field and the model. */
int fsm_cannot_carry(const qt_config *cfg, const qt_job *job, int mi, char *why, size_t n);
/* The actual cost of an answer on model m (cached-token prices applied). */
double fsm_cost(const qt_model_cfg *m, const qt_provider_result *res);

/* 1 when a new job of this request would be answered from the response
 * cache at once: its chain ends in @cache, every model of it is unavailable
 * now (circuit open or cooling down after a 429, itself or all its
 * providers) and the cache holds this request's answer. Pure (nothing
 * changes, no event); under the engine's lock. */
int fsm_cache_answers_now(const fsm_env *env, const qt_job *job, uint64_t now);

/* 1 when a limiter key is held (429 cooldown, provider reset) past now;
 * *until gets the end. */
int fsm_key_held(const fsm_env *env, int key, uint64_t now, uint64_t *until);

/* The metrics outcome of a failed attempt. */
qt_outcome fsm_outcome_of(const fsm_attempt *a);

void fsm_attempt_free(fsm_attempt *a);

#endif
