/* test_http_multi.c: Criterion suite "http_multi".
 *
 * The event-loop HTTP client against a real server, the in-process mock of
 * mock.h (the same server `quotatop mock` runs), on a live qt_loop run by
 * the test's thread. Covers: status, headers and body; 1000 concurrent POSTs
 * against a model with latency finishing in about one latency; keep-alive
 * reuse across transfers (chained from on_done); streaming chunks; non-2xx
 * bodies buffered, not streamed; abort (before the loop runs, from a timer,
 * from inside on_data, by on_data's return) giving QT_HTTP_ABORTED exactly
 * once; timeout; connection refused; freeing with transfers in flight; a
 * drained client keeping no connection once its transfers end.
 * A guard timer stops every loop after 20 s so a bug fails instead of hanging.
 */
#include "quotatop/http.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "quotatop/loop.h"
#include "quotatop/mock.h"

#define KEY "sk-multi-test-KEY"
#define LATENCY_MS 500

static qt_mock *mock;
static qt_loop *loop;
static qt_http_multi *hm;
static char url[96];
static const char *const hdrs[] = {"Content-Type: application/json",
                                   "Authorization: Bearer " KEY};

static void setup(void)
{
    cr_assert_eq(qt_http_global_init(), QT_OK);
    qt_mock_opts o;
    qt_mock_opts_init(&o);
    static qt_mock_model_opts models[3];
    memset(models, 0, sizeof models);
    snprintf(models[0].name, sizeof models[0].name, "fast");
    models[0].rpm = 600000;
    snprintf(models[1].name, sizeof models[1].name, "lat");
    models[1].latency_ms = LATENCY_MS;
    snprintf(models[2].name, sizeof models[2].name, "slow");
    models[2].latency_ms = 3000;
    o.models = models;
    o.nmodels = 3;
    o.require_key = KEY;
    o.stream_chunk_ms = 30;
    char err[256] = "";
    mock = qt_mock_start(&o, err, sizeof err);
    cr_assert_not_null(mock, "mock: %s", err);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", qt_mock_port(mock));
    loop = qt_loop_new(NULL);
    cr_assert_not_null(loop);
    hm = qt_http_multi_new(loop);
    cr_assert_not_null(hm);
}

static void teardown(void)
{
    qt_http_multi_free(hm);
    qt_loop_free(loop);
    qt_mock_stop(mock);
    qt_http_global_cleanup();
}

TestSuite(http_multi, .init = setup, .fini = teardown, .timeout = 60);

static char *chat_body(const char *model, int stream)
{
    static char b[256];
    snprintf(b, sizeof b,
             "{\"model\":\"%s\",\"max_tokens\":16,\"stream\":%s,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}",
             model, stream ? "true" : "false");
    return b;
}

/* One transfer's outcome, filled by on_done. */
typedef struct {
    int done;                 /* times on_done ran */
    int stop_when;            /* stop the loop when this many are done (shared counter) */
    int *counter;
    int status;
    qt_http_transport transport;
    char *body;
    size_t body_len;
    char ratelimit[32];
    long num_connects;
    int64_t elapsed_ms, ttfb_ms;
    /* streaming */
    int chunks;
    size_t streamed;
    char stream_head[2048];
    int abort_after;          /* on_data: return nonzero at this chunk (0 = never) */
    int abort_self_after;     /* on_data: qt_http_multi_abort at this chunk */
    qt_http_xfer *x;
} outcome;

static void on_done(void *ud, qt_http_response *resp)
{
    outcome *o = ud;
    o->done++;
    o->status = resp->status;
    o->transport = resp->transport;
    o->num_connects = resp->num_connects;
    o->elapsed_ms = resp->elapsed_ms;
    o->ttfb_ms = resp->ttfb_ms;
    o->body_len = resp->body_len;
    o->body = resp->body ? strdup(resp->body) : NULL;
    const char *rl = qt_http_response_header(resp, "x-ratelimit-limit-requests");
    snprintf(o->ratelimit, sizeof o->ratelimit, "%s", rl ? rl : "");
    qt_http_response_free(resp);
    if (o->counter && ++*o->counter == o->stop_when)
        qt_loop_stop(loop);
    if (!o->counter)
        qt_loop_stop(loop);
}

