/* metrics.c: counters, histograms, per-second histories, snapshots.
 *
 * DESIGN
 * Three growable arrays of series (models, providers: `target`; workflows:
 * qt_metrics_workflow itself) and one totals struct, all behind one mutex.
 * Indices handed out at registration are positions in those arrays, so a
 * writer's update is a few additions at a known address under the lock.
 * Registration scans the names linearly: there are tens of series, and it
 * happens at startup or on the first request of a new workflow.
 *
 * Per-second history: a target keeps two rings of 120 uint32 slots indexed by
 * second % 120 and `hist_sec`, the newest second written. Writing second s > hist_sec
 * first clears the slots of the skipped seconds (at most 120), so a ring is
 * never rescanned by a timer; a write older than hist_sec - 119 is dropped. The
 * snapshot reads the window ending at its own now_ms, treating slots outside
 * (hist_sec - 120, hist_sec] as zero, so an idle series reads as zeros.
 *
 * Latency: a fixed-bucket histogram (Prometheus `le` semantics) plus a ring
 * of the last QT_METRICS_SAMPLES latencies. qt_metrics_snapshot_take copies
 * the rings out under the lock and sorts them after unlocking for exact
 * nearest-rank p50/p95/p99 over recent traffic.
 *
 * Snapshot allocation happens outside the lock: size the arrays, allocate,
 * lock, and retry if a series was registered in between.
 */
#include "quotatop/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const double qt_metrics_latency_bounds_s[QT_METRICS_LAT_BUCKETS] = {
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

static const uint64_t bounds_ms[QT_METRICS_LAT_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};

#define HIST QT_METRICS_HISTORY_S
#define NSAMP QT_METRICS_SAMPLES

typedef struct {
    char name[QT_METRICS_NAME_LEN];
    uint64_t requests[QT_OUTCOME__COUNT];
    uint64_t requests_total;
    uint64_t prompt_tokens, completion_tokens;
    uint64_t cached_tokens, cache_write_tokens;
    uint64_t retries, fallbacks;
    double cost_usd;
    uint64_t buckets[QT_METRICS_LAT_BUCKETS + 1];
    uint64_t lat_count;
    double lat_sum_s;
    uint32_t samples[NSAMP];   /* recent latencies (ms), ring */
    uint32_t sample_pos;       /* next slot to write */
    uint32_t nsamples;         /* valid samples (<= NSAMP) */
    uint64_t hist_sec;         /* newest second written; valid if hist_any */
    int hist_any;
    uint32_t rps[HIST];        /* slot = second % HIST */
    uint32_t tps[HIST];
} target;

typedef struct {
    target *v;
    size_t n, cap;
} target_set;

struct qt_metrics {
    pthread_mutex_t mu;
    uint64_t start_ms;
    target_set models, providers;
    qt_metrics_workflow *wfs;
    size_t nwfs, wfs_cap;
    qt_metrics_totals totals;
};

static void copy_name(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n >= QT_METRICS_NAME_LEN)
        n = QT_METRICS_NAME_LEN - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* True when name, truncated as registration would, equals stored. */
static int name_eq(const char *stored, const char *name)
{
    return strncmp(stored, name, QT_METRICS_NAME_LEN - 1) == 0;
}

qt_metrics *qt_metrics_new(uint64_t start_ms)
{
    qt_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->start_ms = start_ms;
    return m;
}

void qt_metrics_free(qt_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m->models.v);
    free(m->providers.v);
    free(m->wfs);
    free(m);
}

static int target_index(qt_metrics *m, target_set *set, const char *name)
{
    if (!m || !name)
        return -1;
    int idx = -1;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < set->n; i++)
        if (name_eq(set->v[i].name, name)) {
            idx = (int)i;
            goto out;
        }
    if (set->n == set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 8;
        target *nv = realloc(set->v, ncap * sizeof *nv);
        if (!nv)
            goto out;
        set->v = nv;
        set->cap = ncap;
    }
    memset(&set->v[set->n], 0, sizeof set->v[set->n]);
    copy_name(set->v[set->n].name, name);
    idx = (int)set->n++;
out:
    pthread_mutex_unlock(&m->mu);
    return idx;
}

int qt_metrics_model_index(qt_metrics *m, const char *name)
{
    return m ? target_index(m, &m->models, name) : -1;
}

int qt_metrics_provider_index(qt_metrics *m, const char *name)
{
    return m ? target_index(m, &m->providers, name) : -1;
}

