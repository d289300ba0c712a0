/* cmd_demo.c: `quotatop demo`: the whole product in one command, no key,
 * no config.
 *
 * DESIGN
 * Two simulated providers start in-process on free loopback ports: an
 * OpenAI-like one serving gpt-4o and gpt-4o-mini and an Anthropic-like one
 * serving claude-sonnet, each with its own RPM/TPM buckets. A built-in
 * config (the two ports substituted into JSON text) chains gpt-4o ->
 * claude-sonnet -> gpt-4o-mini. A generator thread plays a 60 s script of
 * four workflows, over and over:
 *
 *   support-bot   prio 3  gpt-4o         steady 2 jobs/s
 *   triage        prio 2  gpt-4o         bursts of 12 at 8 s, 24 s, 40 s
 *   summarizer    prio 5  claude-sonnet  0.7 jobs/s, TPM-bound
 *   nightly-eval  prio 8  gpt-4o-mini    bursts of 80 at 3 s and 60 at 30 s;
 *                                        its budget warns around 40 s
 *
 * The config grants gpt-4o-mini more RPM than the mock does, so its bursts
 * draw a few 429s that are retried after their Retry-After. At 16 s the
 * mock's gpt-4o has a 12 s outage: the circuit opens after a few 503s,
 * traffic falls back to claude-sonnet, the first HALF_OPEN probe (5 s later)
 * fails and reopens it, the next one (after the doubled cooldown) closes it.
 *
 * The main thread shows the dashboard (src/ui), or with --headless (or
 * without a terminal) prints a progress line per second and every event on
 * stderr. --duration ends the demo; else it runs until q or a signal.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "cmd.h"
#include "cmd_common.h"
#include "quotatop/clock.h"
#include "quotatop/config.h"
#include "quotatop/engine.h"
#include "quotatop/events.h"
#include "quotatop/http.h"
#include "quotatop/jobs.h"
#include "quotatop/mock.h"
#include "quotatop/ui.h"

#define CYCLE_MS 60000
#define OUTAGE_AT_MS 16000
#define OUTAGE_MS 12000
#define MAX_QUEUED 600      /* the generator holds back above this */

/* The config, with %d for the OpenAI-like and Anthropic-like ports. The
 * gpt-4o-mini RPM is above what its mock grants (300) on purpose: 429s. */
static const char demo_config[] =
    "{\n"
    "  \"workers\": 40,\n"
    "  \"providers\": {\n"
    "    \"openai-mock\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:%d/v1\",\n"
    "                      \"rpm\": 0, \"tpm\": 0, \"max_concurrent\": 16, \"timeout_ms\": 10000},\n"
    "    \"anthropic-mock\": {\"kind\": \"anthropic\", \"base_url\": \"http://127.0.0.1:%d/v1\",\n"
    "                         \"rpm\": 150, \"tpm\": 60000, \"max_concurrent\": 8, \"timeout_ms\": 10000}\n"
    "  },\n"
    "  \"models\": {\n"
    "    \"gpt-4o\": {\"providers\": [\"openai-mock\"], \"rpm\": 600, \"tpm\": 150000,\n"
    "                \"input_usd_per_mtok\": 2.50, \"output_usd_per_mtok\": 10.00,\n"
    "                \"fallback\": [\"claude-sonnet\", \"gpt-4o-mini\"]},\n"
    "    \"gpt-4o-mini\": {\"providers\": [\"openai-mock\"], \"rpm\": 400, \"tpm\": 200000,\n"
    "                     \"input_usd_per_mtok\": 0.15, \"output_usd_per_mtok\": 0.60},\n"
    "    \"claude-sonnet\": {\"providers\": [\"anthropic-mock\"], \"upstream_model\": \"claude-sonnet\",\n"
    "                       \"rpm\": 120, \"tpm\": 36000, \"default_max_tokens\": 256,\n"
    "                       \"input_usd_per_mtok\": 3.00, \"output_usd_per_mtok\": 15.00,\n"
    "                       \"fallback\": [\"gpt-4o-mini\"]}\n"
    "  },\n"
    "  \"limits\":  {\"headroom\": 0.9},\n"
    "  \"retry\":   {\"max_attempts\": 4, \"base_ms\": 300, \"cap_ms\": 4000, \"max_retry_after_ms\": 10000},\n"
    "  \"circuit\": {\"failure_threshold\": 3, \"failure_ratio\": 0.5, \"window_ms\": 10000,\n"
    "              \"cooldown_ms\": 5000, \"cooldown_max_ms\": 20000, \"half_open_max\": 1},\n"
    "  \"budget\":  {\"run_usd\": 2.00, \"day_usd\": 50.00, \"warn_ratio\": 0.8,\n"
    "              \"workflows\": {\"nightly-eval\": %s, \"support-bot\": 1.50}, \"on_exhausted\": \"reject\"},\n"
    "  \"queue\":   {\"aging_ms\": 20000},\n"
    "  \"state_dir\": \"\"\n"          /* simulated spend: never into the ledger */
    "}\n";