static int on_data(void *ud, const char *buf, size_t n)
{
    outcome *o = ud;
    o->chunks++;
    if (o->streamed < sizeof o->stream_head - 1) {
        size_t k = n < sizeof o->stream_head - 1 - o->streamed ? n : sizeof o->stream_head - 1 - o->streamed;
        memcpy(o->stream_head + o->streamed, buf, k);
    }
    o->streamed += n;
    if (o->abort_self_after && o->chunks == o->abort_self_after)
        qt_http_multi_abort(hm, o->x);
    return o->abort_after && o->chunks >= o->abort_after;
}

static bool guard_fired;
static void guard(void *ud)
{
    (void)ud;
    guard_fired = true;
    qt_loop_stop(loop);
}

/* Runs the loop until stopped; fails if the 20 s guard had to stop it. */
static void run_loop(void)
{
    guard_fired = false;
    qt_timer *g = qt_loop_timer_add(loop, qt_loop_now_ms(loop) + 20000, guard, NULL);
    cr_assert_eq(qt_loop_run(loop), 0);
    cr_assert(!guard_fired, "the loop ran 20 s: a transfer never finished");
    qt_loop_timer_cancel(loop, g);
}

static qt_http_xfer *post(const char *model, int stream, int timeout_ms, qt_http_on_data od,
                          outcome *o)
{
    const char *b = chat_body(model, stream);
    qt_http_xfer *x = qt_http_multi_post(hm, url, hdrs, 2, b, strlen(b), timeout_ms, od, on_done, o);
    cr_assert_not_null(x);
    o->x = x;
    return x;
}

Test(http_multi, ok_status_headers_body)
{
    outcome o = {0};
    post("fast", 0, 5000, NULL, &o);
    cr_assert_eq(qt_http_multi_active(hm), 1);
    run_loop();
    cr_assert_eq(o.done, 1);
    cr_assert_eq(o.transport, QT_HTTP_OK);
    cr_assert_eq(o.status, 200);
    cr_assert_str_eq(o.ratelimit, "600000", "the limit header came through");
    cr_assert_not_null(strstr(o.body, "\"choices\""), "body: %s", o.body);
    cr_assert_eq(o.body_len, strlen(o.body));
    cr_assert_eq(qt_http_multi_active(hm), 0);
    free(o.body);
}

Test(http_multi, request_copies_headers_and_body)
{
    char b[256], h[64];
    snprintf(b, sizeof b, "%s", chat_body("fast", 0));
    snprintf(h, sizeof h, "Authorization: Bearer %s", KEY);
    const char *hl[] = {"Content-Type: application/json", h};
    outcome o = {0};
    cr_assert_not_null(qt_http_multi_post(hm, url, hl, 2, b, strlen(b), 5000, NULL, on_done, &o));
    memset(b, 'x', sizeof b - 1);   /* the caller's buffers are gone before the loop runs */
    memset(h, 'y', sizeof h - 1);
    run_loop();
    cr_assert_eq(o.status, 200, "body: %s", o.body);
    free(o.body);
}

