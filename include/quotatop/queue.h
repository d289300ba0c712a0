/* queue.h: the job queue: priorities 1..10, FIFO within a priority, aging,
 * cancel / reprioritize by id, pause (all, per workflow), close, drain.
 *
 * Ordering. Every entry has a fixed sort key
 *     key = priority * aging_ms + enqueue_ms     (aging_ms > 0)
 *     key = priority                             (aging_ms == 0: aging off)
 * and a global push sequence number; the entry with the smallest (key, seq)
 * pops first. Because the key does not depend on the current time, the order
 * of waiting entries never changes as time passes: no rescans, O(log n).
 * Meaning: a job of priority p pushed at t ranks exactly like a job of
 * priority p-k pushed at t + k*aging_ms. So a job that has waited k*aging_ms
 * is ahead of every job of priority >= p-k pushed from that moment on (the
 * tie at exactly k*aging_ms goes to the older job, by FIFO), and behind a job
 * of priority p-k pushed any earlier than that. Against newly pushed jobs this
 * is exactly "one level every aging_ms", with no clamp at priority 1: a
 * priority-10 job pushed at t overtakes every priority-1 job pushed at or after
 * t + 9*aging_ms. qt_queue_effective_priority() shows the same level for the
 * dashboard: max(1, priority - floor(waited / aging_ms)).
 * FIFO within a priority: enqueue times are clamped to be non-decreasing in
 * push order (a caller whose now_ms lags another thread's is treated as "now"),
 * so equal priorities always pop in push order.
 * Reprioritize keeps the entry's enqueue time and sequence number: the job keeps
 * the aging it earned and its FIFO place among jobs of its new priority.
 *
 * Pause. Entries of a paused workflow stay queued and keep their place; pop
 * skips them in O(log n) whatever the size of the paused backlog (see
 * Complexity). Global pause makes pop return nothing without touching entries.
 *
 * Complexity (n entries, W workflows with entries): push, pop, cancel,
 * reprioritize O(log n + log W); pause/resume of a workflow O(log W); pause/
 * resume all O(1); snapshot of the first N O(N log N) (+ O(W) when paused
 * workflows are included); counts O(1) / O(W); drain O(1) per entry. Memory:
 * about 80 bytes per queued job when the id is under 16 bytes (plus the id's
 * length + malloc overhead when longer); bench/bench_queue measures it.
 *
 * Thread-safety: none. The queue is a pure structure (src/policy/): it takes
 * no locks and reads no clock; its owner (the engine, under its one mutex)
 * serialises every call.
 */
#ifndef QT_QUEUE_H
#define QT_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"

typedef struct qt_queue qt_queue;

#define QT_QUEUE_PRIO_MIN 1          /* most urgent */
#define QT_QUEUE_PRIO_MAX 10         /* least urgent */
#define QT_QUEUE_PRIO_LEVELS 10
#define QT_QUEUE_AGING_MAX_MS 1000000000000ULL /* larger aging_ms is refused */

#define QT_QUEUE_ID_LEN 48           /* sizes of the copies in qt_queue_view */
#define QT_QUEUE_NAME_LEN 32

/* What push takes. Strings are copied; payload is the caller's and is handed
 * back by pop / cancel / drain, never freed or dereferenced by the queue. */
typedef struct {
    const char *id;         /* unique among queued jobs; required, non-empty */
    const char *workflow;   /* NULL or "" = "default" */
    const char *model;      /* NULL ok; shown by the dashboard */
    int priority;           /* QT_QUEUE_PRIO_MIN..QT_QUEUE_PRIO_MAX */
    uint32_t est_tokens;    /* estimated tokens, shown by the dashboard */
    void *payload;          /* caller-owned */
    /* keep_place 1: a job that left the queue comes back at the place it had
     * (keep_enqueue_ms and keep_seq from its view when it was popped), so it
     * keeps its aging and FIFO rank; the FIFO clamp does not apply, and a
     * closed queue still takes it back (it is not new intake). */
    int keep_place;
    uint64_t keep_enqueue_ms, keep_seq;
} qt_queue_job;

/* A copy of one entry, for the dashboard and for pop's caller. Strings longer
 * than the arrays are truncated (always NUL-terminated). */
typedef struct {
    char id[QT_QUEUE_ID_LEN];
    char workflow[QT_QUEUE_NAME_LEN];
    char model[QT_QUEUE_NAME_LEN];
    int priority;           /* base priority as pushed / reprioritized */
    int effective_priority; /* after aging at the snapshot's now_ms; pop sets
                               it equal to priority (pop takes no time) */
    int paused;             /* 1 when its workflow is paused (snapshot only) */
    uint64_t enqueue_ms;    /* enqueue time (after the FIFO clamp) */
    uint32_t est_tokens;
    uint64_t seq;           /* FIFO number (for keep_place) */
    void *payload;          /* the entry's payload (not to be freed by the reader) */
} qt_queue_view;

/* Counts of queued entries. */
typedef struct {
    size_t total;                              /* every queued entry */
    size_t ready;                              /* in workflows not paused */
    size_t by_priority[QT_QUEUE_PRIO_LEVELS];  /* [p-1]: base priority p */
    int paused_all;                            /* 1 while globally paused */
    int closed;                                /* 1 once closed */
} qt_queue_counts;

/* Per-workflow counts (every workflow the queue has seen, even when empty). */
typedef struct {
    char name[QT_QUEUE_NAME_LEN];
    size_t count;
    int paused;
} qt_queue_workflow_count;

/* Returns a new empty queue, or NULL when out of memory or aging_ms >
 * QT_QUEUE_AGING_MAX_MS. aging_ms = 0 turns aging off. The caller frees it
 * with qt_queue_free. */
qt_queue *qt_queue_new(uint64_t aging_ms);

