/* test_http.c: Criterion suite "http".
 *
 * The libcurl layer against a real server: the in-process mock of mock.h
 * (libmicrohttpd). Covers an ok answer with its rate-limit headers (read
 * back through the provider ops, end to end for both kinds), non-2xx
 * answers, a timeout against a slow model, a refused connection, keep-alive
 * reuse (no new connection on the second request), and the stream variant
 * (chunks handed over as they arrive, translated by the provider, abort by
 * the callback, error bodies stored rather than streamed).
 */
#include "quotatop/http.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "quotatop/mock.h"
#include "quotatop/provider.h"

#define KEY "sk-http-test-KEY"

static qt_mock *mock;
static qt_http *http;
static char base[64];

static void setup(void)
{
    cr_assert_eq(qt_http_global_init(), QT_OK);
    qt_mock_opts o;
    qt_mock_opts_init(&o);
    static qt_mock_model_opts models[2];
    memset(models, 0, sizeof models);
    snprintf(models[0].name, sizeof models[0].name, "fast");
    models[0].rpm = 6000;
    models[0].tpm = 1000000;
    snprintf(models[1].name, sizeof models[1].name, "slow");
    models[1].latency_ms = 3000;
    o.models = models;
    o.nmodels = 2;
    o.require_key = KEY;
    char err[256] = "";
    mock = qt_mock_start(&o, err, sizeof err);
    cr_assert_not_null(mock, "mock: %s", err);
    snprintf(base, sizeof base, "http://127.0.0.1:%d/v1", qt_mock_port(mock));
    http = qt_http_new();
    cr_assert_not_null(http);
}

static void teardown(void)
{
    qt_http_free(http);
    qt_mock_stop(mock);
    qt_http_global_cleanup();
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 20);

/* Builds a request for model with kind and key, and posts it. */
static void post_job(qt_provider_kind kind, const char *model, const char *key, bool stream,
                     int timeout_ms, qt_http_on_data on_data, void *ud, qt_http_response *resp)
{
    char job_text[256];
    snprintf(job_text, sizeof job_text,
             "{\"id\":\"j\",\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}],"
             "\"max_tokens\":20}", model);
    cJSON *job = cJSON_Parse(job_text);
    qt_model_cfg m;
    memset(&m, 0, sizeof m);
    m.name = (char *)model;
    m.upstream_model = (char *)model;
    m.default_max_tokens = 20;
    qt_provider_request req;
    char err[QT_PROVIDER_ERRLEN] = "";
    cr_assert_eq(qt_provider_ops_for(kind)->build_request(job, &m, key, stream, &req, err, sizeof err),
                 QT_OK, "%s", err);
    cJSON_Delete(job);
    char url[128];
    snprintf(url, sizeof url, "%s%s", base, req.path);
    qt_err rc = on_data
        ? qt_http_post_stream(http, url, (const char *const *)req.headers, req.n_headers,
                              req.body, req.body_len, timeout_ms, on_data, ud, resp)
        : qt_http_post(http, url, (const char *const *)req.headers, req.n_headers,
                       req.body, req.body_len, timeout_ms, resp);
    qt_provider_request_free(&req);
    cr_assert_eq(rc, QT_OK);
}

Test(http, ok_with_headers_openai)
{
    qt_http_response resp;
    post_job(QT_KIND_OPENAI, "fast", KEY, false, 5000, NULL, NULL, &resp);
    cr_assert_eq(resp.transport, QT_HTTP_OK, "%s", resp.error);
    cr_assert_eq(resp.status, 200, "body %s", resp.body);
    cr_assert_str_eq(resp.error, "");
    cr_assert_not_null(resp.body);
    cr_assert_eq(strlen(resp.body), resp.body_len);
    cr_assert_str_eq(qt_http_response_header(&resp, "X-RateLimit-Limit-Requests"), "6000");
    cr_assert_not_null(qt_http_response_header(&resp, "content-type"));
    cr_assert_geq(resp.elapsed_ms, 0);

    const qt_provider_ops *ops = qt_provider_ops_for(QT_KIND_OPENAI);
    qt_provider_result r;
    char err[QT_PROVIDER_ERRLEN] = "";
    cr_assert_eq(ops->parse_response(resp.body, resp.body_len, &r, err, sizeof err), QT_OK, "%s", err);
    cr_assert_gt(r.prompt_tokens, 0);
    cr_assert_gt(r.completion_tokens, 0);
    qt_provider_result_free(&r);
    qt_provider_limits l;
    ops->parse_limit_headers(resp.headers, resp.n_headers, 0, &l);
    cr_assert_eq(l.requests.limit, 6000);
    cr_assert_eq(l.tokens.limit, 1000000);
    cr_assert_geq(l.requests.remaining, 0);
    cr_assert_geq(l.requests.reset_ms, 0);
    qt_http_response_free(&resp);
    cr_assert_null(resp.body, "free zeroes");
}

