/* events.h: a bounded ring of timestamped events (retries, 429s, fallbacks,
 * circuit transitions, budget warnings, limit changes, pause, cancel...).
 *
 * Writers fill a qt_event on their own stack (qt_event_init, the subject and
 * message helpers: no lock, formatting happens here) and append it with
 * qt_events_add, which copies it into the ring under a short mutex and gives
 * it the next sequence number (1, 2, 3...). When the ring is full the oldest
 * event is overwritten. Readers copy out the newest N, or everything after a
 * sequence number they have already seen, under the same mutex: O(N) memcpy,
 * no allocation, no formatting while holding it.
 *
 * Thread-safety: every qt_events_* function may be called from any thread
 * (one internal mutex, held only to copy events in or out). qt_event_* helpers
 * touch only the event passed in. qt_events_new/free are not concurrent with
 * other calls on the same ring.
 */
#ifndef QT_EVENTS_H
#define QT_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"

typedef struct qt_events qt_events;

typedef enum {
    QT_EV_INFO = 0,
    QT_EV_RETRY,            /* reason, wait_ms, attempt */
    QT_EV_RATE_LIMITED,     /* an upstream 429: http_status, wait_ms (Retry-After) */
    QT_EV_FALLBACK,         /* from -> to (models), reason */
    QT_EV_CIRCUIT,          /* from -> to (states), reason */
    QT_EV_BUDGET_WARN,      /* value = spend, limit = the limit crossed */
    QT_EV_BUDGET_EXHAUSTED, /* value, limit */
    QT_EV_LIMIT_CHANGE,     /* from -> to (old / new limit text), reason */
    QT_EV_PAUSE,
    QT_EV_RESUME,
    QT_EV_CANCEL,
    QT_EV_CACHE_HIT,
    QT_EV_ERROR,            /* a request or job failed for good */
    QT_EV__COUNT
} qt_event_type;

#define QT_EVENT_SUBJECT_LEN 40  /* model, provider, workflow, job_id, from, to */
#define QT_EVENT_REASON_LEN 48
#define QT_EVENT_MSG_LEN 160

/* One event. Plain data: copy it freely. Strings are NUL-terminated and
 * truncated to their arrays; empty when not applicable. */
typedef struct {
    uint64_t seq;           /* set by qt_events_add: 1, 2, 3... */
    uint64_t wall_ms;       /* wall clock (Unix epoch ms), for display */
    uint64_t mono_ms;       /* monotonic ms, for ordering and ages */
    qt_event_type type;
    int http_status;        /* RATE_LIMITED / RETRY / ERROR: status, 0 = none */
    int attempt;            /* RETRY: attempt number that failed */
    uint64_t wait_ms;       /* RETRY / RATE_LIMITED: how long the request waits */
    double value;           /* BUDGET_*: spend in USD; LIMIT_CHANGE: new value */
    double limit;           /* BUDGET_*: the limit in USD; LIMIT_CHANGE: old */
    char model[QT_EVENT_SUBJECT_LEN];
    char provider[QT_EVENT_SUBJECT_LEN];
    char workflow[QT_EVENT_SUBJECT_LEN];
    char job_id[QT_EVENT_SUBJECT_LEN];
    char from[QT_EVENT_SUBJECT_LEN];     /* FALLBACK model, CIRCUIT state, ... */
    char to[QT_EVENT_SUBJECT_LEN];
    char reason[QT_EVENT_REASON_LEN];
    char msg[QT_EVENT_MSG_LEN];          /* human-readable one-liner */
} qt_event;

/* Returns a ring holding the newest `capacity` events (capacity 0 means 1024),
 * or NULL when out of memory. Free with qt_events_free. */
qt_events *qt_events_new(size_t capacity);

/* Frees the ring. Accepts NULL. */
void qt_events_free(qt_events *e);

/* Zeroes *ev and sets its type and times. No lock. */
void qt_event_init(qt_event *ev, qt_event_type type, uint64_t mono_ms,
                   uint64_t wall_ms);

/* Copies the subject strings (NULL leaves a field unchanged). No lock. */
void qt_event_subject(qt_event *ev, const char *model, const char *provider,
                      const char *workflow, const char *job_id);

/* Copies from / to / reason (NULL leaves a field unchanged). No lock. */
void qt_event_transition(qt_event *ev, const char *from, const char *to,
                         const char *reason);

/* Formats ev->msg printf-style (truncated to QT_EVENT_MSG_LEN-1). No lock. */
void qt_event_msgf(qt_event *ev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends a copy of *ev (its seq is ignored), overwriting the oldest event
 * when full. Returns the sequence number given to it (>= 1), or 0 when e or
 * ev is NULL or the type is out of range. Locks briefly. */
uint64_t qt_events_add(qt_events *e, const qt_event *ev);

/* Convenience: init + subject + message + add in one call (no from/to).
 * Returns the sequence number as qt_events_add. */
uint64_t qt_events_addf(qt_events *e, qt_event_type type, uint64_t mono_ms,
                        uint64_t wall_ms, const char *model, const char *workflow,
                        const char *job_id, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Copies the newest min(n, held) events into out[], oldest first (out[k-1] is
 * the newest). Returns k. Locks for the copy. */
size_t qt_events_latest(qt_events *e, qt_event *out, size_t n);

/* Copies, oldest first, up to n events with seq > since_seq into out[] and
 * returns how many. Pass the last seq you received to read on (0 at first).
 * When events after since_seq were already overwritten, *dropped (if not
 * NULL) receives how many were lost; else 0. Locks for the copy. */
size_t qt_events_since(qt_events *e, uint64_t since_seq, qt_event *out,
                       size_t n, uint64_t *dropped);

/* Sequence number of the newest event (0 when none yet). Locks. */
uint64_t qt_events_last_seq(qt_events *e);

/* Events appended per type since creation (not only those still held):
 * counts[t] for t < QT_EV__COUNT. Locks. */
void qt_events_counts(qt_events *e, uint64_t counts[QT_EV__COUNT]);

/* Number of events the ring holds at most. No lock (fixed at creation). */
size_t qt_events_capacity(const qt_events *e);

/* Static lower-case name of a type ("retry", "rate_limited", ...); "unknown"
 * when out of range. Never NULL. */
const char *qt_event_type_name(qt_event_type type);

#endif /* QT_EVENTS_H */
