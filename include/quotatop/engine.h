/* engine.h: the scheduler. Owns the policy objects (queue, limiter, budget,
 * circuits, retry budgets, estimator, cache) behind one mutex, and carries
 * every job to exactly one result with no thread per job: a few event-loop
 * threads (about one per core) run each job's state machine (job_fsm.h):
 * route (first model of the chain whose circuits admit it, not cooling down
 * after a 429, whose context window and estimated cost fit) -> admit (the
 * limiter's keys, the budget, circuit permits) -> send through the
 * transport (transport.h; live = libcurl multi) -> settle -> finish, retry
 * after a timer, or fall back. `workers` bounds the requests in flight.
 * Jobs that wait keep their place in the queue, so capacity that frees on a
 * key goes to the most urgent job that needs it. With a manual clock and
 * opts.virtual_time the same engine runs on one loop the caller drives
 * (qt_engine_run_virtual). docs/ARCHITECTURE.md "Engine" has the diagram.
 *
 * Results leave through the on_result callback, called exactly once per job
 * (from a loop thread, from the caller of qt_engine_submit_invalid / cancel
 * / shutdown) and never with the engine lock held.
 *
 * Thread-safety: every function may be called from any thread (the engine
 * serialises internally), except qt_engine_run_virtual and qt_engine_loop's
 * timers (the driving thread); qt_engine_new/start/free from one
 * controlling thread. on_result and stream sink callbacks run on loop
 * threads concurrently and must not block for long.
 */
#ifndef QT_ENGINE_H
#define QT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/backend.h"
#include "quotatop/clock.h"
#include "quotatop/common.h"
#include "quotatop/config.h"
#include "quotatop/jobs.h"
#include "quotatop/queue.h"

typedef struct qt_engine qt_engine;
typedef struct qt_loop qt_loop;
typedef struct qt_transport qt_transport;
typedef struct qt_events qt_events;
typedef struct qt_metrics qt_metrics;

/* ---- job views (contract D): every job that has no result yet ---- */

/* Where a job is in its life. queued -> routed -> (wait-key | wait-backoff |
 * wait-probe | wait-budget) -> in-flight -> streaming -> done. */
typedef enum {
    QT_JOB_QUEUED,        /* in the queue, never sent */
    QT_JOB_ROUTED,        /* taken for a model, deciding / about to be sent */
    QT_JOB_WAIT_KEY,      /* waits for capacity on a limiter key */
    QT_JOB_WAIT_BACKOFF,  /* waits out a retry's backoff */
    QT_JOB_WAIT_PROBE,    /* every model of its chain is unavailable (circuit, 429 hold) */
    QT_JOB_WAIT_BUDGET,   /* waits for budget (reserved; see docs/ARCHITECTURE.md) */
    QT_JOB_IN_FLIGHT,     /* request on the wire */
    QT_JOB_STREAMING,     /* a 2xx stream is reaching the client */
    QT_JOB_DONE,
} qt_job_state;
#define QT_JOB_STATES 9

/* "queued", "routed", "wait-key", "wait-backoff", "wait-probe", "wait-budget",
 * "in-flight", "streaming", "done"; "?" out of range. */
const char *qt_job_state_name(qt_job_state s);

typedef struct {
    char id[64], workflow[64], model[64];   /* model asked */
    char cur_model[64], provider[64];       /* where it is routed / on the wire ("" none) */
    int priority, aged_priority;            /* as configured; after aging */
    qt_job_state state;
    char wait_on[96];                       /* the key, timer or reason it waits on ("" none) */
    uint64_t since_ms;                      /* how long it has been in this state */
    uint64_t until_in_ms;                   /* waits with a known end: time left, else 0 */
    uint64_t age_ms;                        /* since submission */
    int attempts;
    int est_prompt_tokens, max_tokens;
    double cost_usd;                        /* so far */
} qt_job_view;

typedef struct {
    char model[64], provider[64];
    int status;                 /* HTTP status, 0 transport error */
    uint64_t ttfb_ms, total_ms; /* ttfb: the first body byte of a stream, else the
                                 * response headers' arrival; 0 unknown */
    int prompt_tokens, completion_tokens;
    uint64_t retry_after_ms;    /* hint the upstream gave (Retry-After / reset), 0 none */
    char error[160];            /* "" when ok; secrets redacted */
    uint64_t at_ms;             /* when it was sent, ms after the job's submission */
    int64_t limit_requests, limit_tokens;   /* the per-minute limits the upstream announced
                                             * in its rate-limit headers, 0 none */
} qt_attempt_view;

