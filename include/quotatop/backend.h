/* backend.h: limits, budgets and pauses shared by many quotatop processes
 * through Redis (backend.kind "redis").
 *
 * One admission decision is one round trip: the admit script checks every
 * key a request needs (GCRA theoretical arrival times for RPM and TPM of its
 * model and provider, their concurrency slots, the run, day and workflow
 * budgets with their outstanding reservations, the fleet's pauses and limit
 * overrides) and takes them all or nothing, on Redis's clock. Commit and
 * release are one round trip each. Slots and reservations are leases: a
 * process heartbeats, and the leases of a process whose heartbeat key has
 * expired (backend.lease_ms) are swept by the next script that meets them.
 * Every key carries the hash tag "{prefix}" (one Redis Cluster slot per
 * fleet) and a TTL. Scripts are loaded with SCRIPT LOAD at each connection
 * and called with EVALSHA; a NOSCRIPT reply reloads and retries, a MOVED
 * reply (Cluster) reconnects to the node it names and retries.
 *
 * hiredis's async context runs on a qt_loop (the fd through
 * qt_loop_io_watch, timeouts and reconnects on timers). When Redis is down or
 * slower than backend.timeout_ms every call answers QT_BACKEND_DOWN at once
 * and the backend reconnects by itself (backoff 100 ms .. 2 s); what the
 * caller does then is backend.on_error (see qt_backend_share_divisor).
 *
 * Thread-safety: a qt_backend belongs to the thread running its loop:
 * every function except qt_backend_view_copy is called there, and every
 * callback runs there. qt_backend_view_copy may be called from any thread
 * (one mutex around the view). The engine uses the runner at the end of
 * this header (the backend on a loop thread of its own, every call posted).
 */
#ifndef QT_BACKEND_H
#define QT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"
#include "quotatop/loop.h"

typedef struct qt_backend qt_backend;

#define QT_BACKEND_MAX_RATE   4
#define QT_BACKEND_MAX_BUDGET 3
#define QT_BACKEND_NAME       96
#define QT_BACKEND_MAX_PROCS  32
#define QT_BACKEND_MAX_VIEW   16   /* rate keys and paused workflows in the view */

/* One rate key of a request (its model's, its provider's). */
typedef struct {
    char name[QT_BACKEND_NAME];   /* "model:gpt-4o", "provider:openai" */
    double rpm, tpm;              /* effective limits (after headroom), 0 = unlimited */
    int max_concurrent;           /* 0 = unlimited */
    int64_t est_tokens;           /* charged against tpm at admission */
} qt_backend_rate;

/* One budget of a request. */
typedef struct {
    char name[QT_BACKEND_NAME];   /* "day", "wf:<workflow>", "run:<proc>" */
    int per_day;                  /* 1: counts the current UTC day (Redis's clock) */
    double limit_usd;             /* 0 = unlimited (spend still counted) */
    double est_usd;               /* worst-case cost reserved */
} qt_backend_budget;

/* A request going in, a lease coming out: the caller fills the request
 * fields, admit fills the rest, commit or release spends it. A plain value
 * (no memory owned). */
typedef struct {
    char workflow[64];
    long ahead_ms;                /* a pacing wait up to this long is taken at once:
                                     ADMITTED with delay_ms, send after it (0 = never) */
    qt_backend_rate rate[QT_BACKEND_MAX_RATE];
    int n_rate;
    qt_backend_budget budget[QT_BACKEND_MAX_BUDGET];
    int n_budget;
    /* set by admit: */
    int active;                   /* 1 between an admission and commit/release */
    uint64_t seq;                 /* the lease is "<proc>#<seq>" */
    long day;                     /* UTC day number of the admission (Redis's) */
} qt_backend_lease;

typedef enum {
    QT_BACKEND_ADMITTED = 0,   /* slots and reservations held: commit or release the lease */
    QT_BACKEND_WAIT,           /* pacing: the same call succeeds in wait_ms */
    QT_BACKEND_FULL,           /* a key is at max_concurrent: retry after wait_ms (a hint) */
    QT_BACKEND_BUDGET,         /* a budget refuses (spent + reserved + estimate > limit) */
    QT_BACKEND_PAUSED,         /* the fleet is paused */
    QT_BACKEND_WF_PAUSED,      /* this workflow is paused fleet-wide */
    QT_BACKEND_DOWN            /* Redis unreachable, slow or in error: see on_error */
} qt_backend_verdict;

const char *qt_backend_verdict_name(qt_backend_verdict v);   /* "admitted", "wait", ... */

