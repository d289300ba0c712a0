/* limiter.c: GCRA pacing per key, all-or-nothing reservations, refunds that
 * keep the pacing bound, live limits, provider holds, and the estimator.
 *
 * DESIGN
 * Each key has two GCRA "dimensions", requests and tokens. A dimension keeps
 * its emission interval T (ns per unit, 0 = unlimited) and its theoretical
 * arrival time tat (ns): the moment the key will have paid for everything
 * admitted so far. A request of c units at time t is admitted when
 *
 *     tat <= t + max(0, tau + T - c*T)                            (admit)
 *
 * (tau at least 1 ms when T < 1 ms: one clock tick, see tolerance())
 * and then tat = max(tat, t) + c*T. Unrolled, tat is the maximum over past
 * admissions i of (t_i + T * units admitted from i on); that identity is the
 * whole proof of the window bound in limiter.h, and every other operation is
 * written to keep tat at or above it:
 *
 *  - Time is integer ms but tat is ns. When tat lies in (t - 1 ms, t] we keep
 *    tat rather than jumping to t, so saturated pacing does not lose the
 *    sub-ms remainder every time (rpm 60000 would otherwise run at 50%).
 *  - Refund of d units of admission j: the terms of admissions up to j drop
 *    by d*T, the terms after j do not change, so
 *        tat' = max(tat - d*T, min(X, tat)),  X = t_last + T * (units charged after j)
 *    where X is an upper bound of the later terms. `charged` is a monotonic
 *    counter and each reservation remembers its value right after its own
 *    admission (its mark), so "units charged after j" = charged - mark (an
 *    over-estimate, which errs on the safe side). When j is still the key's
 *    latest admission (admission numbers match) there are no later terms and
 *    the refund is whole; when others were already paced behind it, the
 *    refund only frees what is still in the future.
 *  - A limit change rescales the debt (tat - now) to the new T.
 *
 * The earliest admissible time solves (admit) for t in whole ms, and holds /
 * provider resets are plain "not before" times, so earliest_ms is exact: the
 * conditions are monotone in t and the maximum over them is the answer.
 *
 * Usage for the dashboard lives in a ring of 60 one-second buckets per key,
 * each stamped with its second so stale buckets are ignored on read and
 * recycled on write (no clearing pass, reads stay const).
 */
#include "quotatop/limiter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS 1000000LL
#define MAX_T_NS  (INT64_C(1) << 50)   /* ~13 days per unit: slower is "stopped" */
#define RING_SECS 60

typedef struct {
    int64_t T;        /* ns per unit; 0 = unlimited */
    int64_t tat;      /* theoretical arrival time, ns */
    int64_t charged;  /* units ever charged (never decreases): refund marks */
} gcra;

typedef struct {
    uint64_t sec;     /* which second this bucket holds */
    int64_t req;      /* requests admitted in that second (minus releases) */
    int64_t tok;      /* tokens charged in that second (estimate, then actual) */
} bucket;

typedef struct {
    char *name;
    double cfg_rpm, cfg_tpm;  /* as registered */
    int cfg_conc;
    double rpm, tpm;          /* effective now */
    int conc;                 /* effective max_concurrent, 0 = unlimited */
    int changed_live;
    gcra req, tok;
    int64_t last_admit;       /* ns of the latest admission (refund bound X) */
    uint64_t seq;             /* admissions so far: is a reservation the latest? */
    int in_flight;
    uint64_t hold_until;      /* ms; admissions wait until then */
    int64_t fb_req_left;      /* provider's remaining requests, -1 unknown */
    uint64_t fb_req_reset;    /* ms at which fb_req_left stops applying */
    int64_t fb_tok_left;
    uint64_t fb_tok_reset;
    bucket ring[RING_SECS];
} key;

struct qt_limiter {
    key *keys;
    size_t n, cap;
    int64_t tau;              /* burst tolerance, ns */
};

/* ---- arithmetic --------------------------------------------------------- */

static int64_t sat_mul(int64_t a, int64_t b)   /* a, b >= 0 */
{
    if (a != 0 && b > INT64_MAX / 4 / a)
        return INT64_MAX / 4;
    return a * b;
}

static int64_t interval_ns(double per_minute)
{
    if (per_minute <= 0)
        return 0;
    double t = ceil(60.0e9 / per_minute);
    return t > (double)MAX_T_NS ? MAX_T_NS : (int64_t)t;
}

static int64_t ms_to_ns(uint64_t ms) { return (int64_t)ms * NS_PER_MS; }