/* Budget of nightly-eval: ~110 gpt-4o-mini calls reach 80% of it. */
#define NIGHTLY_BUDGET "0.0072"

typedef struct {
    const char *workflow;
    int priority;
    const char *model;
    int max_tokens;
    int prompt_chars;
    double per_s;            /* steady rate, 0 = none */
    struct { int at_ms, n; } bursts[4];
} stream_spec;

static const stream_spec script[] = {
    { "support-bot", 3, "gpt-4o", 160, 600, 2.0, { { 0, 0 } } },
    { "triage", 2, "gpt-4o", 96, 400, 0, { { 8000, 12 }, { 24000, 12 }, { 40000, 12 }, { 0, 0 } } },
    { "summarizer", 5, "claude-sonnet", 256, 1600, 0.7, { { 0, 0 } } },
    { "nightly-eval", 8, "gpt-4o-mini", 64, 800, 0, { { 3000, 80 }, { 30000, 60 }, { 0, 0 } } },
};

typedef struct {
    qt_engine *engine;
    const qt_config *cfg;
    qt_mock *oa;                 /* the OpenAI-like mock (gpt-4o outage) */
    volatile int stop;           /* set by main */
    uint64_t seq;
    uint64_t submitted;
} generator;

static const char *const words[] = {
    "summarise", "the", "ticket", "about", "billing", "refund", "latency", "report",
    "classify", "intent", "draft", "reply", "customer", "eval", "case", "score",
};

static void submit_one(generator *g, const stream_spec *s)
{
    char text[2048];
    size_t n = 0;
    uint64_t r = g->seq * 2654435761u + 17;
    while (n + 12 < (size_t)s->prompt_chars && n + 12 < sizeof text) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        n += (size_t)snprintf(text + n, sizeof text - n, "%s ", words[(r >> 33) % QT_ARRAY_LEN(words)]);
    }
    text[n] = '\0';
    char id[64];
    const char *dash = strchr(s->workflow, '-');
    snprintf(id, sizeof id, "%.*s-%llu", dash ? (int)(dash - s->workflow) : 3, s->workflow,
             (unsigned long long)++g->seq);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "workflow", s->workflow);
    cJSON_AddNumberToObject(o, "priority", s->priority);
    cJSON_AddStringToObject(o, "model", s->model);
    cJSON *msgs = cJSON_AddArrayToObject(o, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", text);
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddNumberToObject(o, "max_tokens", s->max_tokens);
    qt_job *job = NULL;
    char err[256];
    if (qt_job_from_json(o, 0, g->cfg, &job, NULL, NULL, err, sizeof err) == QT_OK) {
        qt_engine_submit(g->engine, job);
        g->submitted++;
    }
}

static void *generator_main(void *arg)
{
    generator *g = arg;
    uint64_t start = qt_now_ms();
    double acc[QT_ARRAY_LEN(script)] = { 0 };
    int64_t last_t = -1, cycle = -1;
    while (!g->stop) {
        uint64_t now = qt_now_ms();
        int64_t c = (int64_t)((now - start) / CYCLE_MS), t = (int64_t)((now - start) % CYCLE_MS);
        if (c != cycle) {
            cycle = c;
            last_t = -1;
            /* The outage of this cycle, relative to now. */
            qt_mock_set_outage(g->oa, "gpt-4o", (uint64_t)(OUTAGE_AT_MS > t ? OUTAGE_AT_MS - t : 0),
                               OUTAGE_MS);
        }
        int hold = qt_engine_queue_depth(g->engine) > MAX_QUEUED;
        for (size_t i = 0; i < QT_ARRAY_LEN(script) && !hold; i++) {
            const stream_spec *s = &script[i];
            if (s->per_s > 0) {
                acc[i] += s->per_s * (double)(last_t < 0 ? 100 : t - last_t) / 1000.0;
                while (acc[i] >= 1) {
                    submit_one(g, s);
                    acc[i] -= 1;
                }
            }
            for (size_t b = 0; b < QT_ARRAY_LEN(s->bursts) && s->bursts[b].n; b++)
                if (s->bursts[b].at_ms > last_t && s->bursts[b].at_ms <= t)
                    for (int k = 0; k < s->bursts[b].n; k++)
                        submit_one(g, s);
        }
        last_t = t;
        usleep(100000);
    }
    return NULL;
}