typedef struct {
    qt_backend_verdict verdict;
    uint64_t wait_ms;          /* WAIT, FULL */
    int index;                 /* WAIT, FULL: rate index; BUDGET: budget index */
    double spent_usd, reserved_usd, limit_usd;   /* BUDGET */
    uint64_t redis_ms;         /* Redis's clock at the decision (0 unknown) */
    uint64_t delay_ms;         /* ADMITTED: send after this (the slot taken ahead) */
    uint64_t next_ms[QT_BACKEND_MAX_RATE];   /* ADMITTED: ms until each rate key admits
                                                again (a hint: callers wait that long
                                                before asking again) */
    char error[160];           /* DOWN: why */
} qt_backend_decision;

/* Runs once per admit, on the loop thread. lease is the caller's (the one
 * given to qt_backend_admit); it is active only when d->verdict is
 * QT_BACKEND_ADMITTED. */
typedef void (*qt_backend_admit_fn)(void *ud, qt_backend_lease *lease, const qt_backend_decision *d);

/* A process of the fleet, from its heartbeat. */
typedef struct {
    char host[64];
    int pid;
    char mode[8];              /* "run", "serve", ... */
    int in_flight;             /* its leases not yet settled */
    int self;                  /* 1 for this process */
} qt_backend_proc;

/* The fleet as of the last heartbeat (about once a second). */
typedef struct {
    int up;                    /* 1 when the last call reached Redis */
    char error[160];           /* why it is down ("" when up) */
    uint64_t down_since_ms;    /* loop clock, 0 when up */
    int paused;                /* fleet-wide pause */
    char wf_paused[QT_BACKEND_MAX_VIEW][64];
    int n_wf_paused;
    qt_backend_proc procs[QT_BACKEND_MAX_PROCS];
    int n_procs;               /* live processes sharing the quota (this one included) */
    int max_procs_seen;        /* the most processes ever seen at once */
    struct {
        char name[QT_BACKEND_NAME];
        uint64_t requests_60s, tokens_60s;   /* fleet-wide, about the last minute */
        double rpm, tpm;       /* fleet-wide override (-1 none) */
        int conc;              /* override, -1 none */
    } rates[QT_BACKEND_MAX_VIEW];
    int n_rates;
    double day_spent_usd, day_reserved_usd;  /* fleet-wide, today (UTC, Redis's clock) */
    int fleet_in_flight;       /* sum over the processes */
    uint64_t admits, commits, releases, errors, reconnects, noscript_reloads, redirects;
} qt_backend_view;

/* Control notifications (another process, or this one, changed the fleet's
 * state): op is "pause", "resume", "wfpause", "wfresume", "limit",
 * "restore"; arg the workflow or key name ("" none). Loop thread. */
typedef void (*qt_backend_control_fn)(void *ud, const char *op, const char *arg);
/* Up/down transitions (up 1 after a reconnection; 0 with the reason). */
typedef void (*qt_backend_state_fn)(void *ud, int up, const char *why);

typedef struct {
    const char *url;           /* redis://host:port */
    const char *prefix;        /* NULL = "quotatop" */
    long lease_ms;             /* default 10000 */
    long timeout_ms;           /* default 500 */
    double burst_ms;           /* GCRA tolerance (limits.burst_ms) */
    const char *mode;          /* "run" / "serve" (shown in the fleet view) */
    const char *const *view_keys;   /* rate keys whose fleet figures the view shows */
    size_t n_view_keys;
    const char *const *view_budgets;   /* not used yet: the view reads "day" */
    qt_backend_control_fn on_control;
    qt_backend_state_fn on_state;
    void *ud;
} qt_backend_opts;

/* Returns a new backend on loop l that starts connecting at once, or NULL
 * (out of memory, or a url that is not redis://host:port; *err, if given,
 * says which). Strings are copied. Free with qt_backend_free (loop thread). */
qt_backend *qt_backend_new(qt_loop *l, const qt_backend_opts *o, char *err, size_t errlen);

/* Leaves the fleet (a last heartbeat deletes this process's key when Redis
 * is up: its leases are then swept at once, not after lease_ms), drops the
 * connection (pending callbacks run with QT_BACKEND_DOWN) and frees. Accepts NULL. */
void qt_backend_free(qt_backend *b);

/* This process's id in the fleet ("<host>-<pid>-<random>"). */
const char *qt_backend_proc_id(const qt_backend *b);

/* Asks for an admission. lease holds the request (see qt_backend_lease);
 * it must stay valid until cb runs, exactly once (on the loop thread; at once
 * with QT_BACKEND_DOWN when Redis is down). */