/* Smallest whole ms m with need_ns <= m * 1e6. */
static uint64_t ceil_ms(int64_t need_ns)
{
    if (need_ns <= 0)
        return 0;
    return (uint64_t)((need_ns + NS_PER_MS - 1) / NS_PER_MS);
}

/* The tolerance of a dimension: tau, but at least one clock tick (1 ms) when
 * the key is faster than one unit per ms. Callers pass whole ms, so with
 * less than that every idle ms would start with a single admission and
 * waste the rest of the ms (a 3M rpm key would run at 60000 rpm). */
static int64_t tolerance(const gcra *g, int64_t tau)
{
    return g->T < NS_PER_MS && tau < NS_PER_MS ? NS_PER_MS : tau;
}

/* Earliest ms >= now at which (admit) holds for c units. */
static uint64_t gcra_earliest(const gcra *g, int64_t tau, int64_t c, uint64_t now)
{
    if (g->T == 0)
        return now;
    int64_t allow = tolerance(g, tau) + g->T - sat_mul(c, g->T);
    if (allow < 0)
        allow = 0;
    uint64_t m = ceil_ms(g->tat - allow);
    return m > now ? m : now;
}

static void gcra_charge(gcra *g, int64_t c, int64_t t)
{
    g->charged += c;
    if (g->T == 0)
        return;
    int64_t base = g->tat > t - NS_PER_MS ? g->tat : t;
    g->tat = base + sat_mul(c, g->T);
}

/* Give back d units of the admission whose mark is `mark` (see DESIGN), or
 * charge -d more when d < 0. latest: no admission came after it. */
static void gcra_adjust(gcra *g, int64_t d, int64_t mark, int64_t last_admit, int latest)
{
    if (d < 0) {
        g->charged += -d;
        if (g->T)
            g->tat += sat_mul(-d, g->T);
        return;
    }
    if (d == 0 || g->T == 0)
        return;
    int64_t back = g->tat - sat_mul(d, g->T);
    if (latest) {
        g->tat = back;
        return;
    }
    /* X bounds the later terms; so does tat itself (it is >= every term), and
     * X, being an over-estimate, may exceed it: a refund never adds debt. */
    int64_t x = last_admit + sat_mul(g->charged - mark, g->T);
    if (x > g->tat)
        x = g->tat;
    g->tat = back > x ? back : x;
}

/* New interval; the remaining debt is converted to the new rate. */
static void gcra_retime(gcra *g, int64_t T, int64_t t)
{
    if (g->T && T && g->tat > t) {
        double debt = (double)(g->tat - t) * ((double)T / (double)g->T);
        g->tat = t + (debt > (double)(INT64_MAX / 4) ? INT64_MAX / 4 : (int64_t)debt);
    } else if (T == 0 || g->T == 0) {
        if (g->tat > t)
            g->tat = t;
    }
    g->T = T;
}

/* ---- usage ring ----------------------------------------------------------- */

static void ring_add(key *k, uint64_t ms, int64_t dreq, int64_t dtok, int create)
{
    uint64_t sec = ms / 1000;
    bucket *b = &k->ring[sec % RING_SECS];
    if (b->sec != sec) {
        if (!create || (b->sec != UINT64_MAX && b->sec > sec))
            return;           /* that second has left the ring */
        b->sec = sec;
        b->req = b->tok = 0;
    }
    b->req += dreq;
    b->tok += dtok;
    if (b->req < 0) b->req = 0;
    if (b->tok < 0) b->tok = 0;
}

/* ---- keys ----------------------------------------------------------------- */

qt_limiter *qt_limiter_new(double burst_ms)
{
    if (!isfinite(burst_ms) || burst_ms < 0 || burst_ms > 3.6e6)
        return NULL;
    qt_limiter *l = calloc(1, sizeof *l);
    if (l)
        l->tau = (int64_t)llround(burst_ms * NS_PER_MS);
    return l;
}

void qt_limiter_free(qt_limiter *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i].name);
    free(l->keys);
    free(l);
}

static int valid_limit(double v) { return isfinite(v) && v >= 0; }