Test(http_multi, concurrent_1000_in_about_one_latency, .timeout = 120)
{
    enum { N = 1000 };
    qt_http_multi_set_max_connects(hm, 2 * N);
    outcome *o = calloc(N, sizeof *o);
    int counter = 0;
    uint64_t t0 = qt_loop_now_ms(loop);
    for (int i = 0; i < N; i++) {
        o[i] = (outcome){.counter = &counter, .stop_when = N};
        post("lat", 0, 30000, NULL, &o[i]);
    }
    run_loop();
    uint64_t took = qt_loop_now_ms(loop) - t0;
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += o[i].done == 1 && o[i].status == 200 && o[i].transport == QT_HTTP_OK;
        free(o[i].body);
    }
    cr_assert_eq(ok, N, "every transfer answered 200 once");
    cr_assert_geq(o[0].ttfb_ms, LATENCY_MS - 5, "the first byte came after the latency");
    cr_assert_geq(o[0].elapsed_ms, o[0].ttfb_ms);
    fprintf(stderr, "http_multi: %d concurrent POSTs, latency %d ms, took %llu ms\n", N,
            LATENCY_MS, (unsigned long long)took);
    /* Serially this is N * 500 ms = 500 s; concurrently about one latency
     * plus connection setup (a loaded 2-core box: allow 10 latencies). */
    cr_assert_lt(took, 10 * LATENCY_MS, "took %llu ms", (unsigned long long)took);
    cr_assert_geq(took, LATENCY_MS);
    free(o);
}

/* 1 when inode is one of this process's sockets (/proc/self/fd). */
static int own_socket(unsigned long inode)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    struct dirent *de;
    char path[300], link[64], want[64];
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    int yes = 0;
    while (!yes && (de = readdir(d))) {
        snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n > 0) {
            link[n] = 0;
            yes = !strcmp(link, want);
        }
    }
    closedir(d);
    return yes;
}

/* TCP connections to the mock in /proc/net/tcp state st ("01" established,
 * "06" TIME_WAIT): the client side has the mock's port as its remote port.
 * An established one counts only if this process holds it: /proc/net/tcp
 * is the whole machine's, and a test running beside this one (make test
 * runs two at once, and other suites may run too) holds its own. A socket
 * in TIME_WAIT belongs to no process: the caller compares counts. */
static int conns_to_mock(const char *st)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    cr_assert_not_null(f);
    char line[512], rem[64], state[8];
    unsigned long inode;
    int n = 0;
    char want[16];
    snprintf(want, sizeof want, ":%04X", qt_mock_port(mock));
    while (fgets(line, sizeof line, f))
        if (sscanf(line, " %*s %*s %63s %7s %*s %*s %*s %*s %*s %lu", rem, state, &inode) == 3
            && !strcmp(state, st) && strlen(rem) > 5 && !strcmp(rem + strlen(rem) - 5, want)
            && (strcmp(st, "01") || own_socket(inode)))
            n++;
    fclose(f);
    return n;
}

static void post_many(int n, outcome *o, int *counter)
{
    for (int i = 0; i < n; i++) {
        o[i] = (outcome){.counter = counter, .stop_when = n};
        post("lat", 0, 30000, NULL, &o[i]);
    }
}

Test(http_multi, connections_are_kept_for_reuse_by_default)
{
    enum { N = 20 };
    outcome o[N];
    int counter = 0;
    post_many(N, o, &counter);
    run_loop();
    for (int i = 0; i < N; i++) {
        cr_expect_eq(o[i].status, 200);
        free(o[i].body);
    }
    cr_assert_eq(conns_to_mock("01"), N, "all %d kept alive in the cache", N);
}

Test(http_multi, drained_connections_close_as_their_transfers_end)
{
    enum { N = 20 };
    outcome o[N];
    int counter = 0;
    /* A connection another test left in TIME_WAIT to a port the kernel has
     * since handed to this mock counts too: only an increase is ours. */
    int tw_before = conns_to_mock("06");
    post_many(N, o, &counter);
    qt_http_multi_drain(hm);   /* in flight: each is reset when it ends */
    run_loop();
    for (int i = 0; i < N; i++) {
        cr_expect_eq(o[i].status, 200);
        free(o[i].body);
    }
    int kept = conns_to_mock("01");
    cr_assert_eq(kept, 0, "none kept after their transfers (%d established)", kept);
    cr_assert_leq(conns_to_mock("06"), tw_before, "reset, so none left in TIME_WAIT");
    /* A transfer after the drain still goes, on a fresh connection it does
     * not keep either. */
    outcome late = {0};
    post("fast", 0, 5000, NULL, &late);
    run_loop();
    cr_assert_eq(late.status, 200);
    cr_assert_eq(late.num_connects, 1);
    free(late.body);
    cr_assert_eq(conns_to_mock("01"), 0);
}

