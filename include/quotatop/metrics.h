/* metrics.h: counters, latency histograms and per-second histories for the
 * dashboard, the run summary and Prometheus (/metrics).
 *
 * Series are registered by name (models, providers, workflows) and then
 * addressed by the returned index, so the hot path does no string work.
 * Workers record one qt_metrics_request per attempt that reached (or tried to
 * reach) a provider, plus retries, fallbacks, job outcomes and global
 * counters/gauges. Readers take a qt_metrics_snapshot: one consistent copy of
 * everything, into caller-owned plain memory; latency percentiles (p50, p95,
 * p99 over each series' most recent QT_METRICS_SAMPLES latencies) are sorted
 * and computed on the copy after the lock is released.
 *
 * Histories: per model and provider, requests and tokens per second over the
 * last QT_METRICS_HISTORY_S seconds, keyed by now_ms / 1000 of the monotonic
 * now_ms the writer passes in (a ring of 120 slots; a slot is cleared when its
 * second comes round again). Writes for a second already out of the window
 * are dropped from the history (still counted in the totals).
 *
 * Thread-safety: every function may be called from any thread. One internal
 * mutex guards all series; writers hold it for a few additions, the snapshot
 * for a memcpy-sized copy (no allocation, sorting or formatting under it).
 * qt_metrics_new/free are not concurrent with other calls on the same object.
 */
#ifndef QT_METRICS_H
#define QT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"

typedef struct qt_metrics qt_metrics;

#define QT_METRICS_NAME_LEN 64     /* longer names are truncated */
#define QT_METRICS_HISTORY_S 120   /* seconds of per-second history */
#define QT_METRICS_LAT_BUCKETS 10  /* finite latency buckets (+Inf extra) */
#define QT_METRICS_SAMPLES 512     /* recent latencies kept for percentiles */

/* Upper bounds of the latency buckets in seconds, for Prometheus `le`:
 * 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 (and +Inf). */
extern const double qt_metrics_latency_bounds_s[QT_METRICS_LAT_BUCKETS];

/* How an attempt ended. */
typedef enum {
    QT_OUTCOME_OK = 0,
    QT_OUTCOME_RATE_LIMITED,  /* 429 (and 529 overloaded) */
    QT_OUTCOME_SERVER_ERROR,  /* 5xx */
    QT_OUTCOME_TIMEOUT,       /* timeout or connection failure */
    QT_OUTCOME_CLIENT_ERROR,  /* other 4xx: fatal */
    QT_OUTCOME_OTHER,         /* anything else (parse error, cancelled...) */
    QT_OUTCOME__COUNT
} qt_outcome;

/* Final status of a job (one per job, as in results.jsonl). */
typedef enum {
    QT_JOB_OK = 0,
    QT_JOB_FAILED,
    QT_JOB_REJECTED,
    QT_JOB_CANCELLED,
    QT_JOB_INVALID,
    QT_JOB__COUNT
} qt_job_status;

/* Global counters without a series. */
typedef enum {
    QT_COUNTER_CIRCUIT_TRANSITIONS = 0,
    QT_COUNTER_CACHE_HITS,
    QT_COUNTER_BUDGET_REJECTIONS,
    QT_COUNTER__COUNT
} qt_counter;

/* Global gauges (last value set wins). */
typedef enum {
    QT_GAUGE_QUEUE_DEPTH = 0,
    QT_GAUGE_INFLIGHT,
    QT_GAUGE_WORKERS_BUSY,
    QT_GAUGE_WAITING_LIMITER,
    QT_GAUGE__COUNT
} qt_gauge;

/* One attempt. Indices are from the qt_metrics_*_index functions; -1 means
 * "no such series" (the global totals still count it). */
typedef struct {
    int model, provider, workflow;
    qt_outcome outcome;
    uint64_t latency_ms;
    uint64_t prompt_tokens, completion_tokens;
    double cost_usd;
    uint64_t cached_tokens;       /* of prompt_tokens: read from the provider's prompt cache */
    uint64_t cache_write_tokens;  /* of prompt_tokens: written to it (Anthropic) */
} qt_metrics_request;

/* Snapshot of one model or provider series. */
typedef struct {
    char name[QT_METRICS_NAME_LEN];
    uint64_t requests[QT_OUTCOME__COUNT];  /* attempts by outcome */
    uint64_t requests_total;
    uint64_t prompt_tokens, completion_tokens;
    uint64_t cached_tokens, cache_write_tokens;   /* parts of prompt_tokens */
    uint64_t retries, fallbacks;           /* fallbacks: moves away from it */
    double cost_usd;
    uint64_t latency_buckets[QT_METRICS_LAT_BUCKETS + 1]; /* per bucket, NOT
                                 cumulative; [LAT_BUCKETS] = above 60 s */
    uint64_t latency_count;
    double latency_sum_s;
    double p50_ms, p95_ms, p99_ms;         /* over the recent samples; -1
                                              when there are none */
    size_t samples;                        /* how many samples they used */
    uint32_t rps[QT_METRICS_HISTORY_S];    /* requests per second, oldest
                                              first; [119] = the snapshot's
                                              second */
    uint32_t tps[QT_METRICS_HISTORY_S];    /* tokens (prompt + completion) */
} qt_metrics_series;

