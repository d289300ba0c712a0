/* simprov.c: the simulated provider of `quotatop replay` (replay.h).
 *
 * DESIGN
 * One key per (provider, upstream model) the replay sends to, created on
 * first use, plus one per provider. A key holds:
 * - its limits: those the provider's rate-limit headers announced in the
 *   recording (the latest attempt on the key that carried them), else the
 *   recording config's; an override (--upstream config) beats both;
 * - two token buckets with the mock's arithmetic (src/sim/mock_model.c):
 *   capacity max(1, L/60), refilled at L/60 per second; a cost k fits when
 *   level >= min(k, capacity); admitted requests are charged, refused ones
 *   are not; the wait until it would fit is the 429's retry-after;
 * - a latency pool: the (ttfb, total, completion) of every ok attempt the
 *   recording made on that key;
 * - error windows: per 10 s of the recording, how many attempts with a
 *   known status there were and how many failed other than by a 429, with
 *   the last failure's status and time; a request in that window fails with
 *   that share (an outage is a share of 1);
 * - per-second counts of requests and tokens sent, for peak RPM / TPM.
 * A request is checked for a recorded error first (no charge, like an
 * outage at the mock), then against the model's and the provider's buckets,
 * then answered. All randomness comes from one seeded splitmix64 stream, so
 * a replay is repeatable.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quotatop/jobs.h"
#include "quotatop/replay.h"

#define WINDOW_MS 10000
#define MAX_KEYS 256
#define MAX_SECONDS (40u * 86400u)   /* per-second stats kept for 40 days */
#define EPS 1e-9

typedef struct {
    double level;
    uint64_t last_ms;
} bucket;

typedef struct {
    uint32_t ttfb, total;
    int completion;
} sample;

typedef struct {
    uint32_t known, errors;
    int status;
    uint32_t err_total_ms;
} window;

typedef struct {
    char name[140];
    uint64_t hash;
    int provider_only;
    int up_key;                  /* the provider's key, -1 for provider keys */
    uint64_t rpm, tpm;
    int source;                  /* QT_SIM_LIMITS_*: where rpm and tpm come from */
    bucket req, tok;
    sample *pool;
    size_t n_pool;
    window *win;
    size_t n_win;
    uint32_t *sec_req, *sec_tok; /* per second sent */
    size_t n_sec, cap_sec;
    uint64_t requests, rate_limited, errors;
} key;

typedef struct {
    char name[140];
    uint64_t rpm, tpm;
} override;

struct qt_simprov {
    const qt_trace_data *d;
    override *ovr;               /* limits set by qt_simprov_set_limits */
    size_t n_ovr;
    key *keys;
    size_t n_keys;
    uint64_t rng;
};

/* ---- buckets: the mock's arithmetic ---- */

static double cap_of(uint64_t limit)
{
    double c = (double)limit / 60.0;
    return c < 1.0 ? 1.0 : c;
}

static void refill(bucket *b, uint64_t limit, uint64_t now)
{
    if (now <= b->last_ms)
        return;
    if (limit) {
        b->level += (double)(now - b->last_ms) * (double)limit / 60000.0;
        if (b->level > cap_of(limit))
            b->level = cap_of(limit);
    }
    b->last_ms = now;
}

static int fits(const bucket *b, uint64_t limit, uint64_t cost, uint64_t *wait)
{
    *wait = 0;
    if (!limit)
        return 1;
    double c = cap_of(limit), need = (double)cost > c ? c : (double)cost;
    if (b->level + EPS >= need)
        return 1;
    *wait = (uint64_t)ceil((need - b->level) * 60000.0 / (double)limit);
    if (*wait == 0)
        *wait = 1;
    return 0;
}

static uint64_t remaining(const bucket *b, uint64_t limit)
{
    double rem = floor((double)limit - (cap_of(limit) - b->level) + EPS);
    return rem <= 0 ? 0 : (uint64_t)rem;
}