typedef struct {
    qt_job_view job;
    char chain[8][64]; int n_chain;
    qt_attempt_view attempts[16]; int n_attempts;   /* the last 16 */
    char waits[16][96]; int n_waits;                 /* "wait-key model:gpt-4o 1200ms", ... */
} qt_job_detail;

/* Extra information about a finished job for callers that answer clients
 * (the proxy) or record traces (run, serve): the upstream answer in the shape
 * of the job's endpoint, and every attempt. */
typedef struct {
    const char *openai_json;     /* NULL unless status ok. The answer as the client of
                                  * the job's endpoint expects it: a chat.completion
                                  * (chat), an Anthropic message (messages), a
                                  * response (responses), an embeddings list */
    int http_status;             /* last upstream status (0 none) */
    const qt_attempt_view *attempts;   /* the last 16 attempts, oldest first */
    int n_attempts;
    uint64_t enqueued_wall_ms;   /* wall clock at submission */
    uint64_t queue_wait_ms;      /* submission to first request (or to the result) */
} qt_result_extra;

typedef void (*qt_engine_on_result)(void *ud, const qt_job *job, const qt_result *res,
                                    const qt_result_extra *extra);

typedef struct {
    const qt_config *cfg;        /* must outlive the engine */
    qt_clock *clock;             /* NULL = system clock */
    int workers;                 /* 0 = cfg->workers */
    qt_engine_on_result on_result;
    void *on_result_ud;
    /* Optional: called after on_result, once for a burst: on a loop thread
     * when the loop is about to wait again (every result of that turn is
     * given by then), on any other thread right after the result. A sink
     * that buffers what on_result writes writes it out here (cmd_run: one
     * write(2) for a burst of result lines, not one a line). */
    void (*on_results_flush)(void *ud);
    void *on_results_flush_ud;
    uint64_t seed;               /* jitter PRNG seed, 0 = from time */
    int want_openai_json;        /* render ok answers for qt_result_extra (proxy) */
    const qt_transport *transport; /* NULL = live (libcurl multi); see transport.h */
    int virtual_time;            /* with a manual clock: one loop, driven by the caller
                                    through qt_engine_run_virtual (no threads, no sleeping) */
} qt_engine_opts;

/* Per model / provider row of a snapshot. */
typedef struct {
    char name[64];
    int is_provider;
    char circuit[12];            /* CLOSED / OPEN / HALF_OPEN */
    uint64_t next_probe_in_ms;   /* OPEN: time until the next probe */
    double rpm, tpm;             /* effective limits now, 0 = unlimited */
    double cfg_rpm, cfg_tpm;     /* after headroom, as configured */
    int changed_live;
    uint64_t requests_60s, tokens_60s;
    int in_flight, max_concurrent;
    uint64_t requests, ok, rate_limited, errors, retries, fallbacks;
    uint64_t prompt_tokens, completion_tokens;
    uint64_t cached_tokens, cache_write_tokens;   /* parts of prompt_tokens (prompt cache) */
    double cost_usd;
    double p50_ms, p95_ms;
    uint64_t held_until_in_ms;   /* >0 while held after a 429 */
    uint32_t rps[120], tps[120]; /* requests / tokens per second, oldest first */
} qt_engine_row;

typedef struct {
    char name[64];
    uint64_t jobs, done, ok, failed, rejected, cancelled, invalid;
    uint64_t calls;              /* upstream requests */
    uint64_t prompt_tokens, completion_tokens;
    double cost_usd, limit_usd;  /* limit 0 = no workflow budget */
    size_t queued;
    int paused;
} qt_engine_wf;