/* Snapshot of one workflow. */
typedef struct {
    char name[QT_METRICS_NAME_LEN];
    uint64_t calls;                        /* attempts */
    uint64_t calls_ok;
    uint64_t prompt_tokens, completion_tokens;
    uint64_t retries, fallbacks;
    double cost_usd;
    uint64_t jobs[QT_JOB__COUNT];          /* final job statuses */
} qt_metrics_workflow;

/* Totals over everything (including attempts with no series). */
typedef struct {
    uint64_t requests[QT_OUTCOME__COUNT];
    uint64_t requests_total;
    uint64_t prompt_tokens, completion_tokens;
    uint64_t cached_tokens, cache_write_tokens;   /* parts of prompt_tokens */
    uint64_t retries, fallbacks;
    double cost_usd;
    uint64_t jobs[QT_JOB__COUNT];
    uint64_t jobs_total;
    uint64_t counters[QT_COUNTER__COUNT];
    int64_t gauges[QT_GAUGE__COUNT];
} qt_metrics_totals;

/* A consistent copy; free with qt_metrics_snapshot_free. */
typedef struct {
    uint64_t now_ms;                 /* the now_ms the snapshot was taken at */
    uint64_t start_ms;               /* the now_ms given to qt_metrics_new */
    qt_metrics_series *models;       size_t n_models;
    qt_metrics_series *providers;    size_t n_providers;
    qt_metrics_workflow *workflows;  size_t n_workflows;
    qt_metrics_totals totals;
} qt_metrics_snapshot;

/* Returns a new empty metrics object whose run started at start_ms
 * (monotonic), or NULL when out of memory. Free with qt_metrics_free. */
qt_metrics *qt_metrics_new(uint64_t start_ms);

/* Frees it. Accepts NULL. */
void qt_metrics_free(qt_metrics *m);

/* Return the index of the model / provider / workflow series with this name,
 * registering it (name copied, truncated to QT_METRICS_NAME_LEN-1) when new.
 * Indices are dense from 0 in order of registration and never change.
 * Returns -1 when name is NULL or out of memory. Meant for startup, but safe
 * at any time. */
int qt_metrics_model_index(qt_metrics *m, const char *name);
int qt_metrics_provider_index(qt_metrics *m, const char *name);
int qt_metrics_workflow_index(qt_metrics *m, const char *name);

/* Records one attempt at monotonic now_ms: outcome counts, tokens, cost,
 * latency (histogram + recent samples), and the per-second histories of its
 * model and provider. Out-of-range indices count only in the totals. */
void qt_metrics_record_request(qt_metrics *m, const qt_metrics_request *r,
                               uint64_t now_ms);

/* Counts a retry / a fallback away from `model` (indices or -1). */
void qt_metrics_record_retry(qt_metrics *m, int model, int provider, int workflow);
void qt_metrics_record_fallback(qt_metrics *m, int from_model, int workflow);

/* Counts a job's final status for its workflow (index or -1) and the totals. */
void qt_metrics_record_job(qt_metrics *m, int workflow, qt_job_status status);

/* Adds n to a global counter / sets a global gauge. */
void qt_metrics_count(qt_metrics *m, qt_counter c, uint64_t n);
void qt_metrics_gauge_set(qt_metrics *m, qt_gauge g, int64_t value);

/* Copies everything into *out as of monotonic now_ms (histories end at
 * now_ms's second), under one lock, then computes percentiles on the copy.
 * Returns QT_OK, or QT_ERR_NOMEM / QT_ERR_INVALID with *out zeroed. The caller
 * owns *out and frees it with qt_metrics_snapshot_free. */
qt_err qt_metrics_snapshot_take(qt_metrics *m, uint64_t now_ms,
                                qt_metrics_snapshot *out);

/* Frees the arrays of a snapshot and zeroes it. Accepts NULL and a zeroed
 * snapshot. */
void qt_metrics_snapshot_free(qt_metrics_snapshot *s);

/* Nearest-rank percentile (0 < pct <= 100) of n values, sorting them in
 * place: the smallest value v with at least pct% of values <= v. Returns -1
 * when n is 0. Pure; no lock. */
double qt_metrics_percentile(uint32_t *values, size_t n, double pct);

/* Estimate of quantile q (0..1) from non-cumulative latency buckets (as in a
 * qt_metrics_series), interpolating linearly inside the bucket, in seconds
 * (Prometheus histogram_quantile style; the +Inf bucket returns 60). Returns
 * -1 when the buckets are empty. Pure; no lock. */
double qt_metrics_bucket_quantile(const uint64_t buckets[QT_METRICS_LAT_BUCKETS + 1],
                                  double q);

/* Static names for Prometheus labels / the summary: "ok", "rate_limited",
 * "server_error", "timeout", "client_error", "other"; "ok", "failed",
 * "rejected", "cancelled", "invalid". "unknown" when out of range. */
const char *qt_outcome_name(qt_outcome o);
const char *qt_job_status_name(qt_job_status s);

#endif /* QT_METRICS_H */