static uint64_t reset_ms(const bucket *b, uint64_t limit)
{
    double deficit = cap_of(limit) - b->level;
    return limit && deficit > EPS ? (uint64_t)ceil(deficit * 60000.0 / (double)limit) : 0;
}

/* ---- keys ---- */

/* The upstream model name of an attempt's recorded (config) model. */
static int upstream_of(const qt_simprov *s, int model)
{
    for (size_t i = 0; i < s->d->n_models; i++)
        if (s->d->models[i].name == model)
            return s->d->models[i].upstream;
    return model;
}

static int attempt_on(const qt_simprov *s, const qt_trace_attempt *a, int prov, int up)
{
    return a->provider == prov && upstream_of(s, a->model) == up;
}

/* Windows without recorded attempts between two failing ones (an open
 * circuit sends nothing during an outage) fail with the smaller share of
 * the two, when the gap is at most GAP_MAX windows. */
#define GAP_MAX 30
static void fill_gaps(key *k)
{
    size_t prev = SIZE_MAX;
    for (size_t i = 0; i < k->n_win; i++) {
        if (!k->win[i].known)
            continue;
        if (prev != SIZE_MAX && i - prev > 1 && i - prev <= GAP_MAX + 1 && k->win[prev].errors
            && k->win[i].errors) {
            const window *a = &k->win[prev], *b = &k->win[i];
            int a_less = (uint64_t)a->errors * b->known < (uint64_t)b->errors * a->known;
            for (size_t g = prev + 1; g < i; g++)
                k->win[g] = a_less ? *a : *b;
        }
        prev = i;
    }
}

/* Fills a model key's limits, latency pool and error windows from the recording. */
static void learn(qt_simprov *s, key *k, const char *provider, const char *model)
{
    const qt_trace_data *d = s->d;
    int prov = qt_trace_find(d, provider), up = qt_trace_find(d, model);
    for (size_t i = 0; i < d->n_models; i++) {
        const qt_trace_model *m = &d->models[i];
        int has = 0;
        for (int p = 0; p < m->n_providers; p++)
            has |= m->providers[p] == prov;
        if (up >= 0 && m->upstream == up && (has || prov < 0)) {
            k->rpm = (uint64_t)m->rpm;
            k->tpm = (uint64_t)m->tpm;
            break;
        }
    }
    if (prov < 0 || up < 0)
        return;
    /* What the provider announced beats what quotatop was told: the latest
     * attempt on this key whose headers carried its limits. */
    const qt_trace_attempt *seen = NULL;
    for (size_t i = 0; i < d->n_att; i++) {
        const qt_trace_attempt *a = &d->att[i];
        if ((a->limit_rpm || a->limit_tpm) && attempt_on(s, a, prov, up) && (!seen || a->t_ms >= seen->t_ms))
            seen = a;
    }
    if (seen) {
        k->rpm = seen->limit_rpm;
        k->tpm = seen->limit_tpm;
        k->source = QT_SIM_LIMITS_HEADERS;
    }
    size_t n_ok = 0, last_w = 0;
    for (size_t i = 0; i < d->n_att; i++)
        if (attempt_on(s, &d->att[i], prov, up)) {
            n_ok += d->att[i].status >= 200 && d->att[i].status < 300;
            if (d->att[i].t_ms / WINDOW_MS + 1 > last_w)
                last_w = d->att[i].t_ms / WINDOW_MS + 1;
        }
    k->pool = n_ok ? malloc(n_ok * sizeof *k->pool) : NULL;
    k->win = last_w ? calloc(last_w, sizeof *k->win) : NULL;
    k->n_win = k->win ? last_w : 0;
    for (size_t i = 0; i < d->n_att; i++) {
        const qt_trace_attempt *a = &d->att[i];
        if (!attempt_on(s, a, prov, up))
            continue;
        int ok = a->status >= 200 && a->status < 300;
        if (ok && k->pool)
            k->pool[k->n_pool++] = (sample){ a->ttfb_ms, a->total_ms, a->completion };
        if (a->status < 0 || a->status == 429 || !k->win)
            continue;
        window *w = &k->win[a->t_ms / WINDOW_MS];
        w->known++;
        if (!ok) {
            w->errors++;
            w->status = a->status;
            w->err_total_ms = a->total_ms;
        }
    }
    fill_gaps(k);
}