static void on_result(void *ud, const qt_job *job, const qt_result *res, const qt_result_extra *x)
{
    (void)job;
    (void)x;
    qt_ctl_note_result(ud, res);   /* the FAILED view */
}

/* Prints every event after *seq on stderr (the headless story). */
static int run_headless(qt_engine *e, uint64_t t0, uint64_t deadline)
{
    uint64_t seq = 0, next = t0 + 1000;
    while (!qt_cmd_signal_count() && (!deadline || qt_now_ms() < deadline)) {
        usleep(50000);
        qt_cmd_print_events(stderr, e, t0, &seq);
        if (qt_now_ms() >= next) {
            qt_engine_snapshot s;
            if (qt_engine_snapshot_take(e, &s) == QT_OK) {
                qt_cmd_print_progress(stderr, &s);
                qt_engine_snapshot_free(&s);
            }
            next += 1000;
        }
    }
    qt_cmd_print_events(stderr, e, t0, &seq);
    return 0;
}

static const char demo_usage[] =
    "usage: quotatop demo [--headless] [--duration SECONDS] [--theme NAME]\n"
    "Starts two simulated providers on loopback (OpenAI-like and Anthropic-like)\n"
    "and a scripted workload of four workflows: pacing near the limits, 429s\n"
    "retried after Retry-After, an outage that opens a circuit and falls back,\n"
    "HALF_OPEN probes, a workflow crossing its budget warning. No key needed.\n"
    "  --headless          no dashboard: progress lines and events on stderr\n"
    "  --duration SECONDS  stop after SECONDS (default: until q or Ctrl-C)\n"
    "  --theme NAME        default, dark, light, mono, or a path to a .theme file\n"
    "  --print-config      print the built-in config (with the mock ports) and exit\n";

static qt_mock *start_mock(qt_mock_kind kind, const qt_mock_model_opts *models, size_t n,
                           uint32_t latency, const char *what)
{
    qt_mock_opts o;
    qt_mock_opts_init(&o);
    o.kind = kind;
    o.models = models;
    o.nmodels = n;
    o.defaults.latency_ms = latency;
    o.seed = (uint64_t)time(NULL);
    char err[256];
    qt_mock *m = qt_mock_start(&o, err, sizeof err);
    if (!m)
        fprintf(stderr, "quotatop demo: cannot start the %s mock: %s\n", what, err);
    return m;
}

