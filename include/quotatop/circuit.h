/* circuit.h: per-provider / per-model circuit breaker (CLOSED, OPEN, HALF_OPEN).
 *
 * In the manner of resilience4j: outcomes go into a rolling time window; the
 * breaker opens when the window holds at least failure_threshold failures AND
 * the failure ratio reaches failure_ratio (a dead provider opens at once, one
 * with 20% random errors keeps serving). After a cooldown it lets at most
 * half_open_max probes through: the first verdict closes it (success) or opens
 * it again with the cooldown doubled up to cooldown_max_ms (failure).
 *
 * Admission hands out a permit; its outcome is recorded with that permit, so
 * a straggler admitted before the breaker opened cannot count as a probe, and
 * a probe slot is released exactly once. Every function that may change the
 * state takes a qt_circuit_transition out-parameter (required, non-NULL) and
 * reports the change there, so no transition can be lost.
 *
 * Pure policy: time comes in as now_ms (monotonic milliseconds; time that goes
 * backwards is taken as the latest time seen); no I/O, no clock reads.
 *
 * Thread-safety: not thread-safe; the engine serialises all calls on one
 * breaker. qt_circuit_state_name and qt_circuit_params_default are safe from
 * any thread.
 */
#ifndef QT_CIRCUIT_H
#define QT_CIRCUIT_H

#include <stdint.h>

typedef struct qt_circuit qt_circuit;

typedef enum {
    QT_CIRCUIT_CLOSED = 0,     /* requests flow; outcomes are counted */
    QT_CIRCUIT_OPEN,           /* everything refused until the cooldown ends */
    QT_CIRCUIT_HALF_OPEN,      /* at most half_open_max probes in flight */
} qt_circuit_status;

typedef enum {
    QT_CIRCUIT_SUCCESS = 0,    /* the upstream answered (2xx, or a 4xx that is the request's fault) */
    QT_CIRCUIT_FAILURE,        /* timeout, connection error, 5xx, 529 */
    QT_CIRCUIT_IGNORED,        /* no verdict: 429, cancelled before completion;
                                  releases a probe slot, counts nothing */
} qt_circuit_outcome;

/* Defaults (they match config.h). */
#define QT_CIRCUIT_DEFAULT_FAILURE_THRESHOLD  5
#define QT_CIRCUIT_DEFAULT_FAILURE_RATIO      0.5
#define QT_CIRCUIT_DEFAULT_WINDOW_MS          10000
#define QT_CIRCUIT_DEFAULT_COOLDOWN_MS        30000
#define QT_CIRCUIT_DEFAULT_COOLDOWN_MAX_MS    300000
#define QT_CIRCUIT_DEFAULT_HALF_OPEN_MAX      1

/* The number of time buckets the window is kept in: the window spans
 * window_ms to within one bucket (window_ms / QT_CIRCUIT_BUCKETS). */
#define QT_CIRCUIT_BUCKETS 10

/* "No time-based answer" for qt_circuit_next_probe_ms. */
#define QT_CIRCUIT_NEVER UINT64_MAX

typedef struct {
    int failure_threshold;     /* >= 1: failures in the window needed to open */
    double failure_ratio;      /* [0, 1]: failures / (failures + successes) needed to open */
    uint64_t window_ms;        /* > 0: span of the rolling window */
    uint64_t cooldown_ms;      /* > 0: first OPEN period */
    uint64_t cooldown_max_ms;  /* cap of the doubled cooldown; below cooldown_ms means cooldown_ms */
    int half_open_max;         /* >= 1: concurrent probes in HALF_OPEN */
} qt_circuit_params;

/* A ticket from qt_circuit_allow, handed back to qt_circuit_record. */
typedef struct {
    uint64_t gen;              /* breaker generation at admission; 0 = spent / none */
    int probe;                 /* 1: holds a HALF_OPEN probe slot */
} qt_circuit_permit;

/* One state change. `changed` is 0 when nothing happened (other fields then
 * unspecified). */
typedef struct {
    int changed;
    qt_circuit_status from, to;
    uint64_t at_ms;            /* now_ms of the call that made it */
    uint64_t cooldown_ms;      /* to == OPEN: the cooldown now running; else 0 */
    char reason[80];           /* "5 failures of 6 in 10s", "cooldown elapsed",
                                  "probe succeeded", "probe failed, cooldown 60s" */
} qt_circuit_transition;