int qt_metrics_workflow_index(qt_metrics *m, const char *name)
{
    if (!m || !name)
        return -1;
    int idx = -1;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nwfs; i++)
        if (name_eq(m->wfs[i].name, name)) {
            idx = (int)i;
            goto out;
        }
    if (m->nwfs == m->wfs_cap) {
        size_t ncap = m->wfs_cap ? m->wfs_cap * 2 : 8;
        qt_metrics_workflow *nw = realloc(m->wfs, ncap * sizeof *nw);
        if (!nw)
            goto out;
        m->wfs = nw;
        m->wfs_cap = ncap;
    }
    memset(&m->wfs[m->nwfs], 0, sizeof m->wfs[m->nwfs]);
    copy_name(m->wfs[m->nwfs].name, name);
    idx = (int)m->nwfs++;
out:
    pthread_mutex_unlock(&m->mu);
    return idx;
}

/* Returns the target at idx or NULL when idx is out of range. Lock held. */
static target *target_at(target_set *set, int idx)
{
    return (idx >= 0 && (size_t)idx < set->n) ? &set->v[idx] : NULL;
}

static qt_metrics_workflow *wf_at(qt_metrics *m, int idx)
{
    return (idx >= 0 && (size_t)idx < m->nwfs) ? &m->wfs[idx] : NULL;
}

static uint32_t sat32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void add32(uint32_t *slot, uint64_t v)
{
    *slot = sat32((uint64_t)*slot + v);
}

/* Adds one request and `tokens` to the history at second sec. Lock held. */
static void history_add(target *t, uint64_t sec, uint64_t tokens)
{
    if (!t->hist_any) {
        memset(t->rps, 0, sizeof t->rps);
        memset(t->tps, 0, sizeof t->tps);
        t->hist_sec = sec;
        t->hist_any = 1;
    } else if (sec > t->hist_sec) {
        uint64_t gap = sec - t->hist_sec;
        if (gap > HIST)
            gap = HIST;
        for (uint64_t s = sec - gap + 1; s <= sec; s++) {
            t->rps[s % HIST] = 0;
            t->tps[s % HIST] = 0;
        }
        t->hist_sec = sec;
    } else if (t->hist_sec - sec >= HIST) {
        return; /* older than the window */
    }
    add32(&t->rps[sec % HIST], 1);
    add32(&t->tps[sec % HIST], tokens);
}

static void target_record(target *t, const qt_metrics_request *r, size_t bucket,
                          uint64_t now_ms)
{
    t->requests[r->outcome]++;
    t->requests_total++;
    t->prompt_tokens += r->prompt_tokens;
    t->completion_tokens += r->completion_tokens;
    t->cached_tokens += r->cached_tokens;
    t->cache_write_tokens += r->cache_write_tokens;
    t->cost_usd += r->cost_usd;
    t->buckets[bucket]++;
    t->lat_count++;
    t->lat_sum_s += (double)r->latency_ms / 1000.0;
    t->samples[t->sample_pos] = sat32(r->latency_ms);
    t->sample_pos = (t->sample_pos + 1) % NSAMP;
    if (t->nsamples < NSAMP)
        t->nsamples++;
    history_add(t, now_ms / 1000, r->prompt_tokens + r->completion_tokens);
}

void qt_metrics_record_request(qt_metrics *m, const qt_metrics_request *r,
                               uint64_t now_ms)
{
    if (!m || !r || (unsigned)r->outcome >= QT_OUTCOME__COUNT)
        return;
    size_t bucket = QT_METRICS_LAT_BUCKETS;
    for (size_t i = 0; i < QT_METRICS_LAT_BUCKETS; i++)
        if (r->latency_ms <= bounds_ms[i]) {
            bucket = i;
            break;
        }
    pthread_mutex_lock(&m->mu);
    target *t;
    if ((t = target_at(&m->models, r->model)))
        target_record(t, r, bucket, now_ms);
    if ((t = target_at(&m->providers, r->provider)))
        target_record(t, r, bucket, now_ms);
    qt_metrics_workflow *w = wf_at(m, r->workflow);
    if (w) {
        w->calls++;
        w->calls_ok += r->outcome == QT_OUTCOME_OK;
        w->prompt_tokens += r->prompt_tokens;
        w->completion_tokens += r->completion_tokens;
        w->cost_usd += r->cost_usd;
    }
    qt_metrics_totals *g = &m->totals;
    g->requests[r->outcome]++;
    g->requests_total++;
    g->prompt_tokens += r->prompt_tokens;
    g->completion_tokens += r->completion_tokens;
    g->cached_tokens += r->cached_tokens;
    g->cache_write_tokens += r->cache_write_tokens;
    g->cost_usd += r->cost_usd;
    pthread_mutex_unlock(&m->mu);
}

