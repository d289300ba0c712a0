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
 * INTERIM (threaded engine): qt_backend_gate_admit blocks the calling
 * worker for at most backend.timeout_ms while the backend's own loop thread
 * talks to Redis (backend_runner.c). When the engine runs on a qt_loop it
 * calls qt_backend_admit on its loop instead.
 *
 * Thread-safety: every function may be called from any thread (the
 * fallback limiter and budget sit behind the gate's mutex; nothing blocks
 * while holding it). Callbacks (on_control) run on the backend's thread.
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
    QT_GATE_WAIT,        /* try again after *wait_ms (pacing, slots, pause, closed) */
    QT_GATE_BUDGET       /* a fleet budget refuses: *reason says which */
} qt_gate_verdict;

typedef enum { QT_GATE_SHARED = 0, QT_GATE_LOCAL_SHARE = 1, QT_GATE_CLOSED = 2 } qt_gate_state;

/* One admitted attempt. A plain value owned by the caller. */
typedef struct {
    int active;
    int shared;                  /* 1: a Redis lease; 0: the fallback's */
    qt_backend_lease lease;
    qt_limiter_res lres;
    qt_budget_res bres;
    int has_bres;
} qt_gate_ticket;

/* Returns a gate that starts connecting at once, or NULL (*err says why). */
qt_backend_gate *qt_backend_gate_new(const qt_backend_gate_opts *o, char *err, size_t errlen);
/* Leaves the fleet and frees. Accepts NULL. */
void qt_backend_gate_free(qt_backend_gate *g);

/* Decides one attempt of model mi via provider pi (config indices) for
 * workflow with est_tokens (prompt estimate + max_tokens) and est_usd (worst
 * case). GO fills *t. WAIT sets *wait_ms (>= 1). BUDGET writes reason.
 * Blocks for at most backend.timeout_ms (INTERIM, see above). */
qt_gate_verdict qt_backend_gate_admit(qt_backend_gate *g, int mi, int pi, const char *workflow,
                                      int64_t est_tokens, double est_usd, qt_gate_ticket *t,
                                      uint64_t *wait_ms, char *reason, size_t reason_len);
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
