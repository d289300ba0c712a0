/* replay.h: a loaded request trace (trace_read.c) and the simulated
 * provider of `quotatop replay` (simprov.c).
 *
 * qt_trace_load reads one or more trace files (trace.h: JSON lines, a
 * header per session) into compact arrays: the requests sorted by arrival,
 * times relative to the first arrival, names interned; their attempts; the
 * limits, prices and chains the recording's config gave each model and
 * provider (the last header seen wins for a name).
 *
 * The simulated provider answers one request at a time, given the time:
 * per (provider, upstream model) token buckets exactly like the mock's
 * (src/sim/mock_model.c: a per-minute limit L is a bucket of capacity
 * max(1, L/60) refilled at L/60 per second; a request costs 1 request and
 * prompt + max_tokens tokens; over the limit: 429 with the wait), plus the
 * provider's own buckets; latencies and completion sizes drawn from the
 * recording per model (the job's own recorded answer when it was answered
 * by the same model); recorded errors replayed at their times (per 10 s
 * window, the recorded share of non-429 failures, with their status).
 * The upstream's limits on a (provider, upstream model) key are the ones
 * its rate-limit headers announced in the recording (the latest attempt
 * on that key that carried them: what the provider really enforced), else
 * the recording config's configured limits (before headroom); a
 * provider's own key takes the configured limits.
 *
 * Thread-safety: a qt_trace_data is immutable after load (any thread may
 * read it). A qt_simprov belongs to one thread (the replay's loop); it is
 * pure: the time is an argument, no I/O, no locks, seeded randomness.
 */
#ifndef QT_REPLAY_H
#define QT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"

typedef struct {
    uint64_t t_ms;               /* arrival, ms after the first arrival */
    int wf, model, endpoint;     /* name indices (endpoint: "chat", ...) */
    int prio;
    uint32_t chars;              /* prompt characters (estimator input) */
    int msgs, max_tokens, stream;
    int status;                  /* qt_status of the recorded result */
    int model_used, provider;    /* name indices, -1 none */
    int prompt, completion;      /* tokens counted by the provider */
    double cost_usd;
    uint64_t wait_ms, latency_ms, done_ms;   /* done relative, like t_ms */
    uint32_t att0, n_att;        /* its attempts: att[att0 .. att0 + n_att) */
    int n_attempts;              /* as the result counted them */
    int cached;
} qt_trace_req;

typedef struct {
    int model, provider;         /* name indices (the config's model name) */
    int status;                  /* HTTP status, 0 transport error, -1 unknown */
    uint32_t ttfb_ms, total_ms;
    int prompt, completion;
    uint32_t retry_after_ms;
    uint64_t t_ms;               /* its start, relative (recorded "at_ms"; estimated for
                                    older traces: see trace_read.c) */
    int has_at;                  /* t_ms was recorded, not estimated */
    uint32_t limit_rpm, limit_tpm;   /* per-minute limits the upstream announced, 0 none */
} qt_trace_attempt;

typedef struct {
    int name, upstream;          /* name indices */
    int providers[8];
    int n_providers;
    double rpm, tpm;             /* configured (before headroom), 0 unlimited */
    double in_usd_mtok, out_usd_mtok;
} qt_trace_model;

typedef struct {
    int name;
    double rpm, tpm;
} qt_trace_provider;

typedef struct {
    char **names;                /* interned strings; index = id */
    size_t n_names, cap_names;
    uint32_t *slots;             /* open addressing: id + 1, 0 empty */
    size_t n_slots;
    qt_trace_req *reqs;          /* sorted by t_ms */
    size_t n_reqs, cap_reqs;
    qt_trace_attempt *att;
    size_t n_att, cap_att;
    qt_trace_model *models;
    size_t n_models;
    qt_trace_provider *providers;
    size_t n_providers;
    char config_path[1024];      /* the first session's config ("" none) */
    char config_hash[17];
    uint64_t t0_wall_ms;         /* wall time of the first arrival */
    size_t sessions;             /* header lines read */
    size_t skipped;              /* job lines not replayed (cancelled, malformed, outside --since) */
} qt_trace_data;

