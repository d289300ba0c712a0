/* cmd_serve.c: `quotatop serve`: the OpenAI-compatible proxy for live agents.
 *
 * DESIGN
 * The engine's workers run the jobs; the proxy (proxy.c) turns HTTP requests
 * into jobs and results into answers; the main thread shows the dashboard
 * (mode "serve") or a progress line per second and watches the signal flag.
 * Intake never closes by itself: serve runs until SIGINT/SIGTERM. Then, in
 * order: stop accepting connections -> engine shutdown (requests in flight
 * get GRACE_MS, queued ones are answered 503 cancelled) -> close every
 * connection -> free in reverse order of creation.
 *
 * Start-up refusals exit 2 before any request is sent: a bad config, a
 * proxy.token_env naming an unset variable, a non-loopback address without a
 * token, an address that cannot be bound.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "cmd_common.h"
#include "quotatop/config.h"
#include "quotatop/engine.h"
#include "quotatop/http.h"
#include "quotatop/proxy.h"
#include "quotatop/trace.h"

#define GRACE_MS 5000

static const char serve_usage[] =
    "usage: quotatop serve -c CONFIG [--listen HOST:PORT] [--headless] [--workers N]\n"
    "                      [--idle-timeout SECONDS] [--headers-timeout MS] [--body-timeout MS]\n"
    "                      [--max-conns-per-client N] [-v]\n"
    "Serves an OpenAI-compatible API (base URL http://HOST:PORT/v1) in front of the\n"
    "configured providers: POST /v1/chat/completions (also \"stream\": true),\n"
    "GET /v1/models, GET /metrics (Prometheus), GET /healthz.\n"
    "  --listen HOST:PORT      address (default: proxy.listen, else 127.0.0.1:8787);\n"
    "                          a non-loopback address needs proxy.token_env\n"
    "  --headless              no dashboard: a progress line per second on stderr\n"
    "  --workers N             requests in flight at most, 1..100000 (default: config workers, else 256)\n"
    "  --idle-timeout SECONDS  close connections silent this long (default 30)\n"
    "  --headers-timeout MS    total time a request's headers may take to arrive, however\n"
    "                          they trickle (default 10000)\n"
    "  --body-timeout MS       total time a request's body may take (default 60000)\n"
    "  --max-conns-per-client N  open connections per client address (default: none on a\n"
    "                          loopback address, else 256)\n"
    "  -v, --verbose           one stderr line per request and per event (headless)\n"
    "Headers: X-Quotatop-Workflow, X-Quotatop-Priority (1 most urgent .. 10);\n"
    "answers carry X-Quotatop-Model-Used, X-Quotatop-Attempts, X-Quotatop-Queued-Ms.\n"
    "Runs until SIGINT or SIGTERM. `quotatop top -c CONFIG` attaches a dashboard\n"
    "through the control socket STATE_DIR/serve-PID.sock (mode 0600; the path is\n"
    "printed at start), or from another host through POST /control with the token.\n";

/* The proxy's /control route answers what the control socket answers. */
static char *serve_control(void *ud, const char *req, size_t len) { return qt_ctl_handle(ud, req, len); }