void qt_metrics_record_retry(qt_metrics *m, int model, int provider, int workflow)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    target *t;
    if ((t = target_at(&m->models, model)))
        t->retries++;
    if ((t = target_at(&m->providers, provider)))
        t->retries++;
    qt_metrics_workflow *w = wf_at(m, workflow);
    if (w)
        w->retries++;
    m->totals.retries++;
    pthread_mutex_unlock(&m->mu);
}

void qt_metrics_record_fallback(qt_metrics *m, int from_model, int workflow)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    target *t = target_at(&m->models, from_model);
    if (t)
        t->fallbacks++;
    qt_metrics_workflow *w = wf_at(m, workflow);
    if (w)
        w->fallbacks++;
    m->totals.fallbacks++;
    pthread_mutex_unlock(&m->mu);
}

void qt_metrics_record_job(qt_metrics *m, int workflow, qt_job_status status)
{
    if (!m || (unsigned)status >= QT_JOB__COUNT)
        return;
    pthread_mutex_lock(&m->mu);
    qt_metrics_workflow *w = wf_at(m, workflow);
    if (w)
        w->jobs[status]++;
    m->totals.jobs[status]++;
    m->totals.jobs_total++;
    pthread_mutex_unlock(&m->mu);
}

void qt_metrics_count(qt_metrics *m, qt_counter c, uint64_t n)
{
    if (!m || (unsigned)c >= QT_COUNTER__COUNT)
        return;
    pthread_mutex_lock(&m->mu);
    m->totals.counters[c] += n;
    pthread_mutex_unlock(&m->mu);
}

void qt_metrics_gauge_set(qt_metrics *m, qt_gauge g, int64_t value)
{
    if (!m || (unsigned)g >= QT_GAUGE__COUNT)
        return;
    pthread_mutex_lock(&m->mu);
    m->totals.gauges[g] = value;
    pthread_mutex_unlock(&m->mu);
}

/* Copies target t into snapshot series s (histories as of now_sec) and its
 * samples into samp (returns how many). Lock held. */
static size_t target_copy(const target *t, qt_metrics_series *s, uint64_t now_sec,
                          uint32_t *samp)
{
    memcpy(s->name, t->name, sizeof s->name);
    memcpy(s->requests, t->requests, sizeof s->requests);
    s->requests_total = t->requests_total;
    s->prompt_tokens = t->prompt_tokens;
    s->completion_tokens = t->completion_tokens;
    s->cached_tokens = t->cached_tokens;
    s->cache_write_tokens = t->cache_write_tokens;
    s->retries = t->retries;
    s->fallbacks = t->fallbacks;
    s->cost_usd = t->cost_usd;
    memcpy(s->latency_buckets, t->buckets, sizeof s->latency_buckets);
    s->latency_count = t->lat_count;
    s->latency_sum_s = t->lat_sum_s;
    for (size_t i = 0; i < HIST; i++) {
        uint64_t back = HIST - 1 - i; /* seconds before now_sec */
        s->rps[i] = s->tps[i] = 0;
        if (!t->hist_any || back > now_sec)
            continue;
        uint64_t sec = now_sec - back;
        if (sec <= t->hist_sec && t->hist_sec - sec < HIST) {
            s->rps[i] = t->rps[sec % HIST];
            s->tps[i] = t->tps[sec % HIST];
        }
    }
    memcpy(samp, t->samples, t->nsamples * sizeof *samp);
    return t->nsamples;
}