/* A copy of the breaker's state for the dashboard. */
typedef struct {
    qt_circuit_status state;   /* as qt_circuit_state() */
    int64_t failures, successes; /* in the window (CLOSED), else 0 */
    uint64_t cooldown_ms;      /* the cooldown of the current / next OPEN period */
    uint64_t next_probe_ms;    /* as qt_circuit_next_probe_ms() */
    int probes_in_flight;      /* HALF_OPEN only */
} qt_circuit_snapshot;

/* Returns the defaults above. */
qt_circuit_params qt_circuit_params_default(void);

/* Creates a CLOSED breaker with an empty window. p is copied. Returns NULL when
 * p is NULL or a field is out of range (see qt_circuit_params) or on
 * allocation failure. The caller owns it; free with qt_circuit_free(). */
qt_circuit *qt_circuit_new(const qt_circuit_params *p);

/* Frees c. NULL is a no-op. Outstanding permits simply become meaningless. */
void qt_circuit_free(qt_circuit *c);

/* Asks to send one request at now_ms. Returns 1 and fills *permit when
 * admitted: always when CLOSED; in HALF_OPEN when a probe slot is free (the
 * permit holds it). An OPEN breaker whose cooldown has passed first moves to
 * HALF_OPEN (reported in *tr) and then admits a probe. Returns 0 when refused
 * (*permit gets gen 0). *tr->changed says whether a transition happened.
 * Returns 0 without side effects when c, permit or tr is NULL. */
int qt_circuit_allow(qt_circuit *c, uint64_t now_ms, qt_circuit_permit *permit,
                     qt_circuit_transition *tr);

/* Returns 1 when qt_circuit_allow(c, now_ms, ...) would admit, else 0. No side
 * effects (the router asks this of every candidate before choosing one). */
int qt_circuit_peek(const qt_circuit *c, uint64_t now_ms);

/* Records the outcome of the request admitted with *permit, then spends the
 * permit (gen = 0; recording it again does nothing).
 *   CLOSED, permit of this generation: SUCCESS / FAILURE go into the window; a
 *     FAILURE that brings failures >= threshold and ratio >= failure_ratio
 *     opens the breaker with the base cooldown.
 *   HALF_OPEN, probe permit of this generation: SUCCESS closes (window reset,
 *     cooldown back to base); FAILURE opens with the cooldown doubled (capped);
 *     IGNORED releases the slot.
 *   A permit from an earlier generation (admitted before the last transition)
 *     is a straggler: it counts nothing and changes nothing.
 * Returns 1 when a transition happened (filled in *tr), 0 when not
 * (tr->changed = 0), -1 when c, permit or tr is NULL (nothing recorded). */
int qt_circuit_record(qt_circuit *c, qt_circuit_permit *permit, qt_circuit_outcome outcome,
                      uint64_t now_ms, qt_circuit_transition *tr);

/* Returns the state allow() would act in at now_ms: an OPEN breaker whose
 * cooldown has passed reads HALF_OPEN (the move itself happens, and is
 * reported, on the next allow()). No side effects. */
qt_circuit_status qt_circuit_state(const qt_circuit *c, uint64_t now_ms);

/* Returns the earliest absolute time (ms) a request may be admitted:
 * now_ms when CLOSED or when a probe slot is free (including an OPEN breaker
 * past its cooldown); the end of the cooldown when OPEN; QT_CIRCUIT_NEVER when
 * HALF_OPEN with every slot taken (wait for a probe's outcome instead).
 * No side effects. */
uint64_t qt_circuit_next_probe_ms(const qt_circuit *c, uint64_t now_ms);

/* Fills *out with a copy of the state at now_ms. No side effects. */
void qt_circuit_snapshot_get(const qt_circuit *c, uint64_t now_ms, qt_circuit_snapshot *out);

/* Static name: "closed", "open", "half_open". Never NULL. */
const char *qt_circuit_state_name(qt_circuit_status s);

#endif /* QT_CIRCUIT_H */