int qt_limiter_add_key(qt_limiter *l, const char *name, double rpm, double tpm,
                       int max_concurrent)
{
    if (!l || !name || !valid_limit(rpm) || !valid_limit(tpm) || max_concurrent < 0
        || qt_limiter_key_find(l, name) >= 0 || l->n >= (size_t)INT32_MAX)
        return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        key *nk = realloc(l->keys, cap * sizeof *nk);
        if (!nk)
            return -1;
        l->keys = nk;
        l->cap = cap;
    }
    key *k = &l->keys[l->n];
    memset(k, 0, sizeof *k);
    if (!(k->name = strdup(name)))
        return -1;
    k->cfg_rpm = k->rpm = rpm;
    k->cfg_tpm = k->tpm = tpm;
    k->cfg_conc = k->conc = max_concurrent;
    k->req.T = interval_ns(rpm);
    k->tok.T = interval_ns(tpm);
    k->fb_req_left = k->fb_tok_left = -1;
    for (int i = 0; i < RING_SECS; i++)
        k->ring[i].sec = UINT64_MAX;   /* never matches a real second */
    return (int)l->n++;
}

int qt_limiter_key_find(const qt_limiter *l, const char *name)
{
    if (!l || !name)
        return -1;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

size_t qt_limiter_key_count(const qt_limiter *l) { return l ? l->n : 0; }

static key *get_key(const qt_limiter *l, int id)
{
    if (!l || id < 0 || (size_t)id >= l->n)
        return NULL;
    return &l->keys[id];
}

const char *qt_limiter_key_name(const qt_limiter *l, int id)
{
    key *k = get_key(l, id);
    return k ? k->name : NULL;
}

/* ---- admission ------------------------------------------------------------ */

/* Earliest ms >= now at which key k admits a request of est tokens, or
 * QT_LIMITER_NEVER when its concurrency is full. */
static uint64_t key_earliest(const qt_limiter *l, const key *k, int64_t est, uint64_t now)
{
    if (k->conc > 0 && k->in_flight >= k->conc)
        return QT_LIMITER_NEVER;
    uint64_t e = now;
    if (k->hold_until > e)
        e = k->hold_until;
    if (k->fb_req_left >= 0 && now < k->fb_req_reset && k->fb_req_left < 1 && k->fb_req_reset > e)
        e = k->fb_req_reset;
    if (k->fb_tok_left >= 0 && now < k->fb_tok_reset && k->fb_tok_left < est && k->fb_tok_reset > e)
        e = k->fb_tok_reset;
    uint64_t g = gcra_earliest(&k->req, l->tau, 1, now);
    if (g > e)
        e = g;
    g = gcra_earliest(&k->tok, l->tau, est, now);
    return g > e ? g : e;
}

static int check_args(const qt_limiter *l, const int *keys, size_t n, int64_t est)
{
    if (!l || !keys || n == 0 || n > QT_LIMITER_MAX_KEYS || est < 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!get_key(l, keys[i]))
            return 0;
        for (size_t j = 0; j < i; j++)
            if (keys[j] == keys[i])
                return 0;
    }
    return 1;
}

static uint64_t earliest_all(const qt_limiter *l, const int *keys, size_t n,
                             int64_t est, uint64_t now)
{
    uint64_t e = now;
    for (size_t i = 0; i < n; i++) {
        uint64_t ke = key_earliest(l, &l->keys[keys[i]], est, now);
        if (ke > e)
            e = ke;
    }
    return e;
}

qt_err qt_limiter_reserve(qt_limiter *l, const int *keys, size_t nkeys,
                          int64_t est_tokens, uint64_t now_ms,
                          qt_limiter_res *res, uint64_t *earliest_ms)
{
    if (res)
        res->active = 0;
    if (!res || !check_args(l, keys, nkeys, est_tokens))
        return QT_ERR_INVALID;
    uint64_t e = earliest_all(l, keys, nkeys, est_tokens, now_ms);
    if (earliest_ms)
        *earliest_ms = e;
    if (e > now_ms)
        return QT_ERR_LIMIT;      /* nothing taken anywhere */

    int64_t t = ms_to_ns(now_ms);
    res->nkeys = (int)nkeys;
    res->tokens = est_tokens;
    res->admit_ms = now_ms;
    for (size_t i = 0; i < nkeys; i++) {
        key *k = &l->keys[keys[i]];
        gcra_charge(&k->req, 1, t);
        gcra_charge(&k->tok, est_tokens, t);
        k->last_admit = t;
        k->seq++;
        k->in_flight++;
        if (k->fb_req_left > 0 && now_ms < k->fb_req_reset)
            k->fb_req_left--;
        if (k->fb_tok_left >= 0 && now_ms < k->fb_tok_reset)
            k->fb_tok_left = k->fb_tok_left > est_tokens ? k->fb_tok_left - est_tokens : 0;
        ring_add(k, now_ms, 1, est_tokens, 1);
        res->keys[i] = keys[i];
        res->req_mark[i] = k->req.charged;
        res->tok_mark[i] = k->tok.charged;
        res->seq[i] = k->seq;
    }
    res->active = 1;
    return QT_OK;
}

