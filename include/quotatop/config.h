/* config.h: the JSON config of DESIGN.md loaded into plain structs.
 *
 * qt_config_load() parses with cJSON, fills defaults, validates (types,
 * ranges, references between providers, models and fallbacks, cycles, URLs)
 * and reports every problem with its JSON path in a qt_diag. Limits are kept
 * as configured; qt_config_effective_*() apply limits.headroom. A value of 0
 * for any limit means unlimited.
 *
 * Thread-safety: a loaded qt_config is immutable; any thread may read it.
 */
#ifndef QT_CONFIG_H
#define QT_CONFIG_H

/* `workers`: the most requests in flight at once (the engine holds no
 * thread per request: each costs a socket and a few KB). 256 suits a
 * laptop (well under the usual 1024 open-file limit, more than most API
 * tiers allow at once); 100,000 is the most it takes. */
#define QT_DEFAULT_WORKERS 256
#define QT_MAX_WORKERS 100000

#include <stddef.h>
#include <stdio.h>

#include "quotatop/common.h"

typedef enum { QT_KIND_OPENAI = 0, QT_KIND_ANTHROPIC = 1 } qt_provider_kind;
typedef enum { QT_EXHAUSTED_REJECT = 0, QT_EXHAUSTED_DOWNGRADE = 1 } qt_on_exhausted;
typedef enum { QT_BACKEND_LOCAL = 0, QT_BACKEND_REDIS = 1 } qt_backend_kind;
typedef enum { QT_BACKEND_ON_ERROR_LOCAL = 0, QT_BACKEND_ON_ERROR_CLOSED = 1 } qt_backend_on_error;

#define QT_CACHE_MODEL "@cache"   /* fallback entry answering from the cache */

typedef struct {
    char *name;               /* key in "providers" */
    qt_provider_kind kind;
    char *base_url;           /* without trailing slash */
    char *api_key_env;        /* name of the env variable; may be NULL */
    double rpm, tpm;          /* configured limits, 0 = unlimited */
    int max_concurrent;       /* 0 = unlimited */
    int timeout_ms;           /* default 60000 */
    double weight;            /* default 1 */
} qt_provider_cfg;

typedef struct {
    char *name;               /* key in "models" */
    char **providers;         /* provider names, n_providers >= 1 */
    int *provider_idx;        /* index into qt_config.providers */
    size_t n_providers;
    char *upstream_model;     /* name sent upstream; defaults to name */
    double rpm, tpm;          /* configured limits, 0 = unlimited */
    double input_usd_per_mtok, output_usd_per_mtok;
    double cached_input_usd_per_mtok; /* cached input (OpenAI) / cache reads (Anthropic);
                                       * -1 when not configured: priced as input */
    double cache_write_usd_per_mtok;  /* Anthropic cache creation; -1: priced as input */
    long context_window;      /* tokens, 0 = unknown/unlimited */
    int default_max_tokens;   /* used when a job gives none (anthropic needs one); default 1024 */
    char **fallback;          /* model names or QT_CACHE_MODEL */
    size_t n_fallback;
} qt_model_cfg;

typedef struct {
    char *name;
    double usd;               /* 0 = unlimited */
} qt_workflow_budget;

typedef struct {
    int workers;                           /* requests in flight at most; default
                                              QT_DEFAULT_WORKERS, 1..QT_MAX_WORKERS */
    qt_provider_cfg *providers;  size_t n_providers;
    qt_model_cfg *models;        size_t n_models;
    struct {
        double headroom;                   /* (0,1], default 1.0 */
        double burst_ms;                   /* pacing burst tolerance, default 1000/60... see limiter */
    } limits;
    struct {
        int max_attempts;                  /* default 5 */
        long base_ms, cap_ms;              /* default 1000, 60000 */
        long max_retry_after_ms;           /* default 120000 */
        double budget_ratio;               /* retries <= ratio * recent requests, default 0.5 */
    } retry;
    struct {
        int failure_threshold;             /* default 5 */
        double failure_ratio;              /* default 0.5 */
        long window_ms;                    /* default 10000 */
        long cooldown_ms;                  /* default 30000 */
        long cooldown_max_ms;              /* default 300000 */
        int half_open_max;                 /* default 1 */
    } circuit;
    struct {
        double run_usd, day_usd;           /* 0 = unlimited */
        double warn_ratio;                 /* default 0.8 */
        qt_workflow_budget *workflows; size_t n_workflows;
        qt_on_exhausted on_exhausted;      /* default reject */
    } budget;
    struct {
        long aging_ms;                     /* default 30000, 0 = no aging */
    } queue;
    struct {
        qt_backend_kind kind;
        char *url;                         /* redis://host:port */
        char *prefix;                      /* key prefix, default "quotatop" */
        qt_backend_on_error on_error;      /* Redis unreachable: "local" (default) = this
                                              process's share, "closed" = stop dispatching */
        int expected_processes;            /* the share's divisor (at least the processes last
                                              seen in the fleet), default 1 */
        long lease_ms;                     /* a dead process's slots and reservations are freed
                                              after this, default 10000 */
        long timeout_ms;                   /* a Redis call slower than this is an error, default 500 */
    } backend;
    char *state_dir;                       /* the ledger's directory, "~" expanded; default
                                              $XDG_STATE_HOME/quotatop or ~/.local/state/quotatop;
                                              "" = no ledger */
    int trace;                             /* "trace": append the request trace that
                                              `replay` reads to state_dir; default 1 */
    struct {
        char *listen;                      /* default 127.0.0.1:8787 */
        char *token_env;                   /* may be NULL */
        long max_queue;                    /* default 1000 */
        long max_wait_ms;                  /* default 30000 */
        long max_body_bytes;               /* default 1 MiB */
        char *default_workflow;            /* default "default" */
        int default_priority;              /* default 5 */
    } proxy;
} qt_config;