static int find_key(qt_simprov *s, const char *provider, const char *model)
{
    char name[140];
    if (model)
        snprintf(name, sizeof name, "%s/%s", provider, model);
    else
        snprintf(name, sizeof name, "%s", provider);
    uint64_t h = qt_hash_str(QT_HASH_SEED, name);
    for (size_t i = 0; i < s->n_keys; i++)
        if (s->keys[i].hash == h && !strcmp(s->keys[i].name, name))
            return (int)i;
    if (s->n_keys >= MAX_KEYS)
        return -1;
    int up = model ? find_key(s, provider, NULL) : -1;   /* before the add: keys may move */
    key *nk = realloc(s->keys, (s->n_keys + 1) * sizeof *nk);
    if (!nk)
        return -1;
    s->keys = nk;
    key *k = &s->keys[s->n_keys];
    memset(k, 0, sizeof *k);
    snprintf(k->name, sizeof k->name, "%s", name);
    k->hash = h;
    k->provider_only = !model;
    k->up_key = up;
    if (model) {
        learn(s, k, provider, model);
    } else {
        int prov = qt_trace_find(s->d, provider);
        for (size_t i = 0; i < s->d->n_providers; i++)
            if (s->d->providers[i].name == prov) {
                k->rpm = (uint64_t)s->d->providers[i].rpm;
                k->tpm = (uint64_t)s->d->providers[i].tpm;
            }
    }
    for (size_t i = 0; i < s->n_ovr; i++)
        if (!strcmp(s->ovr[i].name, name)) {
            k->rpm = s->ovr[i].rpm;
            k->tpm = s->ovr[i].tpm;
            k->source = QT_SIM_LIMITS_OVERRIDE;
        }
    k->req.level = cap_of(k->rpm);
    k->tok.level = cap_of(k->tpm);
    return (int)s->n_keys++;
}

qt_simprov *qt_simprov_new(const qt_trace_data *d, uint64_t seed)
{
    qt_simprov *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->d = d;
    s->rng = seed ? seed : 0x5eed;
    return s;
}

qt_err qt_simprov_set_limits(qt_simprov *s, const char *provider, const char *model, uint64_t rpm,
                             uint64_t tpm)
{
    override *n = realloc(s->ovr, (s->n_ovr + 1) * sizeof *n);
    if (!n)
        return QT_ERR_NOMEM;
    s->ovr = n;
    override *o = &s->ovr[s->n_ovr++];
    if (model)
        snprintf(o->name, sizeof o->name, "%s/%s", provider, model);
    else
        snprintf(o->name, sizeof o->name, "%s", provider);
    o->rpm = rpm;
    o->tpm = tpm;
    return QT_OK;
}

void qt_simprov_free(qt_simprov *s)
{
    if (!s)
        return;
    free(s->ovr);
    for (size_t i = 0; i < s->n_keys; i++) {
        free(s->keys[i].pool);
        free(s->keys[i].win);
        free(s->keys[i].sec_req);
        free(s->keys[i].sec_tok);
    }
    free(s->keys);
    free(s);
}