/* Shared by commit (dreq = 0) and release (dreq = 1, actual = 0). */
static qt_err settle(qt_limiter *l, qt_limiter_res *res, int64_t actual, int64_t dreq)
{
    if (!l || !res || !res->active || actual < 0 || res->nkeys < 1
        || res->nkeys > QT_LIMITER_MAX_KEYS)
        return QT_ERR_INVALID;
    for (int i = 0; i < res->nkeys; i++)
        if (!get_key(l, res->keys[i]))
            return QT_ERR_INVALID;
    int64_t dtok = res->tokens - actual;   /* > 0 refund, < 0 extra charge */
    for (int i = 0; i < res->nkeys; i++) {
        key *k = &l->keys[res->keys[i]];
        int latest = k->seq == res->seq[i];
        gcra_adjust(&k->req, dreq, res->req_mark[i], k->last_admit, latest);
        gcra_adjust(&k->tok, dtok, res->tok_mark[i], k->last_admit, latest);
        if (k->in_flight > 0)
            k->in_flight--;
        ring_add(k, res->admit_ms, -dreq, -dtok, 0);
    }
    res->active = 0;
    return QT_OK;
}

qt_err qt_limiter_commit(qt_limiter *l, qt_limiter_res *res,
                         int64_t actual_tokens, uint64_t now_ms)
{
    (void)now_ms;   /* the bound X uses admission times, not the commit time */
    return settle(l, res, actual_tokens, 0);
}

qt_err qt_limiter_release(qt_limiter *l, qt_limiter_res *res, uint64_t now_ms)
{
    (void)now_ms;
    return settle(l, res, 0, 1);
}

uint64_t qt_limiter_wait_ms(const qt_limiter *l, const int *keys, size_t nkeys,
                            int64_t est_tokens, uint64_t now_ms)
{
    if (!check_args(l, keys, nkeys, est_tokens))
        return QT_LIMITER_NEVER;
    uint64_t e = earliest_all(l, keys, nkeys, est_tokens, now_ms);
    return e == QT_LIMITER_NEVER ? e : e - now_ms;
}

/* ---- live changes and feedback ---------------------------------------------- */

static void apply_limits(key *k, double rpm, double tpm, int conc, uint64_t now)
{
    int64_t t = ms_to_ns(now);
    k->rpm = rpm;
    k->tpm = tpm;
    k->conc = conc;
    gcra_retime(&k->req, interval_ns(rpm), t);
    gcra_retime(&k->tok, interval_ns(tpm), t);
}

qt_err qt_limiter_set_limits(qt_limiter *l, int id, double rpm, double tpm,
                             int max_concurrent, uint64_t now_ms)
{
    key *k = get_key(l, id);
    if (!k || !isfinite(rpm) || !isfinite(tpm))
        return QT_ERR_INVALID;
    apply_limits(k, rpm < 0 ? k->rpm : rpm, tpm < 0 ? k->tpm : tpm,
                 max_concurrent < 0 ? k->conc : max_concurrent, now_ms);
    k->changed_live = 1;
    return QT_OK;
}

qt_err qt_limiter_restore(qt_limiter *l, int id, uint64_t now_ms)
{
    key *k = get_key(l, id);
    if (!k)
        return QT_ERR_INVALID;
    apply_limits(k, k->cfg_rpm, k->cfg_tpm, k->cfg_conc, now_ms);
    k->changed_live = 0;
    return QT_OK;
}

qt_err qt_limiter_feedback(qt_limiter *l, int id, const qt_limit_feedback *fb,
                           uint64_t now_ms)
{
    key *k = get_key(l, id);
    if (!k || !fb)
        return QT_ERR_INVALID;
    if (fb->remaining_requests >= 0 && fb->reset_requests_ms > now_ms) {
        k->fb_req_left = fb->remaining_requests;
        k->fb_req_reset = fb->reset_requests_ms;
    }
    if (fb->remaining_tokens >= 0 && fb->reset_tokens_ms > now_ms) {
        k->fb_tok_left = fb->remaining_tokens;
        k->fb_tok_reset = fb->reset_tokens_ms;
    }
    return QT_OK;
}

qt_err qt_limiter_hold(qt_limiter *l, int id, uint64_t until_ms)
{
    key *k = get_key(l, id);
    if (!k)
        return QT_ERR_INVALID;
    if (until_ms > k->hold_until)
        k->hold_until = until_ms;
    return QT_OK;
}

