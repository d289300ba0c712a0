/* budget.h: cost of a call, and per-run / per-day / per-workflow spend limits
 * with reservations of the worst-case cost.
 *
 * A request reserves its estimated worst-case cost (estimated prompt +
 * max_tokens at the model's prices) before it is sent; outstanding
 * reservations count against every limit that applies (run, UTC day,
 * workflow), and a reservation is refused unless
 *     spent + reserved + estimate <= limit
 * for all of them. So however many workers race, committed spend never
 * exceeds a limit as long as each actual cost is at most its estimate (a
 * larger actual is recorded as spent - money already gone - and the limit
 * then refuses everything after it). Money is kept in integer nano-USD:
 * no drift from summing doubles; estimates round up, actuals to nearest.
 *
 * Events (warn once per limit when committed spend reaches warn_ratio of it;
 * exhausted once per limit when it first refuses a request) are reported as
 * flags through an out-parameter for the engine to publish: no callbacks.
 * The day is the UTC day of the wall-clock ms passed in; on a new day the
 * day's spend restarts at its seeded prior spend (0 by default), its warn and
 * exhausted events re-arm, and outstanding reservations carry over (they will
 * be committed on the new day).
 *
 * Thread-safety: not thread-safe; the engine serialises all calls. Pure
 * policy: no I/O, no clock reads, no globals.
 */
#ifndef QT_BUDGET_H
#define QT_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"
#include "quotatop/config.h"   /* qt_on_exhausted */

typedef struct qt_budget qt_budget;

/* Event flags (OR-ed into *events). */
#define QT_BUDGET_EV_WARN_RUN            0x01u
#define QT_BUDGET_EV_WARN_DAY            0x02u
#define QT_BUDGET_EV_WARN_WORKFLOW       0x04u
#define QT_BUDGET_EV_EXHAUSTED_RUN       0x10u
#define QT_BUDGET_EV_EXHAUSTED_DAY       0x20u
#define QT_BUDGET_EV_EXHAUSTED_WORKFLOW  0x40u

#define QT_BUDGET_DEFAULT_WORKFLOW "default"   /* used for a NULL workflow */

/* A reservation: a plain value owned by the caller; fields are private. */
typedef struct {
    int active;          /* 1 between reserve and commit/release */
    int wf;              /* workflow index */
    int64_t est_nusd;    /* reserved amount, nano-USD */
} qt_budget_res;

typedef struct {
    const char *name;          /* owned by the budget, valid until qt_budget_free */
    double limit_usd;          /* 0 = unlimited */
    double spent_usd, reserved_usd;
    uint64_t calls;            /* commits */
    uint64_t prompt_tokens, completion_tokens;
    uint64_t refused;          /* reservations refused (any limit) */
    int warned;                /* its warn event has fired */
} qt_budget_wf_snap;

typedef struct {
    double run_limit_usd, run_spent_usd, run_reserved_usd;
    double day_limit_usd, day_spent_usd, day_reserved_usd;
    uint64_t day;              /* UTC day number (wall ms / 86400000) */
    double warn_ratio;
    qt_on_exhausted on_exhausted;
    uint64_t outstanding;      /* reservations not yet committed/released */
    qt_budget_wf_snap *workflows;  /* n_workflows entries, caller frees with qt_budget_snap_free */
    size_t n_workflows;
} qt_budget_snap;

/* Cost in USD of a call: prices per million tokens times tokens. Negative or
 * non-finite inputs count as 0. */
double qt_budget_cost(double in_usd_per_mtok, double out_usd_per_mtok,
                      int64_t prompt_tokens, int64_t completion_tokens);

/* Returns a new budget (limits in USD, 0 = unlimited; warn_ratio in (0, 1],
 * values outside it disable warnings), or NULL when out of memory or when a
 * limit is negative or not finite. Free with qt_budget_free. */
qt_budget *qt_budget_new(double run_usd, double day_usd, double warn_ratio,
                         qt_on_exhausted on_exhausted);

void qt_budget_free(qt_budget *b);   /* accepts NULL */

qt_on_exhausted qt_budget_on_exhausted(const qt_budget *b);

/* Sets (or changes) a workflow's limit in USD, 0 = unlimited. The name is
 * copied. QT_ERR_INVALID for a bad limit or NULL name, QT_ERR_NOMEM (budget
 * unaltered). */
qt_err qt_budget_set_workflow(qt_budget *b, const char *name, double usd);

/* Seeds spend already recorded (by the ledger) for the UTC day containing
 * wall_ms. If that day is the current one (or later: the budget moves to
 * it) the amount is added to its spend; a past day is ignored and
 * QT_ERR_INVALID returned. Not run spend. */
qt_err qt_budget_add_prior_day_spend(qt_budget *b, uint64_t wall_ms, double usd);

/* Reserves est_usd for one call of workflow (NULL = "default"; unknown
 * workflows are created unlimited) at wall-clock wall_ms.
 * QT_OK: *res holds the reservation. QT_ERR_LIMIT: nothing reserved;
 * reason (if not NULL) receives e.g. "run budget $1.00 exhausted: spent
 * $0.98 + reserved $0.01 + this request $0.02 > $1.00", naming the first
 * limit that refuses (run, then day, then workflow), and the exhausted event
 * of that limit is OR-ed into *events the first time it refuses.
 * QT_ERR_INVALID for a negative or non-finite estimate or NULL res;
 * QT_ERR_NOMEM when a new workflow cannot be stored. events may be NULL; it
 * is only OR-ed into, never cleared. */
qt_err qt_budget_reserve(qt_budget *b, const char *workflow, double est_usd,
                         uint64_t wall_ms, qt_budget_res *res,
                         char *reason, size_t reason_len, unsigned *events);

/* The call completed at wall_ms and cost actual_usd (prompt and completion
 * tokens recorded for the workflow). Moves the reservation into spend (a
 * larger actual is spent all the same) and ORs warn events of limits whose
 * committed spend reaches warn_ratio for the first time. Marks *res inactive.
 * QT_ERR_INVALID (nothing changed) when *res is not active or actual_usd is
 * negative or not finite. */
qt_err qt_budget_commit(qt_budget *b, qt_budget_res *res, double actual_usd,
                        int64_t prompt_tokens, int64_t completion_tokens,
                        uint64_t wall_ms, unsigned *events);

/* The call never went out: its reservation is returned whole. QT_ERR_INVALID
 * when *res is not active. */
qt_err qt_budget_release(qt_budget *b, qt_budget_res *res, uint64_t wall_ms);

/* 1 when a reservation of est_usd for workflow would succeed at wall_ms,
 * else 0 (for the router's downgrade: try a cheaper model). No side effects. */
int qt_budget_fits(const qt_budget *b, const char *workflow, double est_usd,
                   uint64_t wall_ms);

/* Fills *snap with a copy of the state as of wall_ms (the day rolls over in
 * the view, not in the budget). QT_ERR_NOMEM (snap zeroed) or QT_OK; free the
 * workflow array with qt_budget_snap_free. */
qt_err qt_budget_snapshot(const qt_budget *b, uint64_t wall_ms, qt_budget_snap *snap);

void qt_budget_snap_free(qt_budget_snap *snap);   /* frees the array; accepts NULL */

#endif /* QT_BUDGET_H */