/* Counts what was sent in second now/1000. */
static void count_sent(key *k, uint64_t now, uint64_t tokens)
{
    k->requests++;
    uint64_t sec = now / 1000;
    if (sec >= MAX_SECONDS)
        return;
    if (sec >= k->cap_sec) {
        size_t nc = k->cap_sec ? k->cap_sec : 1024;
        while (nc <= sec)
            nc *= 2;
        uint32_t *r = realloc(k->sec_req, nc * sizeof *r);
        if (!r)
            return;
        k->sec_req = r;
        uint32_t *t = realloc(k->sec_tok, nc * sizeof *t);
        if (!t)
            return;
        k->sec_tok = t;
        memset(r + k->cap_sec, 0, (nc - k->cap_sec) * sizeof *r);
        memset(t + k->cap_sec, 0, (nc - k->cap_sec) * sizeof *t);
        k->cap_sec = nc;
    }
    k->sec_req[sec]++;
    k->sec_tok[sec] += tokens > UINT32_MAX ? UINT32_MAX : (uint32_t)tokens;
    if (sec + 1 > k->n_sec)
        k->n_sec = sec + 1;
}

static double draw(qt_simprov *s)
{
    return qt_rand01(&s->rng);
}

/* A recorded error at this time, drawn with the recorded share: 1 and the
 * status / latency in a, else 0. */
static int recorded_error(qt_simprov *s, const key *k, uint64_t now, qt_sim_answer *a)
{
    size_t w = now / WINDOW_MS;
    if (w >= k->n_win || !k->win[w].known || !k->win[w].errors)
        return 0;
    if (draw(s) * k->win[w].known >= k->win[w].errors)
        return 0;
    a->status = k->win[w].status;
    a->total_ms = k->win[w].err_total_ms;
    a->ttfb_ms = a->total_ms;
    return 1;
}

/* The answer of an admitted request: the job's own recorded answer when it
 * came from this key, else a draw from the key's pool. */
static void answer_ok(qt_simprov *s, const key *k, const qt_sim_req *r, const qt_trace_req *job,
                      int64_t max_tokens, qt_sim_answer *a)
{
    a->status = 200;
    const qt_trace_attempt *own = NULL;
    if (job && job->status == QT_STATUS_OK && job->n_att) {
        const qt_trace_attempt *last = &s->d->att[job->att0 + job->n_att - 1];
        int prov = qt_trace_find(s->d, r->provider), up = qt_trace_find(s->d, r->model);
        if (attempt_on(s, last, prov, up))
            own = last;
    }
    if (own) {
        a->ttfb_ms = own->ttfb_ms;
        a->total_ms = own->total_ms;
    } else if (k->n_pool) {
        const sample *p = &k->pool[(size_t)(draw(s) * (double)k->n_pool) % k->n_pool];
        a->ttfb_ms = p->ttfb;
        a->total_ms = p->total;
        if (!job || job->completion <= 0)
            a->completion_tokens = p->completion;
    } else {
        a->ttfb_ms = a->total_ms = 1000;   /* nothing recorded: a plausible second */
    }
    if (job && job->completion > 0)
        a->completion_tokens = job->completion;
    else if (own)
        a->completion_tokens = own->completion;   /* may be 0: an embeddings answer */
    if (a->completion_tokens <= 0 && !own)
        a->completion_tokens = 16;
    if (max_tokens > 0 && a->completion_tokens > max_tokens)
        a->completion_tokens = max_tokens;
    if (a->ttfb_ms > a->total_ms)
        a->ttfb_ms = a->total_ms;
}

