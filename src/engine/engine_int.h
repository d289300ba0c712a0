/* engine_int.h: the engine's private state, shared by its files (engine.c,
 * engine_loop.c, engine_send.c, engine_life.c, engine_ctl.c, engine_view.c,
 * engine_fleet.c). Not a public header.
 *
 * Every field below e->lock is guarded by it unless marked otherwise. */
#ifndef QT_ENGINE_INT_H
#define QT_ENGINE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "quotatop/backend_gate.h"
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

#include "quotatop/loop.h"
#include "quotatop/transport.h"

#include "job_fsm.h"

#define EJ_MAX_ATTEMPTS 16
#define EJ_MAX_WAITS 16
#define EJ_WAIT_LEN 96

/* The engine's record of one job from submission to its result: the job,
 * where it is in its life (contract D) and its routing state. Every field
 * is guarded by e->lock except `streaming` (__atomic). Attempts and waits
 * grow on demand (most jobs have one attempt and no wait). */
typedef struct ejob {
    qt_job *job;
    struct ejob *prev, *next;      /* e->live: jobs without a result */
    int linked;
    qt_job_state state;
    int streaming;                 /* a 2xx stream reached the sink (__atomic) */
    uint64_t since_ms;             /* entered `state` (or its current wait) */
    uint64_t until_ms;             /* known end of the wait, 0 none */
    char wait_on[EJ_WAIT_LEN];
    int cur_mi, cur_pi;            /* routed model / provider, -1 none */
    double cost_usd;
    uint64_t enqueued_wall_ms;
    uint64_t first_byte_ms;        /* of the attempt on the wire, 0 none yet */
    qt_attempt_view *att;          /* the last EJ_MAX_ATTEMPTS, oldest first */
    int n_att, cap_att;
    char (*waits)[EJ_WAIT_LEN];    /* the last EJ_MAX_WAITS, oldest first */
    int n_waits, cap_waits;
    uint64_t order;                /* first pop order (0: never taken from the queue yet) */
    fsm_job f;                     /* its state machine */
    struct qt_engine *eng;
    struct ejob *hnext;            /* e->idmap chain */
    /* the event runtime (engine_loop.c) */
    int refs;                      /* 1 until its result, +1 per posted work / timer / effect */
    int finished;                  /* it has its result (the record lives on for refs) */
    int in_queue;
    int loop;                      /* the loop its timers and transfers run on */
    int conn;                      /* which of that loop's transport connections */
    qt_timer *timer;               /* an armed WAIT_TIMER (its loop thread only) */
    struct engine_xfer *x;         /* its request on the wire */
    uint64_t q_enq_ms, q_seq;      /* its place in the queue (keep_place) */
    uint64_t pass;                 /* the pump pass that last found it waiting on a key */
    fsm_act_kind act;              /* what the pump decided, carried out after the lock */
    uint64_t act_until;            /* FSM_WAIT_TIMER: until when */
    fsm_action *act_fin;           /* FSM_FINISH: the action, in the deciding loop's
                                    * scratch (engine_loopctx.fin) until carried out */
    struct ejob *fx_next;          /* the pump's list of actions to carry out */
    struct engine_fleet_job *fl;   /* backend.kind "redis": the fleet's part (engine_fleet.c), else NULL */
} ejob;

/* A job's part in the fleet's admission (engine_fleet.c), made at its first
 * attempt. Guarded by e->lock, except that while the gate decides (asked,
 * until the answer is posted to the job's loop) gt and ans are the gate's. */
typedef struct engine_fleet_job {
    qt_gate_ticket gt;             /* the fleet's admission of the attempt on its way */
    qt_gate_answer ans;            /* the gate's answer, carried to the job's loop */
    qt_timer *timer;               /* sleeping to a slot taken ahead (its loop only) */
    uint64_t until;                /* the fleet said wait: not dispatched before this */
    int hold_key[2];               /* ... and these limiter keys are held for it (-1 none) */
} engine_fleet_job;

/* One event loop of the runtime and its thread and transport connection. */
typedef struct {
    struct qt_engine *eng;
    qt_loop *loop;
    pthread_t thread;
    int started;
    void **conns;                 /* the transport's connections on this loop */
    int nconns;
    int in_flight;                /* its jobs on the wire (e->lock) */
    unsigned next_conn;           /* the connection of its next new job (e->lock) */
    int drained;                  /* its connections were drained (its thread only) */
    int results_given;            /* on_result ran on it since on_results_flush (its thread only) */
    fsm_action *fin;              /* its pump's FINISH actions, PUMP_BATCH of them (its thread
                                   * only: a pump runs on one loop and carries its actions out
                                   * before it returns; an ejob holds only its kind and time) */
} engine_loopctx;