typedef struct {
    uint64_t uptime_ms;
    int paused;
    int workers, busy;
    size_t queued;
    size_t waiting;              /* taken from the queue, not on the wire: waiting on a limit key,
                                    a backoff, a circuit probe or a fleet slot (or being routed) */
    uint64_t jobs, done, ok, failed, rejected, cancelled, invalid;
    uint64_t by_endpoint[QT_ENDPOINT_COUNT];   /* jobs submitted, by qt_endpoint */
    uint64_t requests, retries, upstream_429, fallbacks, circuit_transitions, cache_hits;
    uint64_t prompt_tokens, completion_tokens;
    uint64_t cached_tokens, cache_write_tokens;   /* parts of prompt_tokens (prompt cache) */
    double cost_usd;
    double run_spent_usd, run_limit_usd, day_spent_usd, day_limit_usd;
    /* backend.kind "redis" (all 0 with the local backend): */
    int fleet_state;             /* 0 local backend, 1 shared, 2 Redis down: this process's share,
                                    3 Redis down: closed (nothing dispatched) */
    int fleet_divisor;           /* the share's divisor while down */
    int fleet_procs;             /* processes sharing the quota, this one included */
    int fleet_in_flight;         /* their requests in flight */
    uint64_t fleet_requests_60s; /* fleet-wide, over the model keys, about the last minute */
    uint64_t fleet_tokens_60s;
    double fleet_day_spent_usd;  /* today, fleet-wide (UTC day of Redis's clock) */
    qt_engine_row *rows;         /* models first, then providers */
    size_t n_rows;
    qt_engine_wf *workflows;
    size_t n_workflows;
} qt_engine_snapshot;

/* Creates an engine for opts->cfg (registers limiter keys, circuits, budget
 * limits). Workers do not run until qt_engine_start. Returns NULL with a
 * message in err when out of memory or a worker cannot start. */
qt_engine *qt_engine_new(const qt_engine_opts *opts, char *err, size_t errlen);

/* Starts the event-loop threads (none in virtual time). QT_OK or QT_ERR_NOMEM. */
qt_err qt_engine_start(qt_engine *e);

/* Queues a job (the engine takes ownership). QT_ERR_CLOSED after intake was
 * closed (the job is then given a `cancelled` result and freed). */
qt_err qt_engine_submit(qt_engine *e, qt_job *job);
/* Queues n jobs as qt_engine_submit does each, in order, taking the engine
 * lock once per 256 of them (the reader of `run`: one lock for a read's
 * worth of lines, not one a line). errs (NULL: not wanted) gets each job's
 * qt_engine_submit answer. */
void qt_engine_submit_many(qt_engine *e, qt_job **jobs, size_t n, qt_err *errs);

/* Records a job that could not be used (an invalid line): counts it and
 * emits its `invalid` result at once. */
void qt_engine_submit_invalid(qt_engine *e, const char *id, const char *workflow,
                              const char *reason);

/* No more jobs will be submitted; workers exit once the queue is empty. */
void qt_engine_close_intake(qt_engine *e);

/* Waits until every submitted job has its result (intake must be closed for
 * this to be final), up to timeout_ms (< 0 forever). Returns 1 when done. */
int qt_engine_wait_done(qt_engine *e, int64_t timeout_ms);

/* Shutdown: stop dispatching, let requests in flight finish for up to
 * grace_ms, then give every unfinished job (queued or waiting) a `cancelled`
 * result. Returns when every job has its result and workers have exited. */
void qt_engine_shutdown(qt_engine *e, int64_t grace_ms);

/* Frees everything (calls qt_engine_shutdown(e, 0) if needed). Accepts NULL. */
void qt_engine_free(qt_engine *e);

/* ---- controls (dashboard keys) ---- */
void qt_engine_pause(qt_engine *e, int paused);   /* all dispatch */
int qt_engine_paused(qt_engine *e);
qt_err qt_engine_pause_workflow(qt_engine *e, const char *workflow, int paused);
/* Cancels a job by id: a queued one gets its `cancelled` result at once; one
 * a worker holds (waiting, or on the wire) is flagged and the worker writes
 * the result (a streamed transfer is aborted). QT_ERR_NOTFOUND otherwise. */
qt_err qt_engine_cancel(qt_engine *e, const char *job_id);
qt_err qt_engine_reprioritize(qt_engine *e, const char *job_id, int priority);
/* Scales a model's (is_provider 0) or provider's limit by factor (RPM when
 * which is 'r', TPM when 't'); factor <= 0 restores the configured limits. */
