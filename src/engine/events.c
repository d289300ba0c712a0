/* events.c: the bounded event ring.
 *
 * DESIGN
 * A fixed array of `cap` events and a running sequence counter `last_seq`.
 * Event with seq s lives in slot (s - 1) % cap; the ring holds seqs
 * (last_seq - held, last_seq] where held = min(last_seq, cap). So appending
 * is one memcpy into slot last_seq % cap, and "everything since S" is a
 * contiguous (wrapping) range of slots computed from S without a search.
 * One mutex guards the array, the counter and the per-type counts; writers
 * prepare events (formatting included) before taking it, readers copy out
 * under it into their own buffer. Nothing allocates or formats under the lock.
 */
#include "quotatop/events.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qt_events {
    pthread_mutex_t mu;
    qt_event *ring;                  /* cap slots */
    size_t cap;
    uint64_t last_seq;               /* seq of the newest event; 0 = none */
    uint64_t counts[QT_EV__COUNT];   /* appended per type, ever */
};

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

qt_events *qt_events_new(size_t capacity)
{
    if (capacity == 0)
        capacity = 1024;
    qt_events *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->ring = calloc(capacity, sizeof *e->ring);
    if (!e->ring || pthread_mutex_init(&e->mu, NULL) != 0) {
        free(e->ring);
        free(e);
        return NULL;
    }
    e->cap = capacity;
    return e;
}

void qt_events_free(qt_events *e)
{
    if (!e)
        return;
    pthread_mutex_destroy(&e->mu);
    free(e->ring);
    free(e);
}

void qt_event_init(qt_event *ev, qt_event_type type, uint64_t mono_ms,
                   uint64_t wall_ms)
{
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    ev->mono_ms = mono_ms;
    ev->wall_ms = wall_ms;
}

void qt_event_subject(qt_event *ev, const char *model, const char *provider,
                      const char *workflow, const char *job_id)
{
    if (model)
        copy_str(ev->model, sizeof ev->model, model);
    if (provider)
        copy_str(ev->provider, sizeof ev->provider, provider);
    if (workflow)
        copy_str(ev->workflow, sizeof ev->workflow, workflow);
    if (job_id)
        copy_str(ev->job_id, sizeof ev->job_id, job_id);
}

void qt_event_transition(qt_event *ev, const char *from, const char *to,
                         const char *reason)
{
    if (from)
        copy_str(ev->from, sizeof ev->from, from);
    if (to)
        copy_str(ev->to, sizeof ev->to, to);
    if (reason)
        copy_str(ev->reason, sizeof ev->reason, reason);
}

void qt_event_msgf(qt_event *ev, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->msg, sizeof ev->msg, fmt, ap);
    va_end(ap);
}

uint64_t qt_events_add(qt_events *e, const qt_event *ev)
{
    if (!e || !ev || (unsigned)ev->type >= QT_EV__COUNT)
        return 0;
    pthread_mutex_lock(&e->mu);
    uint64_t seq = ++e->last_seq;
    qt_event *slot = &e->ring[(seq - 1) % e->cap];
    *slot = *ev;
    slot->seq = seq;
    e->counts[ev->type]++;
    pthread_mutex_unlock(&e->mu);
    return seq;
}

uint64_t qt_events_addf(qt_events *e, qt_event_type type, uint64_t mono_ms,
                        uint64_t wall_ms, const char *model, const char *workflow,
                        const char *job_id, const char *fmt, ...)
{
    qt_event ev;
    qt_event_init(&ev, type, mono_ms, wall_ms);
    qt_event_subject(&ev, model, NULL, workflow, job_id);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ev.msg, sizeof ev.msg, fmt, ap);
        va_end(ap);
    }
    return qt_events_add(e, &ev);
}

/* Copies seqs [first, first + k) into out; caller holds the lock and has
 * checked they are all held. At most two memcpys (the ring may wrap). */
static void copy_range(const qt_events *e, uint64_t first, size_t k, qt_event *out)
{
    size_t start = (size_t)((first - 1) % e->cap);
    size_t n1 = e->cap - start < k ? e->cap - start : k;
    memcpy(out, &e->ring[start], n1 * sizeof *out);
    if (k > n1)
        memcpy(out + n1, &e->ring[0], (k - n1) * sizeof *out);
}

size_t qt_events_latest(qt_events *e, qt_event *out, size_t n)
{
    if (!e || !out || n == 0)
        return 0;
    pthread_mutex_lock(&e->mu);
    uint64_t held = e->last_seq < e->cap ? e->last_seq : e->cap;
    size_t k = held < n ? (size_t)held : n;
    if (k > 0)
        copy_range(e, e->last_seq - k + 1, k, out);
    pthread_mutex_unlock(&e->mu);
    return k;
}

size_t qt_events_since(qt_events *e, uint64_t since_seq, qt_event *out,
                       size_t n, uint64_t *dropped)
{
    if (dropped)
        *dropped = 0;
    if (!e || !out || n == 0)
        return 0;
    pthread_mutex_lock(&e->mu);
    size_t k = 0;
    if (since_seq < e->last_seq) {
        uint64_t held = e->last_seq < e->cap ? e->last_seq : e->cap;
        uint64_t oldest = e->last_seq - held + 1;
        uint64_t first = since_seq + 1;
        if (first < oldest) {
            if (dropped)
                *dropped = oldest - first;
            first = oldest;
        }
        uint64_t avail = e->last_seq - first + 1;
        k = avail < n ? (size_t)avail : n;
        copy_range(e, first, k, out);
    }
    pthread_mutex_unlock(&e->mu);
    return k;
}

uint64_t qt_events_last_seq(qt_events *e)
{
    if (!e)
        return 0;
    pthread_mutex_lock(&e->mu);
    uint64_t s = e->last_seq;
    pthread_mutex_unlock(&e->mu);
    return s;
}

void qt_events_counts(qt_events *e, uint64_t counts[QT_EV__COUNT])
{
    if (!counts)
        return;
    if (!e) {
        memset(counts, 0, sizeof(uint64_t) * QT_EV__COUNT);
        return;
    }
    pthread_mutex_lock(&e->mu);
    memcpy(counts, e->counts, sizeof e->counts);
    pthread_mutex_unlock(&e->mu);
}

size_t qt_events_capacity(const qt_events *e)
{
    return e ? e->cap : 0;
}

const char *qt_event_type_name(qt_event_type type)
{
    switch (type) {
    case QT_EV_INFO:             return "info";
    case QT_EV_RETRY:            return "retry";
    case QT_EV_RATE_LIMITED:     return "rate_limited";
    case QT_EV_FALLBACK:         return "fallback";
    case QT_EV_CIRCUIT:          return "circuit";
    case QT_EV_BUDGET_WARN:      return "budget_warn";
    case QT_EV_BUDGET_EXHAUSTED: return "budget_exhausted";
    case QT_EV_LIMIT_CHANGE:     return "limit_change";
    case QT_EV_PAUSE:            return "pause";
    case QT_EV_RESUME:           return "resume";
    case QT_EV_CANCEL:           return "cancel";
    case QT_EV_CACHE_HIT:        return "cache_hit";
    case QT_EV_ERROR:            return "error";
    case QT_EV__COUNT:           break;
    }
    return "unknown";
}