struct qt_engine {
    const qt_config *cfg;         /* immutable */
    qt_clock *clock;
    qt_engine_on_result on_result;
    void *on_result_ud;
    void (*on_results_flush)(void *ud);   /* immutable, NULL none */
    void *on_results_flush_ud;
    int want_openai_json;
    uint64_t start_ms;
    qt_events *events;            /* has its own lock */
    qt_metrics *metrics;          /* has its own lock; model/provider index = config index */
    qt_ledger *ledger;            /* has its own lock; NULL when disabled or unusable */
    qt_backend_gate *gate;        /* backend.kind "redis": the fleet's admission (own lock); else NULL */
    int ledger_warned;            /* a failed record was reported (__atomic, no lock) */

    pthread_mutex_t lock;         /* guards everything below */
    pthread_cond_t done_cond;     /* every job done, or nothing in flight */
    qt_queue *queue;
    qt_limiter *limiter;
    qt_budget *budget;
    qt_estimator *est;
    qt_cache *cache;
    model_rt *models;             /* cfg->n_models */
    provider_rt *providers;       /* cfg->n_providers */
    uint64_t rng;
    int started, intake_closed, stopping, shut_down, paused;
    int aborting;                 /* read without the lock via __atomic */
    fsm_env env;                  /* the policy objects above, for job_fsm.c */
    unsigned char *blocked;       /* per limiter key scratch (env.blocked) */
    uint64_t pop_order;
    uint64_t jobs, done;          /* submitted / given their result */
    uint64_t by_endpoint[QT_ENDPOINT_COUNT];   /* submitted, by the job's endpoint */
    ejob *live;                   /* every job without a result (submission order) */
    ejob *live_tail;
    size_t n_live;
    ejob **idmap;                 /* live jobs by id (chained; size a power of two) */
    size_t idmap_cap;

    /* the event runtime (engine_loop.c); fields below the lock too unless said */
    const qt_transport *transport;/* immutable */
    int virtual_time;             /* immutable */
    int nloops;                   /* immutable after start */
    engine_loopctx *loops;        /* immutable after start */
    int max_in_flight;            /* workers: requests on the wire at most */
    int in_flight_jobs;           /* the sum of loops[i].in_flight: change both together */
    int pump_posted, rearm_posted;
    uint64_t pump_at;             /* the pump timer's deadline, UINT64_MAX none */
    qt_timer *pump_timer;         /* loop 0's */
    uint64_t pass;
};

static inline uint64_t now_of(qt_engine *e) { return qt_clock_now_ms(e->clock); }
static inline uint64_t wall_of(qt_engine *e) { return qt_clock_wall_ms(e->clock); }

/* The job's max_tokens, else the model's default (what providers count). */
static inline int max_tokens_of(const qt_engine *e, const qt_job *job, int mi)
{
    if (job->endpoint == QT_ENDPOINT_EMBEDDINGS)
        return 0;   /* nothing to complete: only the input counts */
    return fsm_max_tokens(e->cfg, job, mi);
}

/* engine_view.c (lock held unless said) */
/* A new record for job (not linked), or NULL when out of memory. */
ejob *ejob_new(qt_engine *e, qt_job *job);
/* How long a job of this model and size would wait for the limiter now
 * (ms), over its fallback chain; UINT64_MAX when unknown (blocked on
 * concurrency). Lock held (engine_ctl.c; qt_engine_submit_bounded). */
uint64_t engine_estimate_wait_locked(qt_engine *e, int model_idx, size_t prompt_chars, int max_tokens);
/* Frees the record (not the job). */
void ejob_free(ejob *ej);
void ejob_link(qt_engine *e, ejob *ej);
void ejob_unlink(qt_engine *e, ejob *ej);
/* Moves the job to state s, waiting on `on` (may be NULL) until until_ms
 * (0 unknown). A wait that ends is appended to its wait history. */
void ejob_set_state(qt_engine *e, ejob *ej, qt_job_state s, const char *on, uint64_t until_ms);
/* Appends an attempt (keeps the last EJ_MAX_ATTEMPTS). */
void ejob_add_attempt(ejob *ej, const qt_attempt_view *a);
/* Finds a live job by id, NULL when none. */
ejob *ejob_find(qt_engine *e, const char *id);

/* engine_loop.c: the event runtime (lock held unless said) */
qt_err engine_loop_start(qt_engine *e);             /* no lock */
void engine_loop_request_pump(qt_engine *e);
void engine_loop_requeue(qt_engine *e, ejob *ej);
qt_err engine_loop_cancel(qt_engine *e, ejob *ej);  /* lock held on entry, released on return */
void engine_loop_shutdown(qt_engine *e, int64_t grace_ms);   /* no lock */
void engine_loop_free(qt_engine *e);                /* no lock */
/* Drops one reference (lock held); frees the record at zero. */
void ejob_release(ejob *ej);
/* Records what one attempt came to in the job's history (engine.c). */
void engine_record_attempt(qt_engine *e, ejob *ej, int mi, int pi, const fsm_attempt *a);

/* engine.c */
/* Estimated prompt tokens of job on model mi (calibrated, plus framing).
 * Lock held. */