qt_err qt_metrics_snapshot_take(qt_metrics *m, uint64_t now_ms,
                                qt_metrics_snapshot *out)
{
    if (!out)
        return QT_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!m)
        return QT_ERR_INVALID;
    size_t nm, np, nw;
    uint32_t *samp = NULL;
    size_t *nsamp = NULL;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        nm = m->models.n;
        np = m->providers.n;
        nw = m->nwfs;
        pthread_mutex_unlock(&m->mu);
        size_t nt = nm + np;
        out->models = nm ? calloc(nm, sizeof *out->models) : NULL;
        out->providers = np ? calloc(np, sizeof *out->providers) : NULL;
        out->workflows = nw ? calloc(nw, sizeof *out->workflows) : NULL;
        samp = nt ? malloc(nt * NSAMP * sizeof *samp) : NULL;
        nsamp = nt ? calloc(nt, sizeof *nsamp) : NULL;
        if ((nm && !out->models) || (np && !out->providers) || (nw && !out->workflows) ||
            (nt && (!samp || !nsamp))) {
            free(samp);
            free(nsamp);
            qt_metrics_snapshot_free(out);
            return QT_ERR_NOMEM;
        }
        pthread_mutex_lock(&m->mu);
        if (m->models.n == nm && m->providers.n == np && m->nwfs == nw)
            break;
        /* a series was registered meanwhile: size again */
        pthread_mutex_unlock(&m->mu);
        free(samp);
        free(nsamp);
        qt_metrics_snapshot_free(out);
        pthread_mutex_lock(&m->mu);
    }
    uint64_t now_sec = now_ms / 1000;
    for (size_t i = 0; i < nm; i++)
        nsamp[i] = target_copy(&m->models.v[i], &out->models[i], now_sec,
                               samp + i * NSAMP);
    for (size_t i = 0; i < np; i++)
        nsamp[nm + i] = target_copy(&m->providers.v[i], &out->providers[i], now_sec,
                                    samp + (nm + i) * NSAMP);
    if (nw)
        memcpy(out->workflows, m->wfs, nw * sizeof *out->workflows);
    out->totals = m->totals;
    out->start_ms = m->start_ms;
    pthread_mutex_unlock(&m->mu);

    /* percentiles on the copy, outside the lock */
    out->now_ms = now_ms;
    out->n_models = nm;
    out->n_providers = np;
    out->n_workflows = nw;
    for (size_t i = 0; i < nm + np; i++) {
        qt_metrics_series *s = i < nm ? &out->models[i] : &out->providers[i - nm];
        uint32_t *v = samp + i * NSAMP;
        s->samples = nsamp[i];
        s->p50_ms = qt_metrics_percentile(v, nsamp[i], 50);
        s->p95_ms = qt_metrics_percentile(v, nsamp[i], 95); /* already sorted */
        s->p99_ms = qt_metrics_percentile(v, nsamp[i], 99);
    }
    free(samp);
    free(nsamp);
    return QT_OK;
}

void qt_metrics_snapshot_free(qt_metrics_snapshot *s)
{
    if (!s)
        return;
    free(s->models);
    free(s->providers);
    free(s->workflows);
    memset(s, 0, sizeof *s);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

double qt_metrics_percentile(uint32_t *values, size_t n, double pct)
{
    if (!values || n == 0)
        return -1;
    /* cheap check first: sorting an already sorted array is common here */
    size_t i = 1;
    while (i < n && values[i - 1] <= values[i])
        i++;
    if (i < n)
        qsort(values, n, sizeof *values, cmp_u32);
    if (pct <= 0)
        return values[0];
    if (pct >= 100)
        return values[n - 1];
    double rank = pct / 100.0 * (double)n; /* nearest rank: ceil(rank) - 1 */
    size_t k = (size_t)rank;
    if ((double)k < rank)
        k++;
    if (k == 0)
        k = 1;
    return values[k - 1];
}

double qt_metrics_bucket_quantile(const uint64_t buckets[QT_METRICS_LAT_BUCKETS + 1],
                                  double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= QT_METRICS_LAT_BUCKETS; i++)
        total += buckets[i];
    if (total == 0)
        return -1;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    double rank = q * (double)total;
    uint64_t cum = 0;
    for (size_t i = 0; i < QT_METRICS_LAT_BUCKETS; i++) {
        if (buckets[i] > 0 && (double)(cum + buckets[i]) >= rank) {
            double lo = i ? qt_metrics_latency_bounds_s[i - 1] : 0;
            double hi = qt_metrics_latency_bounds_s[i];
            return lo + (hi - lo) * (rank - (double)cum) / (double)buckets[i];
        }
        cum += buckets[i];
    }
    return qt_metrics_latency_bounds_s[QT_METRICS_LAT_BUCKETS - 1];
}

const char *qt_outcome_name(qt_outcome o)
{
    static const char *names[QT_OUTCOME__COUNT] = {
        "ok", "rate_limited", "server_error", "timeout", "client_error", "other"};
    return (unsigned)o < QT_OUTCOME__COUNT ? names[o] : "unknown";
}

const char *qt_job_status_name(qt_job_status s)
{
    static const char *names[QT_JOB__COUNT] = {
        "ok", "failed", "rejected", "cancelled", "invalid"};
    return (unsigned)s < QT_JOB__COUNT ? names[s] : "unknown";
}
