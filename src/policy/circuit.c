/* circuit.c: the circuit breaker state machine.
 *
 * DESIGN
 * State is one of CLOSED / OPEN / HALF_OPEN plus a generation number that
 * grows on every transition. A permit remembers the generation it was issued
 * in, so only outcomes of requests admitted in the current state count: the
 * window of a new CLOSED period starts clean, and a slow request admitted
 * before the breaker opened can neither close it nor take a probe slot.
 *
 * The CLOSED window is QT_CIRCUIT_BUCKETS time buckets of window_ms / N each,
 * used as a ring indexed by (now / width); a bucket is lazily emptied when a
 * later period reuses it, and sums only take buckets of the last N periods.
 * The opening rule is checked on each counted failure (successes can never
 * open it).
 *
 * OPEN -> HALF_OPEN is lazy: nothing runs at the end of a cooldown; the next
 * allow() makes the move and reports it; queries (state, peek, next_probe)
 * already answer as if it had happened.
 */
#include "quotatop/circuit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qt_circuit {
    qt_circuit_params p;
    qt_circuit_status state;
    uint64_t gen;              /* generation, >= 1; +1 on every transition */
    uint64_t last_ms;          /* latest now_ms seen */
    uint64_t width_ms;         /* one bucket's span: ceil(window_ms / N) */
    uint64_t cooldown_ms;      /* cooldown of the current (OPEN) or next OPEN period */
    uint64_t open_until_ms;    /* OPEN: end of the cooldown */
    int probes;                /* HALF_OPEN: probe slots taken */
    struct {
        uint64_t id;           /* period number + 1 (time / width_ms + 1); 0 = empty */
        int64_t ok, fail;
    } b[QT_CIRCUIT_BUCKETS];
};

qt_circuit_params qt_circuit_params_default(void)
{
    qt_circuit_params p = {
        .failure_threshold = QT_CIRCUIT_DEFAULT_FAILURE_THRESHOLD,
        .failure_ratio = QT_CIRCUIT_DEFAULT_FAILURE_RATIO,
        .window_ms = QT_CIRCUIT_DEFAULT_WINDOW_MS,
        .cooldown_ms = QT_CIRCUIT_DEFAULT_COOLDOWN_MS,
        .cooldown_max_ms = QT_CIRCUIT_DEFAULT_COOLDOWN_MAX_MS,
        .half_open_max = QT_CIRCUIT_DEFAULT_HALF_OPEN_MAX,
    };
    return p;
}

qt_circuit *qt_circuit_new(const qt_circuit_params *p)
{
    if (!p || p->failure_threshold < 1 || !(p->failure_ratio >= 0.0 && p->failure_ratio <= 1.0) ||
        p->window_ms == 0 || p->cooldown_ms == 0 || p->half_open_max < 1)
        return NULL;
    qt_circuit *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->p = *p;
    if (c->p.cooldown_max_ms < c->p.cooldown_ms)
        c->p.cooldown_max_ms = c->p.cooldown_ms;
    c->state = QT_CIRCUIT_CLOSED;
    c->gen = 1;
    c->width_ms = (p->window_ms + QT_CIRCUIT_BUCKETS - 1) / QT_CIRCUIT_BUCKETS;
    c->cooldown_ms = p->cooldown_ms;
    return c;
}

void qt_circuit_free(qt_circuit *c) { free(c); }

const char *qt_circuit_state_name(qt_circuit_status s)
{
    switch (s) {
    case QT_CIRCUIT_CLOSED:    return "closed";
    case QT_CIRCUIT_OPEN:      return "open";
    case QT_CIRCUIT_HALF_OPEN: return "half_open";
    }
    return "unknown";
}

/* ---- helpers ------------------------------------------------------------ */

static uint64_t clamp_now(const qt_circuit *c, uint64_t now_ms)
{
    return now_ms > c->last_ms ? now_ms : c->last_ms;
}