Test(http, ok_anthropic_end_to_end)
{
    qt_http_response resp;
    post_job(QT_KIND_ANTHROPIC, "fast", KEY, false, 5000, NULL, NULL, &resp);
    cr_assert_eq(resp.status, 200, "body %s", resp.body);
    qt_provider_result r;
    char err[QT_PROVIDER_ERRLEN] = "";
    cr_assert_eq(qt_provider_ops_for(QT_KIND_ANTHROPIC)->parse_response(resp.body, resp.body_len, &r, err,
                                                                        sizeof err), QT_OK, "%s", err);
    cr_assert_gt(r.completion_tokens, 0);
    qt_provider_result_free(&r);
    cr_assert_not_null(qt_http_response_header(&resp, "anthropic-ratelimit-requests-limit"));
    qt_http_response_free(&resp);
}

Test(http, non_2xx_body_kept)
{
    qt_http_response resp;
    post_job(QT_KIND_OPENAI, "fast", "sk-wrong", false, 5000, NULL, NULL, &resp);
    cr_assert_eq(resp.transport, QT_HTTP_OK, "a 401 is a complete transfer");
    cr_assert_eq(resp.status, 401);
    cr_assert_gt(resp.body_len, 0);
    qt_provider_error e;
    qt_provider_ops_for(QT_KIND_OPENAI)->parse_error(resp.status, resp.body, resp.body_len, &e);
    cr_assert_neq(e.message[0], '\0');
    qt_http_response_free(&resp);

    cr_assert_eq(qt_mock_set_outage(mock, NULL, 0, 60000), QT_OK);
    post_job(QT_KIND_OPENAI, "fast", KEY, false, 5000, NULL, NULL, &resp);
    cr_assert_eq(resp.status, 503, "outage");
    qt_http_response_free(&resp);
}

Test(http, timeout)
{
    qt_http_response resp;
    post_job(QT_KIND_OPENAI, "slow", KEY, false, 300, NULL, NULL, &resp);
    cr_assert_eq(resp.transport, QT_HTTP_TIMEOUT, "transport %d: %s", resp.transport, resp.error);
    cr_assert_neq(resp.error[0], '\0');
    cr_assert_lt(resp.elapsed_ms, 2000, "gave up near 300 ms, took %lld", (long long)resp.elapsed_ms);
    qt_http_response_free(&resp);
}

/* A port with no listener: bind one, read it back, close it. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

Test(http, connection_refused)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", dead_port());
    qt_http_response resp;
    cr_assert_eq(qt_http_post(http, url, NULL, 0, "{}", 2, 2000, &resp), QT_OK);
    cr_assert_eq(resp.transport, QT_HTTP_CONNECT, "transport %d: %s", resp.transport, resp.error);
    cr_assert_eq(resp.status, 0);
    cr_assert_neq(resp.error[0], '\0');
    cr_assert_str_eq(resp.body, "");
    qt_http_response_free(&resp);
}

Test(http, keep_alive_reuses_connection)
{
    qt_http_response resp;
    post_job(QT_KIND_OPENAI, "fast", KEY, false, 5000, NULL, NULL, &resp);
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(resp.num_connects, 1, "first request opens a connection");
    qt_http_response_free(&resp);
    for (int i = 0; i < 3; i++) {
        post_job(QT_KIND_ANTHROPIC, "fast", KEY, false, 5000, NULL, NULL, &resp);
        cr_assert_eq(resp.status, 200);
        cr_assert_eq(resp.num_connects, 0, "request %d reuses the connection", i + 2);
        qt_http_response_free(&resp);
    }
}

Test(http, invalid_arguments)
{
    qt_http_response resp;
    cr_assert_eq(qt_http_post(NULL, "http://x", NULL, 0, "", 0, 0, &resp), QT_ERR_INVALID);
    qt_http_response_free(&resp);
    cr_assert_eq(qt_http_post_stream(http, "http://x", NULL, 0, "", 0, 0, NULL, NULL, &resp), QT_ERR_INVALID);
    qt_http_response_free(&resp);
    qt_http_free(NULL);
    qt_http_response_free(NULL);
}

/* ---- streaming -------------------------------------------------------------- */