/* Frees the queue and its copies of ids and names. Payloads still queued are
 * NOT freed (drain them first). Accepts NULL. */
void qt_queue_free(qt_queue *q);

/* Adds a job enqueued at now_ms. Returns QT_OK; QT_ERR_INVALID when id is
 * NULL/empty, priority is out of range or the id is already queued;
 * QT_ERR_CLOSED after qt_queue_close; QT_ERR_LIMIT past 2^32-2 entries or
 * 65535 distinct model names; QT_ERR_NOMEM. On error the queue is unaltered
 * and the payload stays the caller's (keep_place: see qt_queue_job). */
qt_err qt_queue_push(qt_queue *q, const qt_queue_job *job, uint64_t now_ms);

/* Removes the entry that pops first: smallest (key, seq) among workflows not
 * paused. Stores its payload in *payload (ownership returns to the caller) and,
 * when view is not NULL, a copy of it in *view. Returns QT_OK; QT_ERR_NOTFOUND
 * when nothing is ready (empty, globally paused, or every entry paused) and
 * the queue is open; QT_ERR_CLOSED when closed and nothing is ready (paused
 * leftovers stay queued for qt_queue_drain). Close does not stop pop: after
 * close, pop keeps returning the ready entries (so workers can finish or
 * write results for them), unless the queue is globally paused. */
qt_err qt_queue_pop(qt_queue *q, void **payload, qt_queue_view *view);

/* Removes the entry with this id (paused or not). Stores its payload in
 * *payload (may be NULL to discard it) so the caller can write a `cancelled`
 * result. Returns QT_OK or QT_ERR_NOTFOUND. */
qt_err qt_queue_cancel(qt_queue *q, const char *id, void **payload);

/* Changes the base priority of a queued entry (see Ordering: enqueue time and
 * FIFO place are kept). Returns QT_OK, QT_ERR_NOTFOUND, or QT_ERR_INVALID when
 * the priority is out of range. */
qt_err qt_queue_reprioritize(qt_queue *q, const char *id, int priority);

/* Returns the base priority of a queued entry, or 0 when there is none. */
int qt_queue_priority_of(qt_queue *q, const char *id);

/* Global pause / resume: while paused, pop returns nothing; push, cancel,
 * reprioritize still work. Idempotent. */
void qt_queue_pause_all(qt_queue *q);
void qt_queue_resume_all(qt_queue *q);

/* Pauses / resumes one workflow (its entries stay queued in order; other
 * workflows keep flowing). Pausing a workflow that has no entries yet is
 * remembered for its future jobs. Returns QT_OK, or
 * QT_ERR_NOMEM / QT_ERR_INVALID (NULL name). Resuming an unknown workflow is
 * QT_OK (nothing to do). Idempotent. */
qt_err qt_queue_pause_workflow(qt_queue *q, const char *workflow);
qt_err qt_queue_resume_workflow(qt_queue *q, const char *workflow);

/* Returns 1 when that workflow is paused, else 0 (global pause aside). */
int qt_queue_workflow_paused(qt_queue *q, const char *workflow);

/* Closes the queue: later pushes of new jobs fail with QT_ERR_CLOSED (pop
 * keeps returning what is ready). Idempotent. */
void qt_queue_close(qt_queue *q);

/* Removes up to max entries (paused or not, in no particular order), storing
 * their payloads in payloads[] and, when views is not NULL, their copies in
 * views[]. Returns how many were removed; call until it returns 0. For
 * shutdown: the caller writes a result for each payload and frees it. */
size_t qt_queue_drain(qt_queue *q, void **payloads, qt_queue_view *views,
                      size_t max);

/* Fills *out with the counts. */
void qt_queue_counts_get(qt_queue *q, qt_queue_counts *out);

/* Copies up to max per-workflow counts into out (in order of first
 * appearance). Returns the number of workflows known (may exceed max). */
size_t qt_queue_workflow_counts(qt_queue *q, qt_queue_workflow_count *out,
                                size_t max);

/* Copies the first max entries in pop order into out and returns how many
 * were copied. The order ignores the global pause (it is the order pop will
 * use once resumed). Entries of paused workflows are left out unless
 * include_paused is 1, in which case they are merged in at the place they
 * would have if their workflow were resumed, with view.paused = 1.
 * effective_priority is computed at now_ms. Returns 0 when out of memory
 * (needs O(max) scratch). */
size_t qt_queue_snapshot(qt_queue *q, uint64_t now_ms, int include_paused,
                         qt_queue_view *out, size_t max);

/* Removes the first entry, in pop order among the first `window` ready
 * entries, that accept(ud, view) accepts (the view is filled as by
 * qt_queue_snapshot at now_ms). For a scheduler that skips jobs which cannot
 * go yet (their model is at its limit) without losing their place. Returns
 * QT_OK with *payload (and *view when not NULL); QT_ERR_LIMIT when none of the
 * window was accepted; QT_ERR_NOTFOUND / QT_ERR_CLOSED as qt_queue_pop when
 * nothing is ready; QT_ERR_INVALID for a NULL accept or a zero window;
 * QT_ERR_NOMEM. O(window log window + log n). accept must not call back into
 * the queue. */
qt_err qt_queue_pop_first(qt_queue *q, uint64_t now_ms, size_t window,
                          int (*accept)(void *ud, const qt_queue_view *v), void *ud,
                          void **payload, qt_queue_view *view);

/* Aging shown as a level: max(1, priority - floor((now_ms - enqueue_ms) /
 * aging_ms)), or priority when aging is off or now_ms <= enqueue_ms. Pure;
 * takes no lock. */
int qt_queue_effective_priority(uint64_t aging_ms, int priority,
                                uint64_t enqueue_ms, uint64_t now_ms);

#endif /* QT_QUEUE_H */
