/* replay_report.h: what one replay (or the recording itself) came to, and
 * how `quotatop replay` prints it (not a public header).
 *
 * An rp_outcome gathers one result per job (rp_outcome_add: status,
 * workflow, priority, models, cost, queue wait, arrival and end), the
 * engine's counters (requests, 429s, retries, fallbacks), the simulated
 * provider's per-key peaks and per-minute requests. rp_outcome_finish turns
 * the waits into percentiles and the arrivals/waits into a queue depth
 * series. rp_print_table prints one column per outcome; rp_print_json the
 * DESIGN.md replay object.
 *
 * Thread-safety: plain data; one thread.
 */
#ifndef QT_REPLAY_REPORT_H
#define QT_REPLAY_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "quotatop/config.h"
#include "quotatop/jobs.h"
#include "quotatop/replay.h"

#define RP_SERIES 60                 /* sparkline columns */

typedef struct {
    char name[64];
    uint64_t jobs, ok, failed, rejected, other;
    double cost_usd;
    uint32_t *waits;                 /* ms, one per job */
    size_t n_waits, cap_waits;
    uint64_t p50, p95, max;          /* after rp_outcome_finish */
} rp_group;

typedef struct {
    char from[64], to[64];
    uint64_t n;
} rp_flow;

typedef struct {
    char name[140];                  /* provider/model */
    uint64_t cfg_rpm, cfg_tpm;       /* the config's effective limits there, 0 none */
    uint64_t up_rpm, up_tpm;         /* the simulated upstream's */
    int up_source;                   /* QT_SIM_LIMITS_* (replay.h): config, headers, override */
    uint64_t peak_rpm, peak_tpm;
    uint64_t rate_limited;
} rp_limit;

typedef struct {
    char name[256];
    int recorded;                    /* the recording's own outcome, not a replay */
    double elapsed_s;
    uint64_t jobs, ok, failed, rejected, cancelled, invalid;
    uint64_t requests, upstream_429, retries, fallbacks;
    double cost_usd;
    rp_group *wfs;
    size_t n_wfs;
    rp_group prio[11];               /* 1..10 */
    rp_flow *flows;
    size_t n_flows;
    rp_limit *limits;
    size_t n_limits;
    uint64_t end_ms;                 /* the last result, ms after the first arrival */
    uint32_t rpm[RP_SERIES], depth[RP_SERIES];
    uint64_t rpm_peak, depth_peak;   /* most requests in any 60 s; most jobs queued at once */
    uint64_t *arr_wait;              /* per job: arrival and wait (ms), pairs, for the depth */
    size_t n_arr, cap_arr;
    uint32_t *sent;                  /* requests sent per second (owned) */
    size_t n_sent;
} rp_outcome;

void rp_outcome_init(rp_outcome *o, const char *name);
void rp_outcome_free(rp_outcome *o);

/* Counts one job's result. model_used NULL or "" when none answered. */
void rp_outcome_add(rp_outcome *o, const char *workflow, int priority, qt_status st,
                    const char *model, const char *model_used, double cost_usd, uint64_t wait_ms,
                    uint64_t arrival_ms, uint64_t end_ms);

/* Adds a limit row (merging by name). */
void rp_outcome_limit(rp_outcome *o, const rp_limit *l);

/* Percentiles, elapsed, sparkline series. */
void rp_outcome_finish(rp_outcome *o);

/* The recording's own outcome, from the trace. */
void rp_outcome_from_trace(rp_outcome *o, const qt_trace_data *d);

/* One column per outcome. */
void rp_print_table(FILE *out, const qt_trace_data *d, const char *trace_path, rp_outcome *const *v,
                    size_t n);

/* {"trace", "requests", "recorded", "configs": [...]} (DESIGN.md "Replay"). */
void rp_print_json(FILE *out, const qt_trace_data *d, const char *trace_path, rp_outcome *const *v,
                   size_t n);

/* "1h02m", "3m05s", "12.3s", "340ms". */
void rp_fmt_duration(char *buf, size_t len, double ms);

#endif