qt_err qt_engine_scale_limit(qt_engine *e, const char *name, int is_provider, char which,
                             double factor);

size_t qt_engine_queue_depth(qt_engine *e);
/* Backpressure and submit under one take of the lock (serve, once a
 * request), so that the bound holds however many threads submit. Returns
 * QT_ERR_LIMIT, the job still the caller's, when the queue already holds
 * max_queue jobs, or when the job would wait longer than max_wait_ms for
 * its limits (over its whole fallback chain; unknown when blocked on
 * concurrency) and the response cache would not answer it at once (its
 * chain ends in @cache, none of its models is available, the cache holds
 * its answer); QT_ERR_NOMEM when no record could be made (the job is
 * freed, no result comes); else QT_OK: the engine has the job and gives it
 * exactly one result (queued, or refused as qt_engine_submit refuses).
 * *depth and *wait_ms (either may be NULL) get what was seen: the queue's
 * depth before this job, and the wait (UINT64_MAX: unknown). */
qt_err qt_engine_submit_bounded(qt_engine *e, qt_job *job, size_t max_queue, uint64_t max_wait_ms,
                                size_t *depth, uint64_t *wait_ms);
int qt_engine_in_flight(qt_engine *e);   /* requests on the wire now */
/* Jobs submitted that have no result yet (queued, waiting or on the wire). */
size_t qt_engine_unfinished(qt_engine *e);
/* `workers` as the engine resolved it (opts, else the config): requests in flight at most. */
int qt_engine_workers(const qt_engine *e);

/* ---- readers ---- */
qt_err qt_engine_snapshot_take(qt_engine *e, qt_engine_snapshot *out);
void qt_engine_snapshot_free(qt_engine_snapshot *s);
/* The fleet as this process last saw it (backend.kind "redis"): the
 * backend's view (processes, fleet-wide figures per key, today's spend,
 * pauses) copied into *out. QT_ERR_NOTFOUND (and *out zeroed) with the
 * local backend. Takes no engine lock (the view has its own). */
qt_err qt_engine_fleet_view(qt_engine *e, qt_backend_view *out);
qt_events *qt_engine_events(qt_engine *e);     /* owned by the engine */
qt_metrics *qt_engine_metrics(qt_engine *e);   /* owned by the engine */
/* Copies the first max queued jobs in dispatch order. */
size_t qt_engine_queue_head(qt_engine *e, qt_queue_view *out, size_t max);

/* Copies up to max jobs that have no result yet, most urgent first (aged
 * priority, then submission order). Returns how many were copied. */
size_t qt_engine_jobs(qt_engine *e, qt_job_view *out, size_t max);
/* How many jobs have no result yet. */
size_t qt_engine_jobs_count(qt_engine *e);
/* One job in full: its view, chain, last attempts and waits.
 * QT_OK or QT_ERR_NOTFOUND (no such job, or it already has its result). */
qt_err qt_engine_job_detail(qt_engine *e, const char *id, qt_job_detail *out);

/* ---- virtual time (contract C) ----
 * Runs the engine's one loop on the calling thread with its manual clock:
 * ready work, then a jump to the next timer, until nothing is posted or
 * timed (every job submitted so far has its result, or waits for a job or
 * control the caller has yet to give). QT_ERR_INVALID unless virtual_time
 * and started. */
qt_err qt_engine_run_virtual(qt_engine *e);
/* The engine's loop (loop 0) after qt_engine_start, so a driver can add
 * timers (the replay submits recorded arrivals at their times); NULL
 * before. Loop-thread rules of loop.h apply. */
qt_loop *qt_engine_loop(qt_engine *e);
/* How many live loops the engine runs after qt_engine_start (0 before and
 * in virtual time), and loop i of them, so a front end can run its I/O on
 * them (serve's HTTP server: a request is then read, sent upstream and
 * answered on one thread). Loop-thread rules of loop.h apply. */
int qt_engine_live_loops(const qt_engine *e);
qt_loop *qt_engine_loop_at(qt_engine *e, int i);

/* Writes the summary object of DESIGN.md as JSON. Caller frees. */
char *qt_engine_summary_json(qt_engine *e, double elapsed_s);

#endif /* QT_ENGINE_H */