int qt_cmd_demo(int argc, char **argv)
{
    int headless = 0, print_config = 0;
    double duration = 0;
    const char *theme = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--headless"))
            headless = 1;
        else if (!strcmp(a, "--print-config"))
            print_config = 1;
        else if (!strcmp(a, "--duration") && i + 1 < argc) {
            char *end;
            duration = strtod(argv[++i], &end);
            if (*end || !(duration > 0) || duration > 86400 * 7) {
                fprintf(stderr, "quotatop demo: --duration must be a number of seconds > 0, got '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--theme") && i + 1 < argc)
            theme = argv[++i];
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(demo_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "quotatop demo: unknown option '%s'\n%s", a, demo_usage);
            return 2;
        }
    }

    qt_mock_model_opts oa_models[2], an_models[1];
    memset(oa_models, 0, sizeof oa_models);
    memset(an_models, 0, sizeof an_models);
    snprintf(oa_models[0].name, sizeof oa_models[0].name, "gpt-4o");
    oa_models[0].rpm = 660;
    oa_models[0].tpm = 200000;
    oa_models[0].latency_ms = 250;
    oa_models[0].jitter_ms = 250;
    oa_models[0].completion_tokens = 60;
    snprintf(oa_models[1].name, sizeof oa_models[1].name, "gpt-4o-mini");
    oa_models[1].rpm = 300;
    oa_models[1].tpm = 400000;
    oa_models[1].latency_ms = 120;
    oa_models[1].jitter_ms = 120;
    oa_models[1].completion_tokens = 30;
    snprintf(an_models[0].name, sizeof an_models[0].name, "claude-sonnet");
    an_models[0].rpm = 150;
    an_models[0].tpm = 45000;
    an_models[0].latency_ms = 400;
    an_models[0].jitter_ms = 300;
    an_models[0].completion_tokens = 90;

    qt_http_global_init();
    qt_mock *oa = start_mock(QT_MOCK_OPENAI, oa_models, 2, 200, "OpenAI-like");
    qt_mock *an = oa ? start_mock(QT_MOCK_ANTHROPIC, an_models, 1, 300, "Anthropic-like") : NULL;
    if (!oa || !an) {
        qt_mock_stop(oa);
        qt_http_global_cleanup();
        return 2;
    }
    char text[sizeof demo_config + 64];
    snprintf(text, sizeof text, demo_config, qt_mock_port(oa), qt_mock_port(an), NIGHTLY_BUDGET);
    if (print_config) {
        fputs(text, stdout);
        qt_mock_stop(an);
        qt_mock_stop(oa);
        qt_http_global_cleanup();
        return 0;
    }
    qt_diag d = { 0 };
    qt_config *cfg = qt_config_parse(text, strlen(text), &d);
    qt_diag_print(&d, stderr, "demo config");
    qt_diag_free(&d);
    if (!cfg) {
        qt_mock_stop(an);
        qt_mock_stop(oa);
        qt_http_global_cleanup();
        return 2;
    }
    qt_cmd_signals_install();
    char err[256] = "out of memory";
    qt_ctl *ctl = qt_ctl_new("demo");
    qt_engine_opts eo = { .cfg = cfg, .on_result = on_result, .on_result_ud = ctl };
    qt_engine *e = ctl ? qt_engine_new(&eo, err, sizeof err) : NULL;
    qt_ctl_attach(ctl, e);
    if (!e || qt_engine_start(e) != QT_OK) {
        fprintf(stderr, "quotatop demo: %s\n", e ? "cannot start workers" : err);
        qt_engine_free(e);
        qt_ctl_free(ctl);
        qt_config_free(cfg);
        qt_mock_stop(an);
        qt_mock_stop(oa);
        qt_http_global_cleanup();
        return 2;
    }

    uint64_t t0 = qt_now_ms();
    uint64_t deadline = duration > 0 ? t0 + (uint64_t)(duration * 1000) : 0;
    generator g = { .engine = e, .cfg = cfg, .oa = oa };
    pthread_t gt;
    int have_gen = pthread_create(&gt, NULL, generator_main, &g) == 0;
    if (headless || !isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) {
        fprintf(stderr, "quotatop demo: mocks on 127.0.0.1:%d (openai-mock) and 127.0.0.1:%d "
                        "(anthropic-mock)\n", qt_mock_port(oa), qt_mock_port(an));
        run_headless(e, t0, deadline);
    } else {
        char sub[96];
        snprintf(sub, sizeof sub, "mocks :%d :%d", qt_mock_port(oa), qt_mock_port(an));
        qt_ui_opts uo = { .mode = "demo", .t0_ms = t0, .theme = theme, .subtitle = sub,
                          .deadline_ms = deadline, .should_stop = qt_cmd_signal_count };
        qt_ctl_source *src = qt_ctl_source_local(ctl);
        if (!src || qt_ui_run_source(src, &uo) == QT_UI_EXIT_NO_TERMINAL)
            run_headless(e, t0, deadline);
        qt_ctl_source_free(src);
    }

    g.stop = 1;
    if (have_gen)
        pthread_join(gt, NULL);
    qt_engine_close_intake(e);
    qt_engine_shutdown(e, 0);
    qt_engine_snapshot s;
    if (qt_engine_snapshot_take(e, &s) == QT_OK) {
        qt_cmd_print_summary(stderr, &s, (double)(qt_now_ms() - t0) / 1000.0);
        qt_engine_snapshot_free(&s);
    }
    qt_engine_free(e);
    qt_ctl_free(ctl);
    qt_config_free(cfg);
    qt_mock_stop(an);
    qt_mock_stop(oa);
    qt_http_global_cleanup();
    return 0;
}
