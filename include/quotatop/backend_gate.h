/* backend_gate.h: the shared admission step the engine calls for each
 * attempt when backend.kind is "redis", and its policy when Redis fails.
 *
 * The engine keeps its own limiter and budget (this process's view, full
 * limits); the gate adds the fleet-wide decision on top: one Redis round
 * trip covering the model's and the provider's RPM/TPM/concurrency, the run,
 * day and workflow budgets, and the fleet's pauses. While Redis is down or
 * slower than backend.timeout_ms:
 * - on_error "local": the gate admits through a fallback limiter and budget
 *   of this process's share, every limit divided by
 *   max(backend.expected_processes, the most processes seen in the fleet),
 *   and the day budget's remaining amount (as last seen) divided the same
 *   way: the fleet together never exceeds a limit;
 * - on_error "closed": nothing is admitted.
 * Either way an event is raised when Redis goes away and when it returns,
 * qt_backend_gate_state says so (the dashboard's marker, /metrics), and the
 * gate goes back to Redis by itself.
 *
 * Nothing waits for Redis: qt_backend_gate_admit returns at once and its
 * answer comes through a callback, at once when the gate can decide alone
 * (Redis down, a hint that the key is not free yet), else on the backend's
 * thread when Redis has answered (backend_runner.c), within about
 * backend.timeout_ms. A pacing wait of up to min(5 s, lease/2) is taken in
 * the admission itself (GO with delay_ms: the slot is the caller's, who
 * sends after the delay, calling qt_backend_gate_slot first).
 *
 * Thread-safety: every function may be called from any thread (the
 * fallback limiter and budget sit behind the gate's mutex; nothing blocks
 * while holding it, and no callback runs under it). Callbacks (on_control,
 * admission answers) run on the backend's thread or, for an answer decided
 * at once, on the thread that asked.
 */
#ifndef QT_BACKEND_GATE_H
#define QT_BACKEND_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/backend.h"
#include "quotatop/budget.h"
#include "quotatop/clock.h"
#include "quotatop/config.h"
#include "quotatop/events.h"
#include "quotatop/limiter.h"

typedef struct qt_backend_gate qt_backend_gate;

typedef struct {
    const qt_config *cfg;        /* must outlive the gate */
    const char *mode;            /* "run" / "serve" */
    qt_events *events;           /* outage / recovery events; may be NULL */
    qt_clock *clock;             /* NULL = system */
    /* A fleet-wide control seen (op as qt_backend_control_fn): the engine
     * applies it to itself. Backend thread. */
    qt_backend_control_fn on_control;
    void *ud;
} qt_backend_gate_opts;

typedef enum {
    QT_GATE_GO = 0,      /* admitted: commit or release the ticket */
    QT_GATE_WAIT,        /* try again after wait_ms (pacing, slots, pause, closed) */
    QT_GATE_BUDGET       /* a fleet budget refuses: reason says which */
} qt_gate_verdict;

typedef enum { QT_GATE_SHARED = 0, QT_GATE_LOCAL_SHARE = 1, QT_GATE_CLOSED = 2 } qt_gate_state;

/* One admitted attempt. A plain value owned by the caller. */
typedef struct {
    int active;
    int shared;                  /* 1: a Redis lease; 0: the fallback's */
    int mi, pi;                  /* the attempt's model and provider (config indices) */
    int64_t est_tokens;
    double est_usd;
    qt_backend_lease lease;      /* lease.workflow: the job's workflow */
    qt_limiter_res lres;
    qt_budget_res bres;
    int has_bres;
} qt_gate_ticket;

/* The gate's word on an attempt. */
typedef struct {
    qt_gate_verdict verdict;
    uint64_t delay_ms;           /* GO: a slot taken ahead comes after this; at its time
                                    call qt_backend_gate_slot, then send */
    uint64_t wait_ms;            /* WAIT: >= 1 */
    int rate;                    /* WAIT: what holds: 0 the model's key, 1 the provider's,
                                    -1 both or unknown (pause, closed, the share) */
    char reason[300];            /* WAIT, BUDGET */
} qt_gate_answer;

/* Runs once per admission. t is the ticket given to qt_backend_gate_admit
 * (active on GO). On the backend's thread, or on the asking thread when the
 * gate decided at once. */
typedef void (*qt_gate_fn)(void *ud, qt_gate_ticket *t, const qt_gate_answer *a);

/* Returns a gate that starts connecting at once, or NULL (*err says why). */
qt_backend_gate *qt_backend_gate_new(const qt_backend_gate_opts *o, char *err, size_t errlen);
/* Leaves the fleet: admissions not yet answered are answered WAIT ("shutting
 * down") at once, later ones likewise, settles are dropped (a closed gate
 * holds nothing; what Redis still holds is swept after the lease). Stops the
 * backend's thread. Idempotent. */
void qt_backend_gate_close(qt_backend_gate *g);
/* Closes (if not yet) and frees. Accepts NULL. */
void qt_backend_gate_free(qt_backend_gate *g);

/* Asks for one attempt of model mi via provider pi (config indices) for
 * workflow with est_tokens (prompt estimate + max_tokens) and est_usd (worst
 * case). Returns at once; cb(ud, t, answer) runs exactly once (maybe before
 * this returns). t must stay valid, and untouched by the caller, until then.
 * Per limited key, while it is tight, one admission at a time goes to Redis
 * (the others wait in the gate for its answer, which says when the key
 * admits next): about one Redis call per admission; while it has room, up
 * to 16 at once. */
void qt_backend_gate_admit(qt_backend_gate *g, int mi, int pi, const char *workflow, int64_t est_tokens,
                           double est_usd, qt_gate_ticket *t, qt_gate_fn cb, void *ud);
/* The slot of a GO with delay_ms has come. GO: send now. Otherwise the
 * fleet was paused meanwhile (WAIT: the lease was given back) or Redis went
 * down (the share decides again: GO with a fallback ticket in *t, WAIT or
 * BUDGET). Never blocks. */
void qt_backend_gate_slot(qt_backend_gate *g, qt_gate_ticket *t, qt_gate_answer *a);
/* The attempt reached the provider: actual tokens charged, actual cost spent. */
void qt_backend_gate_commit(qt_backend_gate *g, qt_gate_ticket *t, int64_t tokens, double usd);
/* It never reached the provider: everything given back. */
void qt_backend_gate_release(qt_backend_gate *g, qt_gate_ticket *t);

/* Fleet control from this process (pause key, workflow pause, limit keys):
 * as qt_backend_control. QT_ERR_BACKEND when Redis is down. */
qt_err qt_backend_gate_control(qt_backend_gate *g, const char *op, const char *arg, const char *what,
                               double value);

/* SHARED, LOCAL_SHARE (Redis down, this process's share) or CLOSED. */
qt_gate_state qt_backend_gate_state(qt_backend_gate *g);
const char *qt_gate_state_name(qt_gate_state s);   /* "shared", "local-share", "closed" */
/* The divisor in force while down (1 when shared). */
int qt_backend_gate_divisor(qt_backend_gate *g);
/* Admissions decided by the fallback since start (the metric). */
uint64_t qt_backend_gate_local_admits(qt_backend_gate *g);
void qt_backend_gate_view(qt_backend_gate *g, qt_backend_view *out);

#endif /* QT_BACKEND_GATE_H */