typedef struct {
    qt_provider_stream *ps;
    int calls;
    int abort_after;          /* 0 = never */
    int chunks;
    int status_seen;          /* resp->status when on_data first ran */
    qt_http_response *resp;
} stream_ctx;

static int count_chunk(void *ud, const char *json, size_t len)
{
    (void)json;
    (void)len;
    ((stream_ctx *)ud)->chunks++;
    return 0;
}

static int on_data(void *ud, const char *buf, size_t n)
{
    stream_ctx *c = ud;
    if (c->calls++ == 0)
        c->status_seen = c->resp->status;
    if (c->ps)
        cr_assert_eq(qt_provider_stream_feed(c->ps, buf, n, count_chunk, c), QT_OK);
    return c->abort_after && c->calls >= c->abort_after;
}

static void stream_kind(qt_provider_kind kind)
{
    qt_http_response resp;
    stream_ctx c = {.ps = qt_provider_stream_new(kind, "fast", 0), .resp = &resp};
    post_job(kind, "fast", KEY, true, 5000, on_data, &c, &resp);
    cr_assert_eq(resp.transport, QT_HTTP_OK, "%s", resp.error);
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(c.status_seen, 200, "status known in the callback");
    cr_assert_eq(resp.body_len, 0, "a 2xx stream is not stored");
    cr_assert_gt(c.calls, 0);
    cr_assert_gt(c.chunks, 1);
    cr_assert(qt_provider_stream_done(c.ps));
    qt_provider_result r;
    char err[QT_PROVIDER_ERRLEN] = "";
    cr_assert_eq(qt_provider_stream_result(c.ps, &r, err, sizeof err), QT_OK, "%s", err);
    cr_assert_gt(r.prompt_tokens, 0);
    cr_assert_gt(r.completion_tokens, 0);
    cr_assert_neq(r.content[0], '\0');
    qt_provider_result_free(&r);
    qt_provider_stream_free(c.ps);
    qt_http_response_free(&resp);
}

Test(http, stream_openai)
{
    stream_kind(QT_KIND_OPENAI);
}

Test(http, stream_anthropic)
{
    stream_kind(QT_KIND_ANTHROPIC);
}

Test(http, stream_abort_by_callback)
{
    qt_http_response resp;
    stream_ctx c = {.abort_after = 1, .resp = &resp};
    post_job(QT_KIND_OPENAI, "fast", KEY, true, 5000, on_data, &c, &resp);
    cr_assert_eq(resp.transport, QT_HTTP_ABORTED, "transport %d: %s", resp.transport, resp.error);
    cr_assert_eq(c.calls, 1);
    qt_http_response_free(&resp);
}

Test(http, stream_error_body_is_stored)
{
    qt_http_response resp;
    stream_ctx c = {.resp = &resp};
    post_job(QT_KIND_ANTHROPIC, "fast", "sk-wrong", true, 5000, on_data, &c, &resp);
    cr_assert_eq(resp.status, 401);
    cr_assert_eq(c.calls, 0, "error bodies are not streamed");
    cr_assert_gt(resp.body_len, 0);
    qt_provider_error e;
    qt_provider_ops_for(QT_KIND_ANTHROPIC)->parse_error(resp.status, resp.body, resp.body_len, &e);
    cr_assert_str_eq(e.type, "authentication_error");
    qt_http_response_free(&resp);
}
