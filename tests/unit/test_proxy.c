/* test_proxy.c: Criterion suite "proxy".
 *
 * The proxy's pure pieces: the constant-time token compare, Prometheus label
 * escaping, the start-up address rules of qt_proxy_new (loopback or a
 * token), and the /metrics text of an engine that has done nothing yet
 * (every family has HELP and TYPE, histograms end with +Inf, _sum, _count).
 * The HTTP behaviour is tested end to end in tests/integration/test_proxy*.sh.
 */
#include "quotatop/proxy.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

Test(proxy, token_equal)
{
    cr_assert(qt_proxy_token_equal("secret", 6, "secret"));
    cr_assert_not(qt_proxy_token_equal("secreT", 6, "secret"));
    cr_assert_not(qt_proxy_token_equal("secret", 5, "secret"), "a prefix is not the token");
    cr_assert_not(qt_proxy_token_equal("secretx", 7, "secret"), "nor is a longer string");
    cr_assert_not(qt_proxy_token_equal("", 0, "secret"));
    cr_assert_not(qt_proxy_token_equal("sec\0et", 6, "secret"));
}

/* Criterion runs each parameter in a fresh process image (PIE: other
 * addresses), so parameters hold their strings inline, never as pointers. */
typedef struct {
    char in[32], out[40];
} esc_case;

ParameterizedTestParameters(proxy, label_escape)
{
    static esc_case cases[] = {
        { "plain", "plain" },
        { "a\"b", "a\\\"b" },
        { "back\\slash", "back\\\\slash" },
        { "two\nlines", "two\\nlines" },
        { "", "" },
    };
    return cr_make_param_array(esc_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(esc_case *c, proxy, label_escape)
{
    char out[64];
    size_t need = qt_proxy_label_escape(c->in, out, sizeof out);
    cr_assert_str_eq(out, c->out);
    cr_assert_eq(need, strlen(c->out));
}

Test(proxy, label_escape_truncates_and_terminates)
{
    char out[4];
    size_t need = qt_proxy_label_escape("a\"bcdef", out, sizeof out);
    cr_assert_eq(need, 8);
    cr_assert_str_eq(out, "a\\\"");
}

static qt_config *config(const char *text)
{
    qt_diag d = { 0 };
    qt_config *cfg = qt_config_parse(text, strlen(text), &d);
    qt_diag_free(&d);
    cr_assert_not_null(cfg);
    return cfg;
}

static const char *cfg_text =
    "{\"providers\": {\"p\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:9/v1\"}},"
    " \"models\": {\"m\": {\"providers\": [\"p\"], \"rpm\": 60}}, \"state_dir\": \"/tmp/qt-unit-proxy\"}";

typedef struct {
    char listen[40], token[16];   /* token "-" = none */
    int ok;
} addr_case;

ParameterizedTestParameters(proxy, start_up_rules)
{
    static addr_case cases[] = {
        { "127.0.0.1:0", "-", 1 },
        { "127.8.9.10:8787", "-", 1 },       /* all of 127/8 is loopback */
        { "localhost:0", "-", 1 },
        { "[::1]:0", "-", 1 },
        { "0.0.0.0:8787", "-", 0 },          /* every interface, no token */
        { "0.0.0.0:8787", "", 0 },           /* an empty token is none */
        { "0.0.0.0:8787", "t0ken", 1 },
        { "127.0.0.1", "-", 0 },             /* no port */
        { "127.0.0.1:99999", "-", 0 },
        { "[::1:80", "-", 0 },
    };
    return cr_make_param_array(addr_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(addr_case *c, proxy, start_up_rules)
{
    qt_config *cfg = config(cfg_text);
    char err[300] = "";
    qt_proxy_opts o = { .cfg = cfg, .listen = c->listen, .token = strcmp(c->token, "-") ? c->token : NULL };
    qt_proxy *p = qt_proxy_new(&o, err, sizeof err);
    cr_assert_eq(p != NULL, c->ok, "%s token=%s: %s", c->listen, c->token, err);
    if (!c->ok)
        cr_assert(err[0], "a refusal says why");
    qt_proxy_free(p);
    qt_config_free(cfg);
}

Test(proxy, metrics_text_of_an_idle_engine)
{
    qt_config *cfg = config(cfg_text);
    char err[200];
    qt_engine_opts eo = { .cfg = cfg, .workers = 1 };
    qt_engine *e = qt_engine_new(&eo, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    qt_proxy_stats ps;
    qt_proxy_stats_get(NULL, &ps);
    ps.responses[429] = 3;
    char *t = qt_proxy_metrics_text(e, cfg, &ps);
    cr_assert_not_null(t);
    static const char *const fams[] = {
        "# TYPE quotatop_requests_total counter", "# TYPE quotatop_upstream_429_total counter",
        "# TYPE quotatop_circuit_state gauge", "# TYPE quotatop_queue_depth gauge",
        "# TYPE quotatop_jobs_waiting gauge",
        "# TYPE quotatop_limit gauge", "# TYPE quotatop_used gauge",
        "# TYPE quotatop_request_duration_seconds histogram",
    };
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
        cr_assert(strstr(t, fams[i]), "missing: %s", fams[i]);
    cr_assert(strstr(t, "quotatop_limit{model=\"m\",kind=\"rpm\"} 60\n"));
    cr_assert_null(strstr(t, "quotatop_limit{model=\"m\",kind=\"tpm\"}"), "unlimited is not listed");
    cr_assert(strstr(t, "quotatop_requests_total{model=\"m\",provider=\"p\",status=\"ok\"} 0\n"));
    cr_assert(strstr(t, "quotatop_request_duration_seconds_bucket{model=\"m\",le=\"+Inf\"} 0\n"));
    cr_assert(strstr(t, "quotatop_request_duration_seconds_count{model=\"m\"} 0\n"));
    cr_assert(strstr(t, "quotatop_http_responses_total{code=\"429\"} 3\n"));
    /* Every sample line belongs to the family announced just before it. */
    char fam[128] = "";
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "# TYPE ", 7)) {
            sscanf(line + 7, "%127s", fam);
            continue;
        }
        if (line[0] == '#')
            continue;
        cr_assert(fam[0] && !strncmp(line, fam, strlen(fam)), "sample outside its family: %s", line);
    }
    free(t);
    qt_engine_free(e);
    qt_config_free(cfg);
}