/* Ten transfers in a chain, each posted from the previous one's on_done:
 * they all ride one kept-alive connection. */
typedef struct {
    int left;
    long connects;
    int ok;
} chain;

static void chain_done(void *ud, qt_http_response *resp)
{
    chain *c = ud;
    c->connects += resp->num_connects;
    c->ok += resp->status == 200;
    qt_http_response_free(resp);
    if (--c->left == 0) {
        qt_loop_stop(loop);
        return;
    }
    const char *b = chat_body("fast", 0);
    cr_assert_not_null(qt_http_multi_post(hm, url, hdrs, 2, b, strlen(b), 5000, NULL, chain_done, c));
}

Test(http_multi, keep_alive_across_transfers_posted_from_on_done)
{
    chain c = {.left = 10};
    const char *b = chat_body("fast", 0);
    qt_http_multi_post(hm, url, hdrs, 2, b, strlen(b), 5000, NULL, chain_done, &c);
    run_loop();
    cr_assert_eq(c.ok, 10);
    cr_assert_eq(c.connects, 1, "one connection for ten transfers");
}

Test(http_multi, streaming_chunks_arrive)
{
    outcome o = {0};
    post("fast", 1, 10000, on_data, &o);
    run_loop();
    cr_assert_eq(o.done, 1);
    cr_assert_eq(o.transport, QT_HTTP_OK);
    cr_assert_eq(o.status, 200);
    cr_assert_gt(o.chunks, 1, "the body came in several pieces");
    cr_assert_eq(o.body_len, 0, "a 2xx stream is not stored");
    cr_assert_not_null(strstr(o.stream_head, "data: "), "stream: %s", o.stream_head);
    free(o.body);
}

Test(http_multi, non_2xx_body_buffered_not_streamed)
{
    const char *b = chat_body("fast", 1);
    const char *bad[] = {"Content-Type: application/json", "Authorization: Bearer wrong"};
    outcome o = {0};
    qt_http_multi_post(hm, url, bad, 2, b, strlen(b), 5000, on_data, on_done, &o);
    run_loop();
    cr_assert_eq(o.status, 401);
    cr_assert_eq(o.transport, QT_HTTP_OK);
    cr_assert_eq(o.chunks, 0);
    cr_assert_gt(o.body_len, 0);
    cr_assert_not_null(strstr(o.body, "error"), "body: %s", o.body);
    free(o.body);
}

Test(http_multi, abort_before_the_loop_runs)
{
    outcome o = {0};
    qt_http_xfer *x = post("fast", 0, 5000, NULL, &o);
    qt_http_multi_abort(hm, x);
    cr_assert_eq(o.done, 1, "on_done ran at once");
    cr_assert_eq(o.transport, QT_HTTP_ABORTED);
    cr_assert_eq(qt_http_multi_active(hm), 0);
    free(o.body);
}

static void abort_timer(void *ud)
{
    outcome *o = ud;
    qt_http_multi_abort(hm, o->x);
}

Test(http_multi, abort_in_flight_from_a_timer)
{
    outcome o = {0};
    post("slow", 0, 10000, NULL, &o);
    uint64_t t0 = qt_loop_now_ms(loop);
    qt_loop_timer_add(loop, t0 + 100, abort_timer, &o);
    run_loop();
    cr_assert_eq(o.done, 1);
    cr_assert_eq(o.transport, QT_HTTP_ABORTED);
    cr_assert_lt(qt_loop_now_ms(loop) - t0, 2000, "did not wait for the 3 s answer");
    cr_assert_eq(qt_http_multi_active(hm), 0);
    free(o.body);
}

Test(http_multi, abort_from_inside_on_data)
{
    outcome o = {.abort_self_after = 2};
    post("fast", 1, 10000, on_data, &o);
    run_loop();
    cr_assert_eq(o.done, 1, "on_done once");
    cr_assert_eq(o.transport, QT_HTTP_ABORTED);
    cr_assert_eq(o.chunks, 2, "no data after the abort");
    free(o.body);
}

