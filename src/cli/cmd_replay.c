/* cmd_replay.c: `quotatop replay [--trace FILE] [--since DAYS] [--speed max]
 * [-c CONFIG]... [--json]`: the recorded traffic re-run through the real
 * engine in virtual time under each config, side by side with what really
 * happened.
 *
 * DESIGN
 * Reads the trace (FILE, else trace.jsonl and its rotated files in the
 * first config's state_dir, oldest first), keeps the requests of the last
 * DAYS UTC days, computes the recording's own column from it, then runs one
 * replay per -c (src/replay/replay_run.c) and prints one table (or the
 * JSON object of DESIGN.md "Replay"). With no -c the recording's own config
 * is replayed when the trace names one that can still be read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "cmd_common.h"
#include "quotatop/clock.h"
#include "quotatop/ledger.h"
#include "quotatop/replay.h"
#include "quotatop/trace.h"
#include "../replay/replay_report.h"
#include "../replay/replay_run.h"

#define MAX_CONFIGS 8
#define MS_PER_DAY 86400000ULL

static const char replay_usage[] =
    "usage: quotatop replay [--trace FILE] [--since DAYS] [--speed max] -c CONFIG [-c CONFIG ...]\n"
    "                       [--upstream recorded|config] [--json] [--seed N]\n"
    "Re-runs the requests recorded in the trace through the real scheduler on a\n"
    "virtual clock (no sleeping, no network) against a simulated provider that\n"
    "enforces the recording's limits, answers with the recorded latencies and\n"
    "replays recorded errors; one column per CONFIG next to the recorded outcome.\n"
    "  --trace FILE   the trace to read (default: trace.jsonl and its rotated files in\n"
    "                 the first config's state_dir)\n"
    "  --since DAYS   only requests of the last DAYS UTC days, today included (0 = all,\n"
    "                 the default)\n"
    "  --speed max    as fast as possible (the only speed)\n"
    "  -c CONFIG      a full config to replay under (repeatable, up to 8; default:\n"
    "                 the config the trace names)\n"
    "  --upstream W   whose limits the simulated provider enforces: 'recorded' (the\n"
    "                 recording config's, default) or 'config' (each CONFIG's own, for\n"
    "                 \"what if we had the next rate-limit tier\")\n"
    "  --json         print the outcome as JSON\n"
    "  --seed N       seed of the simulated provider's draws (default 1)\n";

/* Trace files of dir, oldest first, into paths (heap strings). */
static size_t trace_files(const char *dir, char **paths, size_t max)
{
    size_t n = 0;
    char p[4200];
    for (int i = 9; i >= 0 && n < max; i--) {
        if (i)
            snprintf(p, sizeof p, "%s/trace.%d.jsonl", dir, i);
        else
            snprintf(p, sizeof p, "%s/%s", dir, QT_TRACE_FILE);
        if (access(p, R_OK) == 0 && (paths[n] = strdup(p)))
            n++;
    }
    return n;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v > max || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

typedef struct {
    const char *trace, *configs[MAX_CONFIGS];
    int n_configs, json, upstream_cfg;
    unsigned long since, seed;
} replay_args;

static int parse_args(int argc, char **argv, replay_args *a)
{
    memset(a, 0, sizeof *a);
    a->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if ((!strcmp(s, "-c") || !strcmp(s, "--config")) && more) {
            if (a->n_configs == MAX_CONFIGS) {
                fprintf(stderr, "quotatop replay: at most %d configs\n", MAX_CONFIGS);
                return 2;
            }
            a->configs[a->n_configs++] = argv[++i];
        } else if (!strcmp(s, "--trace") && more) {
            a->trace = argv[++i];
        } else if (!strcmp(s, "--since") && more) {
            if (parse_uint(argv[++i], 100000, &a->since)) {
                fprintf(stderr, "quotatop replay: --since takes a number of days, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(s, "--seed") && more) {
            if (parse_uint(argv[++i], 0xffffffffUL, &a->seed)) {
                fprintf(stderr, "quotatop replay: --seed takes a number, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(s, "--speed") && more) {
            if (strcmp(argv[++i], "max")) {
                fprintf(stderr, "quotatop replay: --speed: only 'max' is supported (virtual time "
                                "runs as fast as it can), got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(s, "--upstream") && more) {
            const char *u = argv[++i];
            if (strcmp(u, "recorded") && strcmp(u, "config")) {
                fprintf(stderr, "quotatop replay: --upstream is 'recorded' or 'config', got '%s'\n", u);
                return 2;
            }
            a->upstream_cfg = !strcmp(u, "config");
        } else if (!strcmp(s, "--json")) {
            a->json = 1;
        } else if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            fputs(replay_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "quotatop replay: %s '%s'\n%s",
                    s[0] == '-' ? "unknown option (or missing value)" : "unexpected argument", s,
                    replay_usage);
            return 2;
        }
    }
    return -1;
}

/* Loads the trace the arguments name. NULL after printing why. */
static qt_trace_data *load_trace(const replay_args *a, char *shown, size_t shown_len)
{
    char *paths[10] = { 0 };
    size_t n = 0;
    if (a->trace) {
        paths[n++] = strdup(a->trace);
        snprintf(shown, shown_len, "%s", a->trace);
    } else {
        char *dir = NULL;
        if (a->n_configs) {
            qt_config *cfg = qt_cmd_load_config(a->configs[0]);
            if (!cfg)
                return NULL;
            dir = cfg->state_dir && *cfg->state_dir ? strdup(cfg->state_dir) : NULL;
            qt_config_free(cfg);
        } else {
            dir = qt_ledger_default_dir();
        }
        if (!dir) {
            fprintf(stderr, "quotatop replay: no state_dir to find a trace in; give --trace FILE\n");
            return NULL;
        }
        n = trace_files(dir, paths, 10);
        snprintf(shown, shown_len, "%s/%s", dir, QT_TRACE_FILE);
        if (!n) {
            fprintf(stderr, "quotatop replay: no trace in %s (run or serve with \"trace\" on "
                            "records one); give --trace FILE\n", dir);
            free(dir);
            return NULL;
        }
        free(dir);
    }
    uint64_t since = 0;
    if (a->since) {
        uint64_t today = qt_wall_ms() / MS_PER_DAY;
        since = (today + 1 - a->since) * MS_PER_DAY;
    }
    char err[600];
    qt_trace_data *d = qt_trace_load((const char *const *)paths, n, since, err, sizeof err);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    if (!d)
        fprintf(stderr, "quotatop replay: %s\n", err);
    return d;
}

int qt_cmd_replay(int argc, char **argv)
{
    replay_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    char shown[4200];
    qt_trace_data *d = load_trace(&a, shown, sizeof shown);
    if (!d)
        return 2;
    if (!d->n_reqs) {
        fprintf(stderr, "quotatop replay: %s holds no replayable request%s\n", shown,
                a.since ? " in that window" : "");
        qt_trace_data_free(d);
        return 2;
    }
    if (!a.n_configs && d->config_path[0] && access(d->config_path, R_OK) == 0)
        a.configs[a.n_configs++] = d->config_path;
    rp_outcome outs[MAX_CONFIGS + 1];
    rp_outcome *cols[MAX_CONFIGS + 1];
    size_t n = 0;
    rp_outcome_init(&outs[0], d->config_path[0] ? d->config_path : "recorded");
    outs[0].recorded = 1;
    rp_outcome_from_trace(&outs[0], d);
    rp_outcome_finish(&outs[0]);
    cols[n] = &outs[n];
    n++;
    rc = 0;
    for (int i = 0; i < a.n_configs; i++) {
        qt_config *cfg = qt_cmd_load_config(a.configs[i]);
        if (!cfg) {
            rc = 2;
            break;
        }
        rp_outcome_init(&outs[n], a.configs[i]);
        char err[400];
        rp_run_opts ro = { .seed = a.seed, .upstream_from_config = a.upstream_cfg };
        if (rp_run_config(d, cfg, &ro, &outs[n], err, sizeof err) != QT_OK) {
            fprintf(stderr, "quotatop replay: %s: %s\n", a.configs[i], err);
            rp_outcome_free(&outs[n]);
            qt_config_free(cfg);
            rc = 1;
            continue;
        }
        rp_outcome_finish(&outs[n]);
        cols[n] = &outs[n];
        n++;
        qt_config_free(cfg);
    }
    if (rc != 2) {
        if (a.json)
            rp_print_json(stdout, d, shown, cols, n);
        else
            rp_print_table(stdout, d, shown, cols, n);
    }
    for (size_t i = 0; i < n; i++)
        rp_outcome_free(cols[i]);
    qt_trace_data_free(d);
    return rc;
}