qt_err qt_limiter_key_stats(const qt_limiter *l, int id, uint64_t now_ms,
                            qt_limiter_stats *st)
{
    key *k = get_key(l, id);
    if (!k || !st)
        return QT_ERR_INVALID;
    memset(st, 0, sizeof *st);
    st->name = k->name;
    st->rpm = k->rpm;
    st->tpm = k->tpm;
    st->max_concurrent = k->conc;
    st->cfg_rpm = k->cfg_rpm;
    st->cfg_tpm = k->cfg_tpm;
    st->cfg_max_concurrent = k->cfg_conc;
    st->changed_live = k->changed_live;
    st->in_flight = k->in_flight;
    uint64_t sec = now_ms / 1000;
    for (int i = 0; i < RING_SECS; i++) {
        const bucket *b = &k->ring[i];
        if (b->sec <= sec && b->sec + RING_SECS > sec) {
            st->requests_60s += (uint64_t)b->req;
            st->tokens_60s += (uint64_t)b->tok;
        }
    }
    uint64_t held = k->hold_until > now_ms ? k->hold_until : 0;
    st->remaining_requests = -1;
    st->remaining_tokens = -1;
    if (k->fb_req_left >= 0 && now_ms < k->fb_req_reset) {
        st->remaining_requests = k->fb_req_left;
        if (k->fb_req_left == 0 && k->fb_req_reset > held)
            held = k->fb_req_reset;
    }
    if (k->fb_tok_left >= 0 && now_ms < k->fb_tok_reset) {
        st->remaining_tokens = k->fb_tok_left;
        if (k->fb_tok_left == 0 && k->fb_tok_reset > held)
            held = k->fb_tok_reset;
    }
    st->held_until_ms = held;
    uint64_t e = key_earliest(l, k, 0, now_ms);
    st->wait_ms = e == QT_LIMITER_NEVER ? e : e - now_ms;
    return QT_OK;
}

/* ---- estimator -------------------------------------------------------------- */

#define EST_DEFAULT  0.25    /* tokens per char before any observation */
#define EST_ALPHA    0.2     /* weight of a new observation */
#define EST_MIN      0.05
#define EST_MAX      2.0

typedef struct {
    char *model;
    double ratio;            /* EWMA of observed tokens/char, clamped */
    uint64_t samples;
} est_model;

struct qt_estimator {
    est_model *m;
    size_t n, cap;
};

qt_estimator *qt_estimator_new(void) { return calloc(1, sizeof(qt_estimator)); }

void qt_estimator_free(qt_estimator *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->m[i].model);
    free(e->m);
    free(e);
}

static est_model *est_find(const qt_estimator *e, const char *model)
{
    if (!e || !model)
        return NULL;
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->m[i].model, model) == 0)
            return &e->m[i];
    return NULL;
}

double qt_estimator_ratio(const qt_estimator *e, const char *model)
{
    const est_model *m = est_find(e, model);
    return m ? m->ratio : EST_DEFAULT;
}

int64_t qt_estimator_estimate(const qt_estimator *e, const char *model, uint64_t chars)
{
    if (chars == 0)
        return 0;
    /* The epsilon keeps an exact product (chars * 0.25) from rounding up. */
    double t = ceil((double)chars * qt_estimator_ratio(e, model) - 1e-9);
    return t < 1 ? 1 : (int64_t)t;
}

qt_err qt_estimator_observe(qt_estimator *e, const char *model, uint64_t chars,
                            int64_t prompt_tokens)
{
    if (!e || !model)
        return QT_ERR_INVALID;
    if (chars == 0 || prompt_tokens <= 0)
        return QT_OK;
    est_model *m = est_find(e, model);
    if (!m) {
        if (e->n == e->cap) {
            size_t cap = e->cap ? e->cap * 2 : 8;
            est_model *nm = realloc(e->m, cap * sizeof *nm);
            if (!nm)
                return QT_ERR_NOMEM;
            e->m = nm;
            e->cap = cap;
        }
        char *name = strdup(model);
        if (!name)
            return QT_ERR_NOMEM;
        m = &e->m[e->n++];
        m->model = name;
        m->ratio = EST_DEFAULT;
        m->samples = 0;
    }
    double r = (double)prompt_tokens / (double)chars;
    r = m->ratio + EST_ALPHA * (r - m->ratio);
    m->ratio = r < EST_MIN ? EST_MIN : r > EST_MAX ? EST_MAX : r;
    m->samples++;
    return QT_OK;
}