static int parse_uint(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int qt_cmd_serve(int argc, char **argv)
{
    const char *cfg_path = NULL, *listen = NULL;
    int headless = 0, verbose = 0;
    long workers = 0, idle = 0, hdr_ms = 0, body_ms = 0, per_ip = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
            cfg_path = argv[++i];
        } else if (!strcmp(a, "--listen") && i + 1 < argc) {
            listen = argv[++i];
        } else if (!strcmp(a, "--headless")) {
            headless = 1;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (!strcmp(a, "--workers") && i + 1 < argc) {
            if (parse_uint(argv[++i], 1, QT_MAX_WORKERS, &workers)) {
                fprintf(stderr, "quotatop serve: --workers must be 1..%d, got '%s'\n", QT_MAX_WORKERS, argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--idle-timeout") && i + 1 < argc) {
            if (parse_uint(argv[++i], 1, 86400, &idle)) {
                fprintf(stderr, "quotatop serve: --idle-timeout must be 1..86400 seconds, got '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if ((!strcmp(a, "--headers-timeout") || !strcmp(a, "--body-timeout")) && i + 1 < argc) {
            if (parse_uint(argv[++i], 100, 86400000, a[2] == 'h' ? &hdr_ms : &body_ms)) {
                fprintf(stderr, "quotatop serve: %s must be 100..86400000 ms, got '%s'\n", a, argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--max-conns-per-client") && i + 1 < argc) {
            if (parse_uint(argv[++i], 1, 1000000, &per_ip)) {
                fprintf(stderr, "quotatop serve: --max-conns-per-client must be 1..1000000, got '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(serve_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "quotatop serve: %s '%s'\n%s",
                    a[0] == '-' ? "unknown option (or missing value)" : "unexpected argument", a,
                    serve_usage);
            return 2;
        }
    }
    if (!cfg_path) {
        fprintf(stderr, "quotatop serve: missing -c CONFIG\n%s", serve_usage);
        return 2;
    }
    qt_config *cfg = qt_cmd_load_config(cfg_path);
    if (!cfg)
        return 2;
    qt_cmd_warn_unset_keys(cfg, stderr, "quotatop serve");
    const char *token = NULL;
    if (cfg->proxy.token_env) {
        token = getenv(cfg->proxy.token_env);
        if (!token || !*token) {
            fprintf(stderr, "quotatop serve: proxy.token_env names $%s, which is not set: set it to "
                            "the token clients must send (Authorization: Bearer ...)\n",
                    cfg->proxy.token_env);
            qt_config_free(cfg);
            return 2;
        }
    }
    char err[400] = "out of memory";
    qt_ctl *ctl = qt_ctl_new("serve");   /* the dashboard's and `top`'s view of this server */
    qt_proxy_opts po = { .cfg = cfg, .listen = listen, .token = token,
                         .idle_timeout_s = (unsigned)idle, .headers_timeout_ms = (unsigned)hdr_ms,
                         .body_timeout_ms = (unsigned)body_ms,
                         .max_conns_per_client = (unsigned)per_ip, .verbose = verbose,
                         .control = serve_control, .control_ud = ctl };
    qt_proxy *px = ctl ? qt_proxy_new(&po, err, sizeof err) : NULL;
    if (!px) {
        fprintf(stderr, "quotatop serve: %s\n", err);
        qt_ctl_free(ctl);
        qt_config_free(cfg);
        return 2;
    }
    qt_http_global_init();
    qt_cmd_signals_install();
    /* The request trace (for `replay`) is written before the client is answered. */
    qt_trace_tap tap = { qt_trace_open_for(cfg, cfg_path, "serve"), qt_proxy_on_result, px };
    qt_cmd_ctl_tap ctap = { ctl, qt_trace_on_result, &tap };
    qt_engine_opts eo = { .cfg = cfg, .workers = (int)workers, .on_result = qt_cmd_ctl_on_result,
                          .on_result_ud = &ctap, .want_openai_json = 1 };
    qt_engine *e = ctl ? qt_engine_new(&eo, err, sizeof err) : NULL;
    qt_ctl_attach(ctl, e);
    if (!e || qt_engine_start(e) != QT_OK) {
        fprintf(stderr, "quotatop serve: %s\n", e ? "cannot start workers" : err);
        qt_engine_free(e);
        qt_ctl_free(ctl);
        qt_trace_close(tap.trace);
        qt_proxy_free(px);
        qt_http_global_cleanup();
        qt_config_free(cfg);
        return 2;
    }
    if (qt_proxy_start(px, e, err, sizeof err) != QT_OK) {
        fprintf(stderr, "quotatop serve: %s\n", err);
        qt_engine_free(e);
        qt_ctl_free(ctl);
        qt_trace_close(tap.trace);
        qt_proxy_free(px);
        qt_http_global_cleanup();
        qt_config_free(cfg);
        return 2;
    }
    fprintf(stderr, "quotatop serve: listening on %s (%zu models, %s)\n", qt_proxy_base_url(px),
            cfg->n_models, token ? "bearer token required" : "no token: loopback only");

    uint64_t t0 = qt_now_ms();
    int interactive = !headless && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
    qt_cmd_ctl_listen(ctl, cfg, "quotatop serve", "serve");
    qt_cmd_watch(e, ctl, interactive ? "serve" : NULL, t0, headless || !interactive, 0, verbose);

    /* Requests on the wire (streams too) may finish; nothing new is sent;
     * jobs still queued or waiting for capacity are answered 503 at once. */
    fprintf(stderr, "quotatop serve: stopping (requests in flight get %ds; signal again to stop now)\n",
            GRACE_MS / 1000);
    qt_proxy_quiesce(px);
    qt_engine_pause(e, 1);
    uint64_t deadline = qt_now_ms() + GRACE_MS;
    while (qt_cmd_signal_count() < 2 && qt_now_ms() < deadline && qt_engine_in_flight(e) > 0)
        usleep(20000);
    qt_engine_shutdown(e, 0);
    qt_proxy_stop(px);
    qt_engine_snapshot s;
    if (qt_engine_snapshot_take(e, &s) == QT_OK) {
        qt_cmd_print_summary(stderr, &s, (double)(qt_now_ms() - t0) / 1000.0);
        qt_engine_snapshot_free(&s);
    }
    qt_ctl_free(ctl);   /* stops the control socket before the engine goes */
    qt_engine_free(e);
    qt_trace_close(tap.trace);
    qt_proxy_free(px);
    qt_http_global_cleanup();
    qt_config_free(cfg);
    return 0;
}