Test(http_multi, on_data_nonzero_aborts)
{
    outcome o = {.abort_after = 1};
    post("fast", 1, 10000, on_data, &o);
    run_loop();
    cr_assert_eq(o.done, 1);
    cr_assert_eq(o.transport, QT_HTTP_ABORTED);
    cr_assert_eq(o.chunks, 1);
    free(o.body);
}

Test(http_multi, timeout)
{
    outcome o = {0};
    post("slow", 0, 200, NULL, &o);
    uint64_t t0 = qt_loop_now_ms(loop);
    run_loop();
    cr_assert_eq(o.done, 1);
    cr_assert_eq(o.transport, QT_HTTP_TIMEOUT);
    cr_assert_lt(qt_loop_now_ms(loop) - t0, 2000);
    free(o.body);
}

static int unused_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);   /* nothing listens there now */
    return ntohs(a.sin_port);
}

Test(http_multi, connection_refused)
{
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/v1/chat/completions", unused_port());
    outcome o = {0};
    const char *b = chat_body("fast", 0);
    cr_assert_not_null(qt_http_multi_post(hm, u, hdrs, 2, b, strlen(b), 5000, NULL, on_done, &o));
    run_loop();
    cr_assert_eq(o.done, 1);
    cr_assert_eq(o.transport, QT_HTTP_CONNECT);
    cr_assert_eq(o.status, 0);
    free(o.body);
}

Test(http_multi, invalid_arguments_return_null)
{
    outcome o = {0};
    cr_assert_null(qt_http_multi_post(NULL, url, hdrs, 2, "", 0, 0, NULL, on_done, &o));
    cr_assert_null(qt_http_multi_post(hm, NULL, hdrs, 2, "", 0, 0, NULL, on_done, &o));
    cr_assert_null(qt_http_multi_post(hm, url, hdrs, 2, NULL, 5, 0, NULL, on_done, &o));
    cr_assert_null(qt_http_multi_post(hm, url, hdrs, 2, "", 0, 0, NULL, NULL, &o));
    cr_assert_eq(o.done, 0);
    qt_http_multi_abort(hm, NULL);
}

static void start_then_stop(void *ud)
{
    (void)ud;
    qt_loop_stop(loop);
}

Test(http_multi, free_aborts_what_is_in_flight)
{
    enum { N = 20 };
    outcome o[N];
    memset(o, 0, sizeof o);
    int counter = 0;
    for (int i = 0; i < N; i++) {
        o[i].counter = &counter;
        o[i].stop_when = -1;
        post("slow", 0, 10000, NULL, &o[i]);
    }
    /* let the transfers connect and send, then free in the middle */
    qt_loop_timer_add(loop, qt_loop_now_ms(loop) + 200, start_then_stop, NULL);
    run_loop();
    cr_assert_gt(qt_loop_watch_count(loop), 0, "sockets are watched while in flight");
    qt_http_multi_free(hm);
    hm = NULL;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(o[i].done, 1, "transfer %d: on_done once", i);
        cr_assert_eq(o[i].transport, QT_HTTP_ABORTED);
        free(o[i].body);
    }
    cr_assert_eq(qt_loop_watch_count(loop), 0, "no watch left behind");
    cr_assert_eq(qt_loop_timer_count(loop), 0, "no timer left behind");
}

/* A host name goes through curl's resolver (asynchronous in the multi). */
Test(http_multi, host_name_resolves)
{
    char u[96];
    snprintf(u, sizeof u, "http://localhost:%d/v1/chat/completions", qt_mock_port(mock));
    outcome o = {0};
    const char *b = chat_body("fast", 0);
    cr_assert_not_null(qt_http_multi_post(hm, u, hdrs, 2, b, strlen(b), 5000, NULL, on_done, &o));
    run_loop();
    cr_assert_eq(o.done, 1);
    cr_assert_eq(o.status, 200, "transport %d", o.transport);
    free(o.body);
}