/* Formats a duration for reasons: "10s", "1.5s", "250ms". */
static void fmt_dur(char *buf, size_t n, uint64_t ms)
{
    if (ms >= 1000 && ms % 1000 == 0)
        snprintf(buf, n, "%llus", (unsigned long long)(ms / 1000));
    else if (ms >= 1000)
        snprintf(buf, n, "%.1fs", (double)ms / 1000.0);
    else
        snprintf(buf, n, "%llums", (unsigned long long)ms);
}

static void window_clear(qt_circuit *c) { memset(c->b, 0, sizeof c->b); }

static void window_sum(const qt_circuit *c, uint64_t now_ms, int64_t *ok, int64_t *fail)
{
    uint64_t cur = now_ms / c->width_ms + 1;
    *ok = *fail = 0;
    for (int i = 0; i < QT_CIRCUIT_BUCKETS; i++)
        if (c->b[i].id != 0 && c->b[i].id <= cur && c->b[i].id + QT_CIRCUIT_BUCKETS > cur) {
            *ok += c->b[i].ok;
            *fail += c->b[i].fail;
        }
}

static int window_slot(qt_circuit *c, uint64_t now_ms)
{
    uint64_t id = now_ms / c->width_ms + 1;
    int i = (int)(id % QT_CIRCUIT_BUCKETS);
    if (c->b[i].id != id) {
        c->b[i].id = id;
        c->b[i].ok = c->b[i].fail = 0;
    }
    return i;
}

/* Moves to state `to` at now_ms and describes it in *tr. */
static void transition(qt_circuit *c, qt_circuit_status to, uint64_t now_ms,
                       qt_circuit_transition *tr)
{
    tr->changed = 1;
    tr->from = c->state;
    tr->to = to;
    tr->at_ms = now_ms;
    tr->cooldown_ms = 0;
    tr->reason[0] = '\0';
    c->state = to;
    c->gen++;
    c->probes = 0;
    if (to == QT_CIRCUIT_OPEN) {
        c->open_until_ms = now_ms + c->cooldown_ms;
        tr->cooldown_ms = c->cooldown_ms;
        window_clear(c);
    } else if (to == QT_CIRCUIT_CLOSED) {
        c->cooldown_ms = c->p.cooldown_ms;
        window_clear(c);
    }
}

static void no_transition(qt_circuit_transition *tr)
{
    memset(tr, 0, sizeof *tr);
}

/* ---- queries ------------------------------------------------------------ */

qt_circuit_status qt_circuit_state(const qt_circuit *c, uint64_t now_ms)
{
    if (!c)
        return QT_CIRCUIT_CLOSED;
    now_ms = clamp_now(c, now_ms);
    if (c->state == QT_CIRCUIT_OPEN && now_ms >= c->open_until_ms)
        return QT_CIRCUIT_HALF_OPEN;
    return c->state;
}

int qt_circuit_peek(const qt_circuit *c, uint64_t now_ms)
{
    if (!c)
        return 0;
    switch (qt_circuit_state(c, now_ms)) {
    case QT_CIRCUIT_CLOSED:
        return 1;
    case QT_CIRCUIT_HALF_OPEN:   /* a lazily pending HALF_OPEN has probes == 0 */
        return (c->state == QT_CIRCUIT_OPEN ? 0 : c->probes) < c->p.half_open_max;
    default:
        return 0;
    }
}

uint64_t qt_circuit_next_probe_ms(const qt_circuit *c, uint64_t now_ms)
{
    if (!c)
        return now_ms;
    uint64_t now = clamp_now(c, now_ms);
    if (c->state == QT_CIRCUIT_OPEN && now < c->open_until_ms)
        return c->open_until_ms;
    if (qt_circuit_peek(c, now))
        return now;
    return QT_CIRCUIT_NEVER;
}