int64_t engine_est_prompt(qt_engine *e, const qt_job *job, int mi);
/* Gives job a `cancelled` result (outside the lock) and frees it. */
void engine_finish_cancelled(qt_engine *e, ejob *ej, const char *why);
/* Gives job its final result (outside the lock) and frees it. */
void engine_finish_simple(qt_engine *e, ejob *ej, qt_status st, int attempts, const char *err);
/* Waits on cond (e->lock held) until the engine clock reads until_ms, a
 * signal, or one second at most. */
void engine_wait_until(qt_engine *e, pthread_cond_t *cond, uint64_t until_ms);
/* A result was given (after on_result, no lock): on_results_flush now, or
 * when this loop is about to wait. engine_loop.c. */
void engine_loop_result_given(qt_engine *e);
/* Copies the machine's state into the job's record (views). Lock held. */
void engine_sync_state(qt_engine *e, ejob *ej);
/* Carries out a FINISH action (ledger, OpenAI rendering, the result) and
 * frees the job. No lock held. a: the attempt it came from, or NULL. */
void engine_finish_action(qt_engine *e, ejob *ej, fsm_action *act, const fsm_attempt *a);

/* One request on its way: what was built, the stream's parser, what came
 * back. engine_send.c. Kept small (10,000 of them are alive at once when
 * `workers` is 10,000): the attempt (fsm_attempt, ~1.6 KB) is made on the
 * stack of complete() from the answer, not carried on the wire. */
typedef struct engine_xfer {
    struct qt_engine *e;
    const qt_job *job;
    ejob *ej;
    int mi, pi;
    int stream;
    qt_provider_request req;
    char *url;            /* base_url + path (malloc'd; freed with req) */
    qt_provider_stream *ps;
    int client_gone;
    uint64_t start_ms;
    size_t forwarded;     /* chunks handed to the client's sink */
    int parse_failed;     /* on_data stopped the transfer: bad stream */
    int built;            /* the request could be built (else build_err says why) */
    char *build_err;      /* malloc'd, NULL none */
    qt_http_response resp;/* the transport's answer (ours from on_done) */
    void *handle;         /* the transport's, while on the wire */
    int loop;             /* the loop it runs on (event runtime) */
    int conn;             /* the loop's transport connection it uses */
} engine_xfer;

/* engine_send.c (no lock held) */
/* Builds the request of attempt (mi, pi). 1 built; 0 it cannot be
 * expressed for the provider (x->a says so; nothing to send). */
int engine_xfer_build(qt_engine *e, ejob *ej, int mi, int pi, engine_xfer *x);
/* The on_data of a streamed request (ud: the xfer). */
int engine_xfer_on_data(void *ud, const char *buf, size_t n);
/* Frees the request and the stream parser, moves x->resp into a (which it
 * sets up: the caller frees it with fsm_attempt_free), classifies it and
 * redacts keys. */
void engine_xfer_classify(engine_xfer *x, fsm_attempt *a);
/* Copies an answer's finish reason, tool calls, choices and cache/reasoning
 * token counts into a result (res NULL: nothing). */
void engine_result_details(qt_result *r, const qt_provider_result *res);

/* A fleet-wide control seen through Redis (engine_ctl.c): applied to this
 * engine without publishing it again. The backend's thread; takes the lock. */
void engine_fleet_control(void *ud, const char *op, const char *arg);

/* engine_loop.c: builds the job's request and puts it on the wire (the
 * second half of start_send, after the fleet's GO). The job's loop, no lock;
 * holds the action's reference until the attempt completes. */
void engine_loop_send(ejob *ej);
/* Ends an attempt the fleet refused (engine_fleet.c) as complete() ends one
 * that came back: the job's loop, lock held; releases the action's reference. */
void engine_loop_unsent(qt_engine *e, ejob *ej);

/* engine_fleet.c (e->gate set; the event runtime) */
/* start_send's seam, on the job's loop, no lock: asks the fleet for the
 * attempt the job's machine admitted (IN_FLIGHT, nothing sent). 1: asked
 * (its answer goes on to engine_loop_send, or gives everything back and
 * requeues or rejects the job); 0: send now without asking (the job must
 * stop: the send path ends it). */
int engine_fleet_start(qt_engine *e, ejob *ej);
/* The pump's check (lock held): 1 when the fleet told ej to wait past now
 * (its keys are marked in e->blocked and *wake lowered to its time). */
int engine_fleet_holds(qt_engine *e, ejob *ej, uint64_t now, uint64_t *wake);
/* stop_job's hook (lock held): 1 when ej sleeps to a fleet slot and work to
 * stop it was posted to its loop. */
int engine_fleet_stop(qt_engine *e, ejob *ej);
/* Settles the job's fleet ticket as the machine settles its own
 * reservations (lock held; before fsm_done). No-op without a ticket. */
void engine_fleet_settle(qt_engine *e, ejob *ej, const fsm_attempt *a);
/* Gives the ticket back (the attempt never left). Lock held. */
void engine_fleet_drop(qt_engine *e, ejob *ej);

#endif