/* Reads the files in order (oldest first); keeps jobs that arrived at or
 * after since_wall_ms (0 = all) and are not cancelled or invalid. Returns
 * NULL with a reason in err when no file can be read or none holds a
 * header. The caller frees with qt_trace_data_free. */
qt_trace_data *qt_trace_load(const char *const *paths, size_t n_paths, uint64_t since_wall_ms,
                             char *err, size_t errlen);
void qt_trace_data_free(qt_trace_data *d);   /* accepts NULL */

/* Index of an interned name, -1 when absent. */
int qt_trace_find(const qt_trace_data *d, const char *name);
const char *qt_trace_name(const qt_trace_data *d, int idx);   /* "" for -1 */
/* The recording's model entry of a config model name, NULL when absent. */
const qt_trace_model *qt_trace_model_of(const qt_trace_data *d, const char *name);

/* ---- the simulated provider ---- */

typedef struct qt_simprov qt_simprov;

/* Builds the simulated upstream of a recording: buckets from its limits,
 * latency pools and error windows from its attempts. seed fixes the draws.
 * d must outlive it. NULL when out of memory. */
qt_simprov *qt_simprov_new(const qt_trace_data *d, uint64_t seed);
void qt_simprov_free(qt_simprov *s);   /* accepts NULL */

typedef struct {
    const char *provider;        /* provider name (the replay config's) */
    const char *model;           /* the upstream model name on the wire */
    int64_t prompt_tokens;       /* < 0: use the job's recorded count, else chars / 4 */
    int64_t max_tokens;          /* 0: the job's recorded completion */
    long job;                    /* index into d->reqs, -1 unknown */
    uint32_t chars;              /* prompt characters (for unknown jobs) */
} qt_sim_req;

typedef struct {
    int status;                  /* 200, 429, recorded error status, 0 = transport error */
    uint64_t ttfb_ms, total_ms;  /* when the answer starts / ends, after now */
    int64_t prompt_tokens, completion_tokens;
    uint64_t retry_after_ms;     /* 429: when the request would fit */
    int limited_on;              /* 429: 'r' requests or 't' tokens */
    uint64_t rpm, tpm;           /* the key's limits (0 none): headers */
    uint64_t rem_req, rem_tok, reset_req_ms, reset_tok_ms;
} qt_sim_answer;

/* Overrides the upstream's limits of a key before its first request:
 * model NULL = the provider's own limits. For "what if the provider gave us
 * the next tier" (replay --upstream config). QT_ERR_NOMEM or QT_OK. */
qt_err qt_simprov_set_limits(qt_simprov *s, const char *provider, const char *model, uint64_t rpm,
                             uint64_t tpm);

/* Answers one request arriving at now_ms (ms since the first arrival). */
void qt_simprov_request(qt_simprov *s, const qt_sim_req *r, uint64_t now_ms, qt_sim_answer *a);

typedef struct {
    char name[140];              /* "provider/model" or "provider" */
    uint64_t rpm, tpm;           /* the upstream's limits, 0 none */
    int source;                  /* where they come from: QT_SIM_LIMITS_CONFIG,
                                    _HEADERS (announced in the recording), _OVERRIDE */
    uint64_t peak_rpm, peak_tpm; /* most requests / tokens sent in any 60 s */
    uint64_t requests, rate_limited, errors;
} qt_sim_key_stats;

enum { QT_SIM_LIMITS_CONFIG = 0, QT_SIM_LIMITS_HEADERS, QT_SIM_LIMITS_OVERRIDE };

/* Copies up to max keys' figures; returns how many keys there are. */
size_t qt_simprov_stats(const qt_simprov *s, qt_sim_key_stats *out, size_t max);

/* Requests sent per second over all model keys, from second 0; returns
 * the number of seconds (may exceed max; only max are written). */
size_t qt_simprov_sent_series(const qt_simprov *s, uint32_t *out, size_t max);

#endif /* QT_REPLAY_H */