void qt_circuit_snapshot_get(const qt_circuit *c, uint64_t now_ms, qt_circuit_snapshot *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    uint64_t now = clamp_now(c, now_ms);
    out->state = qt_circuit_state(c, now);
    if (c->state == QT_CIRCUIT_CLOSED)
        window_sum(c, now, &out->successes, &out->failures);
    out->cooldown_ms = c->cooldown_ms;
    out->next_probe_ms = qt_circuit_next_probe_ms(c, now);
    out->probes_in_flight = c->state == QT_CIRCUIT_HALF_OPEN ? c->probes : 0;
}

/* ---- admission and outcomes --------------------------------------------- */

int qt_circuit_allow(qt_circuit *c, uint64_t now_ms, qt_circuit_permit *permit,
                     qt_circuit_transition *tr)
{
    if (!c || !permit || !tr)
        return 0;
    no_transition(tr);
    permit->gen = 0;
    permit->probe = 0;
    now_ms = c->last_ms = clamp_now(c, now_ms);

    if (c->state == QT_CIRCUIT_OPEN && now_ms >= c->open_until_ms) {
        transition(c, QT_CIRCUIT_HALF_OPEN, now_ms, tr);
        snprintf(tr->reason, sizeof tr->reason, "cooldown elapsed");
    }
    switch (c->state) {
    case QT_CIRCUIT_CLOSED:
        permit->gen = c->gen;
        return 1;
    case QT_CIRCUIT_HALF_OPEN:
        if (c->probes >= c->p.half_open_max)
            return 0;
        c->probes++;
        permit->gen = c->gen;
        permit->probe = 1;
        return 1;
    default:
        return 0;
    }
}

int qt_circuit_record(qt_circuit *c, qt_circuit_permit *permit, qt_circuit_outcome outcome,
                      uint64_t now_ms, qt_circuit_transition *tr)
{
    if (!c || !permit || !tr)
        return -1;
    no_transition(tr);
    now_ms = c->last_ms = clamp_now(c, now_ms);
    uint64_t gen = permit->gen;
    int probe = permit->probe;
    permit->gen = 0;
    permit->probe = 0;
    if (gen == 0 || gen != c->gen)
        return 0;                        /* spent, or a straggler from an earlier state */

    char d[24];
    if (c->state == QT_CIRCUIT_CLOSED && !probe) {
        if (outcome == QT_CIRCUIT_IGNORED)
            return 0;
        int i = window_slot(c, now_ms);
        if (outcome == QT_CIRCUIT_SUCCESS) {
            c->b[i].ok++;
            return 0;
        }
        c->b[i].fail++;
        int64_t ok, fail;
        window_sum(c, now_ms, &ok, &fail);
        /* ratio test without division; the epsilon keeps 1 of 5 >= 0.2 true */
        if (fail < c->p.failure_threshold ||
            (double)fail + 1e-9 < c->p.failure_ratio * (double)(fail + ok))
            return 0;
        transition(c, QT_CIRCUIT_OPEN, now_ms, tr);
        fmt_dur(d, sizeof d, c->p.window_ms);
        snprintf(tr->reason, sizeof tr->reason, "%lld failures of %lld in %s",
                 (long long)fail, (long long)(fail + ok), d);
        return 1;
    }
    if (c->state == QT_CIRCUIT_HALF_OPEN && probe) {
        switch (outcome) {
        case QT_CIRCUIT_IGNORED:
            if (c->probes > 0)
                c->probes--;
            return 0;
        case QT_CIRCUIT_SUCCESS:
            transition(c, QT_CIRCUIT_CLOSED, now_ms, tr);
            snprintf(tr->reason, sizeof tr->reason, "probe succeeded");
            return 1;
        case QT_CIRCUIT_FAILURE:
            c->cooldown_ms = c->cooldown_ms > c->p.cooldown_max_ms / 2 ? c->p.cooldown_max_ms
                                                                         : c->cooldown_ms * 2;
            transition(c, QT_CIRCUIT_OPEN, now_ms, tr);
            fmt_dur(d, sizeof d, c->cooldown_ms);
            snprintf(tr->reason, sizeof tr->reason, "probe failed, cooldown %s", d);
            return 1;
        }
    }
    return 0;
}
