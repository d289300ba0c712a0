/* cmd_mock.c: `quotatop mock`, the simulated provider on the command line.
 *
 * Parses the flags into a qt_mock_opts (model specs are parsed last, so each
 * declared model inherits the global flags whatever their order), starts the
 * mock, prints "mock listening on HOST:PORT" to stderr, then waits in
 * sigsuspend() with SIGINT/SIGTERM blocked everywhere else (the mock's
 * threads inherit the blocked mask, so the main thread takes the signal);
 * the handler only sets a flag. Then it stops the mock and exits 0.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "quotatop/mock.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static const char help[] =
    "usage: quotatop mock [options]\n"
    "\n"
    "A simulated LLM provider on loopback: POST /v1/chat/completions (OpenAI shapes,\n"
    "x-ratelimit-* headers) and POST /v1/messages (Anthropic shapes,\n"
    "anthropic-ratelimit-* headers), with per-model RPM/TPM limits and faults.\n"
    "Also: GET /v1/models, GET /stats, POST /stats/reset (or DELETE /stats),\n"
    "GET /healthz, POST /control/outage {\"model\":M|null,\"start_ms\":S,\"duration_ms\":D},\n"
    "POST /control/model with a model spec as the body.\n"
    "\n"
    "  --listen HOST:PORT        address (default 127.0.0.1:0 = any free port)\n"
    "  --port-file FILE          write the bound port to FILE once listening\n"
    "  --kind openai|anthropic   shape of 404/405 answers on other paths (default openai)\n"
    "  --rpm N                   requests per minute per model (0 = unlimited, default)\n"
    "  --tpm N                   tokens per minute per model, prompt + max_tokens (0 = unlimited)\n"
    "  --fail-rate F             chance 0..1 of an injected 500/503 (Anthropic: 500/529)\n"
    "  --latency-ms N            base latency of admitted requests\n"
    "  --latency-jitter-ms N     extra random latency: uniform [0,N] (or see --jitter-dist)\n"
    "  --jitter-dist uniform|exp exponential jitter has mean N, capped at 10N\n"
    "  --outage START_S:END_S    every request gets 503 (OpenAI) / 529 overloaded_error\n"
    "                            (Anthropic) from START_S to END_S seconds after start\n"
    "  --context-window N        prompt + max_tokens above N -> 400 context_length_exceeded\n"
    "  --completion-tokens N     completion length (capped by max_tokens;\n"
    "                            default 12 + prompt_tokens %% 32)\n"
    "  --model SPEC              declare a model (repeatable); see below\n"
    "  --only-declared           undeclared models get 404 model_not_found\n"
    "  --require-key-env VAR     require the API key held in $VAR (Authorization: Bearer\n"
    "                            for chat/completions, x-api-key for messages); 401 otherwise\n"
    "  --seed N                  PRNG seed of faults and jitter (default 24301)\n"
    "  --stream-chunk-ms N       pause between the events of a \"stream\": true answer\n"
    "  -v, --verbose             one stderr line per chat request\n"
    "  -h, --help                this text\n"
    "\n"
    "Model SPEC: NAME[:key=value,...], keys rpm, tpm, fail, latency, jitter (ms),\n"
    "dist (uniform|exp), outage (START-END seconds after start), context, completion,\n"
    "cache and cache_write (0..1: shares of the prompt reported as cache reads / writes).\n"
    "Given tools, the mock answers with a call (of the tool_choice named, else the first).\n"
    "Keys not given take the global flags; models not declared take the global flags.\n"
    "  --model gpt-4o:rpm=1200,tpm=40000,fail=0.1,latency=20,jitter=10,outage=5-15,context=8000\n"
    "\n"
    "Limits: each per-minute limit L is a token bucket of capacity max(1, L/60)\n"
    "refilled at L/60 per second (1200 RPM admits ~20 in any second). A request costs\n"
    "1 request and prompt + max_tokens tokens (prompt = ceil(bytes of message text / 4),\n"
    "max_tokens defaults to 16 for OpenAI, required for Anthropic); nothing is refunded.\n"
    "An unlimited (0) limit sends no headers for it. Runs until SIGINT or SIGTERM.\n";

static int usage_error(const char *fmt, const char *a)
{
    fprintf(stderr, "quotatop mock: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\nRun `quotatop mock --help` for the options.\n");
    return 2;
}

static int parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) || rename(tmp, path)) {
        remove(tmp);
        return -1;
    }
    return 0;
}

int qt_cmd_mock(int argc, char **argv)
{
    qt_mock_opts o;
    qt_mock_opts_init(&o);
    const char *listen_s = "127.0.0.1:0", *port_file = NULL, *key_env = NULL;
    const char **specs = calloc((size_t)argc + 1, sizeof *specs);
    size_t nspecs = 0;
    qt_mock_model_opts *models = NULL;
    int rc = 2;
    if (!specs) {
        fprintf(stderr, "quotatop mock: out of memory\n");
        return 2;
    }

    for (int i = 1; i < argc; i++) {
        char *a = argv[i], *val = NULL;
        char name[64];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            free(specs);
            return 0;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { o.verbose = 1; continue; }
        if (!strcmp(a, "--only-declared")) { o.only_declared = 1; continue; }
        if (strncmp(a, "--", 2)) {
            rc = usage_error("unexpected argument '%s'", a);
            goto out;
        }
        /* --flag=value or --flag value */
        char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        if (nl >= sizeof name) {
            rc = usage_error("unknown option '%s'", a);
            goto out;
        }
        memcpy(name, a, nl);
        name[nl] = '\0';
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            rc = usage_error("option %s needs a value", name);
            goto out;
        }
        unsigned long long n;
        if (!strcmp(name, "--listen")) {
            listen_s = val;
        } else if (!strcmp(name, "--port-file")) {
            port_file = val;
        } else if (!strcmp(name, "--kind")) {
            if (!strcmp(val, "openai")) o.kind = QT_MOCK_OPENAI;
            else if (!strcmp(val, "anthropic")) o.kind = QT_MOCK_ANTHROPIC;
            else { rc = usage_error("--kind must be openai or anthropic, not '%s'", val); goto out; }
        } else if (!strcmp(name, "--rpm") || !strcmp(name, "--tpm") ||
                   !strcmp(name, "--context-window") || !strcmp(name, "--completion-tokens")) {
            if (parse_num(val, 1000000000000ULL, &n)) {
                rc = usage_error("%s needs a non-negative integer", name);
                goto out;
            }
            if (name[2] == 'r') o.defaults.rpm = n;
            else if (name[2] == 't') o.defaults.tpm = n;
            else if (name[4] == 'n') o.defaults.context_window = n;
            else o.defaults.completion_tokens = n;
        } else if (!strcmp(name, "--latency-ms") || !strcmp(name, "--latency-jitter-ms") ||
                   !strcmp(name, "--stream-chunk-ms")) {
            if (parse_num(val, 3600000, &n)) {
                rc = usage_error("%s needs milliseconds (0..3600000)", name);
                goto out;
            }
            if (!strcmp(name, "--latency-ms")) o.defaults.latency_ms = (uint32_t)n;
            else if (!strcmp(name, "--latency-jitter-ms")) o.defaults.jitter_ms = (uint32_t)n;
            else o.stream_chunk_ms = (uint32_t)n;
        } else if (!strcmp(name, "--jitter-dist") || !strcmp(name, "--fail-rate") ||
                   !strcmp(name, "--outage")) {
            /* reuse the spec parser for the value syntax */
            char spec[256], err[256];
            const char *key = name[2] == 'j' ? "dist" : name[2] == 'f' ? "fail" : "outage";
            char v2[128];
            snprintf(v2, sizeof v2, "%s", val);
            if (key[0] == 'o') {                      /* START:END -> START-END */
                char *c = strchr(v2, ':');
                if (!c) { rc = usage_error("--outage needs START_S:END_S, not '%s'", val); goto out; }
                *c = '-';
            }
            snprintf(spec, sizeof spec, "x:%s=%s", key, v2);
            qt_mock_model_opts t;
            if (qt_mock_parse_model(spec, &o.defaults, &t, err, sizeof err)) {
                rc = usage_error("%s", err + 3);      /* drop "x: " */
                goto out;
            }
            o.defaults = t;
            o.defaults.name[0] = '\0';
        } else if (!strcmp(name, "--model")) {
            specs[nspecs++] = val;
        } else if (!strcmp(name, "--require-key-env")) {
            key_env = val;
        } else if (!strcmp(name, "--seed")) {
            if (parse_num(val, ~0ULL, &n)) { rc = usage_error("--seed needs an integer", NULL); goto out; }
            o.seed = n;
        } else if (!strcmp(name, "--require-key")) {
            rc = usage_error("%s: pass the key through the environment with --require-key-env VAR, "
                             "so it never shows in ps", name);
            goto out;
        } else {
            rc = usage_error("unknown option '%s'", name);
            goto out;
        }
    }

    if (key_env) {
        const char *k = getenv(key_env);
        if (!k || !*k) {
            rc = usage_error("--require-key-env: environment variable %s is not set", key_env);
            goto out;
        }
        o.require_key = k;
    }
    if (nspecs) {
        models = calloc(nspecs, sizeof *models);
        if (!models) {
            fprintf(stderr, "quotatop mock: out of memory\n");
            goto out;
        }
        for (size_t i = 0; i < nspecs; i++) {
            char err[300];
            if (qt_mock_parse_model(specs[i], &o.defaults, &models[i], err, sizeof err)) {
                rc = usage_error("--model: %s", err);
                goto out;
            }
        }
        o.models = models;
        o.nmodels = nspecs;
    }
    o.listen = listen_s;

    /* Block the stop signals before the mock's threads exist: they inherit
     * the mask, so only sigsuspend() below takes SIGINT/SIGTERM. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);

    char err[512];
    qt_mock *m = qt_mock_start(&o, err, sizeof err);
    if (!m) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        fprintf(stderr, "quotatop mock: %s\n", err);
        rc = 2;
        goto out;
    }
    const char *colon = strrchr(listen_s, ':');
    fprintf(stderr, "mock listening on %.*s:%d\n", (int)(colon - listen_s), listen_s,
            qt_mock_port(m));
    if (port_file && write_port_file(port_file, qt_mock_port(m)))
        fprintf(stderr, "quotatop mock: cannot write port file %s: %s\n", port_file,
                strerror(errno));
    sigset_t wait_mask = old;
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
    while (!stop_flag)
        sigsuspend(&wait_mask);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    qt_mock_stop(m);
    fprintf(stderr, "mock stopped\n");
    rc = 0;
out:
    free(models);
    free(specs);
    return rc;
}