/* Diagnostics gathered while loading: errors make the config invalid,
 * warnings (unknown keys) do not. Each message starts with its JSON path. */
typedef struct {
    char **errors;   size_t n_errors;
    char **warnings; size_t n_warnings;
} qt_diag;

void qt_diag_free(qt_diag *d);   /* frees the messages; the struct itself is the caller's */
/* Prints every message as "ORIGIN: error: ..." / "ORIGIN: warning: ...".
 * Root causes first: when there are errors, unknown-key warnings that carry
 * a "did you mean" come before them (a misspelled "providrs" explains the
 * "providers: missing" that follows it). */
void qt_diag_print(const qt_diag *d, FILE *out, const char *origin);

/* The candidate closest to name when it is plausibly a typo (edit distance
 * 1 for names up to 4 characters, 2 up to 8, else 3; case-insensitive),
 * else NULL. Returns one of the candidates' pointers. Pure. */
const char *qt_config_suggest(const char *name, const char *const *cands, size_t n);

/* Parses and validates a config from text. On success returns a config the
 * caller frees with qt_config_free; diag may still hold warnings. On any error
 * returns NULL and diag holds at least one error. diag may not be NULL. */
qt_config *qt_config_parse(const char *text, size_t len, qt_diag *diag);

/* Reads and parses a file (as qt_config_parse). A missing or unreadable file
 * is reported as an error in diag. */
qt_config *qt_config_load(const char *path, qt_diag *diag);

void qt_config_free(qt_config *cfg);   /* accepts NULL */

/* Lookups by name; return the index or -1. */
int qt_config_model_index(const qt_config *cfg, const char *name);
int qt_config_provider_index(const qt_config *cfg, const char *name);

/* Limits after headroom (0 stays 0 = unlimited). */
double qt_config_effective(const qt_config *cfg, double configured);

/* Cost in USD of one answer on model m: prompt_tokens includes the cached
 * and cache_write tokens (each clamped to what is left of the prompt); those
 * are priced at cached_input_usd_per_mtok / cache_write_usd_per_mtok (the
 * input price when not configured), the rest of the prompt at the input
 * price, completion_tokens (reasoning tokens included) at the output price.
 * Negative counts count as 0. */
double qt_model_cost_usd(const qt_model_cfg *m, long prompt_tokens, long cached_tokens,
                         long cache_write_tokens, long completion_tokens);

/* The most an answer on model m can cost (what budgets reserve): the
 * prompt at the higher of the input and cache-write prices, the completion
 * at the output price. */
double qt_model_worst_cost_usd(const qt_model_cfg *m, long prompt_tokens, long completion_tokens);

/* Budget of a workflow in USD, 0 when it has none. */
double qt_config_workflow_budget(const qt_config *cfg, const char *workflow);

/* The chain of a model: the model, then its fallbacks, breadth-first over
 * their own fallbacks, each model once. Writes up to max model indices into
 * out and returns how many; *has_cache is set when "@cache" appears anywhere
 * in the chain (it is consulted last). */
size_t qt_config_chain(const qt_config *cfg, int model_idx, int *out, size_t max,
                       int *has_cache);

/* Writes the effective config (limits after headroom, each model's full
 * chain, whether each provider's api_key_env is set - never its value). */
void qt_config_print_effective(const qt_config *cfg, FILE *out);

#endif /* QT_CONFIG_H */