void qt_backend_admit(qt_backend *b, qt_backend_lease *lease, qt_backend_admit_fn cb, void *ud);

/* The call was sent: charges actual_tokens (the difference from each rate
 * key's estimate is refunded or charged) and actual_usd to every budget,
 * frees the slots and reservations. Fire and forget (when Redis is down the
 * lease is swept after lease_ms). Marks the lease inactive. */
void qt_backend_commit(qt_backend *b, qt_backend_lease *lease, int64_t actual_tokens, double actual_usd);

/* The call never reached the provider: its request, tokens, slots and
 * reservations are given back. Fire and forget. Marks the lease inactive. */
void qt_backend_release(qt_backend *b, qt_backend_lease *lease);

/* Fleet control, stored in Redis (admissions see it at once) and published
 * to every process: op "pause" | "resume" (arg NULL), "wfpause" | "wfresume"
 * (arg the workflow), "limit" (arg the key, what "rpm"|"tpm"|"conc", value;
 * a negative value means restore the configured limits). Returns
 * QT_ERR_INVALID for a bad op, QT_ERR_BACKEND when Redis is down. */
qt_err qt_backend_control(qt_backend *b, const char *op, const char *arg, const char *what,
                          double value);

/* 1 when the last call reached Redis. */
int qt_backend_up(const qt_backend *b);

/* When Redis is down and backend.on_error is "local": the number to divide
 * each limit by, max(expected, the most processes seen sharing the quota),
 * so an outage never multiplies a limit by the size of the fleet. */
int qt_backend_share_divisor(const qt_backend *b, int expected);

/* Copies the fleet view (any thread). */
void qt_backend_view_copy(const qt_backend *b, qt_backend_view *out);

/* ---- runner: the backend on a loop thread of its own --------------------
 * What the engine uses (through backend_gate.h): every call is posted to the
 * runner's loop and returns at once; an admission's answer comes back through
 * a callback on the runner's thread (the engine posts it on to the job's own
 * loop). No caller ever waits for Redis. The backend has a loop of its own,
 * not one of the engine's, so that a busy engine loop (a pump pass, ten
 * thousand transfers) never delays the reading of Redis's answers past
 * backend.timeout_ms and makes a healthy Redis look down.
 * Thread-safety: every runner function may be called from any thread. */
typedef struct qt_backend_runner qt_backend_runner;

/* Starts a loop thread and a backend on it. NULL on error (*err says why). */
qt_backend_runner *qt_backend_runner_new(const qt_backend_opts *o, char *err, size_t errlen);
/* Stops the thread (leaving the fleet; admissions still unanswered get
 * QT_BACKEND_DOWN first, on that thread) and frees. Accepts NULL. */
void qt_backend_runner_free(qt_backend_runner *r);

/* Runs once per admission, on the runner's thread. lease is the runner's
 * copy, valid during the call. Return 1 to take an admitted lease (copy
 * *lease: it is active), 0 to refuse it: the runner then frees what it
 * holds at once (a commit of the estimate at no cost). The return value of
 * any other verdict is ignored. */
typedef int (*qt_backend_runner_admit_fn)(void *ud, const qt_backend_lease *lease,
                                          const qt_backend_decision *d);
/* Asks for an admission of *lease (copied) and returns at once: QT_OK, and
 * cb runs exactly once, on the runner's thread, within about
 * backend.timeout_ms (an answer Redis does not give in time is
 * QT_BACKEND_DOWN); or QT_ERR_NOMEM, and cb never runs. */
qt_err qt_backend_runner_admit(qt_backend_runner *r, const qt_backend_lease *lease,
                               qt_backend_runner_admit_fn cb, void *ud);
/* As qt_backend_commit / qt_backend_release, posted; lease is marked inactive. */
void qt_backend_runner_commit(qt_backend_runner *r, qt_backend_lease *lease, int64_t actual_tokens,
                              double actual_usd);
void qt_backend_runner_release(qt_backend_runner *r, qt_backend_lease *lease);
/* As qt_backend_control, posted (QT_ERR_BACKEND at once when Redis was down
 * at the last call). */
qt_err qt_backend_runner_control(qt_backend_runner *r, const char *op, const char *arg,
                                 const char *what, double value);
void qt_backend_runner_view(qt_backend_runner *r, qt_backend_view *out);
int qt_backend_runner_divisor(qt_backend_runner *r, int expected);

#endif /* QT_BACKEND_H */