void qt_simprov_request(qt_simprov *s, const qt_sim_req *r, uint64_t now, qt_sim_answer *a)
{
    memset(a, 0, sizeof *a);
    const qt_trace_req *job = r->job >= 0 && (size_t)r->job < s->d->n_reqs ? &s->d->reqs[r->job] : NULL;
    int64_t prompt = r->prompt_tokens >= 0 ? r->prompt_tokens
                     : job && job->prompt > 0 ? job->prompt
                     : (int64_t)((job ? job->chars : r->chars) + 3) / 4;
    int64_t mt = r->max_tokens > 0 ? r->max_tokens : job ? job->completion : 0;
    uint64_t cost = (uint64_t)(prompt + mt);
    a->prompt_tokens = prompt;
    int ki = find_key(s, r->provider, r->model);
    if (ki < 0) {                     /* too many keys: answer without limits */
        answer_ok(s, &(key){ 0 }, r, job, mt, a);
        return;
    }
    key *k = &s->keys[ki], *pk = k->up_key >= 0 ? &s->keys[k->up_key] : NULL;
    count_sent(k, now, cost);
    if (pk)
        count_sent(pk, now, cost);
    if (recorded_error(s, k, now, a)) {
        k->errors++;
        return;
    }
    key *ks[2] = { k, pk };
    uint64_t wait = 0;
    for (int i = 0; i < 2; i++) {
        if (!ks[i])
            continue;
        refill(&ks[i]->req, ks[i]->rpm, now);
        refill(&ks[i]->tok, ks[i]->tpm, now);
        uint64_t wr, wt;
        int fr = fits(&ks[i]->req, ks[i]->rpm, 1, &wr), ft = fits(&ks[i]->tok, ks[i]->tpm, cost, &wt);
        if (!fr || !ft) {
            a->status = 429;
            a->limited_on = !fr ? 'r' : 't';
            if ((wr > wt ? wr : wt) > wait)
                wait = wr > wt ? wr : wt;
        }
    }
    if (a->status != 429) {
        for (int i = 0; i < 2; i++)
            if (ks[i]) {
                if (ks[i]->rpm)
                    ks[i]->req.level -= 1.0;
                if (ks[i]->tpm)
                    ks[i]->tok.level -= (double)cost;
            }
        answer_ok(s, k, r, job, mt, a);
    } else {
        k->rate_limited++;
        a->retry_after_ms = wait;
        a->total_ms = a->ttfb_ms = 1;
    }
    a->rpm = k->rpm;
    a->tpm = k->tpm;
    a->rem_req = k->rpm ? remaining(&k->req, k->rpm) : 0;
    a->rem_tok = k->tpm ? remaining(&k->tok, k->tpm) : 0;
    a->reset_req_ms = reset_ms(&k->req, k->rpm);
    a->reset_tok_ms = reset_ms(&k->tok, k->tpm);
}

/* The most of a per-second series in any 60 consecutive seconds. */
static uint64_t peak60(const uint32_t *v, size_t n)
{
    uint64_t sum = 0, best = 0;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        if (i >= 60)
            sum -= v[i - 60];
        if (sum > best)
            best = sum;
    }
    return best;
}

size_t qt_simprov_stats(const qt_simprov *s, qt_sim_key_stats *out, size_t max)
{
    for (size_t i = 0; i < s->n_keys && i < max; i++) {
        const key *k = &s->keys[i];
        qt_sim_key_stats *o = &out[i];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "%s", k->name);
        o->rpm = k->rpm;
        o->tpm = k->tpm;
        o->source = k->source;
        o->peak_rpm = peak60(k->sec_req, k->n_sec);
        o->peak_tpm = peak60(k->sec_tok, k->n_sec);
        o->requests = k->requests;
        o->rate_limited = k->rate_limited;
        o->errors = k->errors;
    }
    return s->n_keys;
}

size_t qt_simprov_sent_series(const qt_simprov *s, uint32_t *out, size_t max)
{
    size_t secs = 0;
    for (size_t i = 0; i < s->n_keys; i++)
        if (!s->keys[i].provider_only && s->keys[i].n_sec > secs)
            secs = s->keys[i].n_sec;
    for (size_t t = 0; t < secs && t < max; t++)
        out[t] = 0;
    for (size_t i = 0; i < s->n_keys; i++) {
        const key *k = &s->keys[i];
        if (k->provider_only)
            continue;
        for (size_t t = 0; t < k->n_sec && t < max; t++)
            out[t] += k->sec_req[t];
    }
    return secs;
}
