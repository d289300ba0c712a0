/* bench_http_multi.c: requests per second of qt_http_multi (32 transfers
 * kept in flight on one loop thread, then split over two loops: one per core
 * on the 2-core machines here) against a zero-latency mock, next to wrk -t2
 * straight to the same mock with the same concurrency, in the same run, as a
 * ratio (these machines are shared and noisy: absolute figures mean little).
 *
 *   build/bench/bench_http_multi [SECONDS] [CONCURRENCY]    (default 2, 32)
 *
 * Three interleaved rounds (wrk, one loop, two loops, each SECONDS long);
 * the medians and each round's ratio are printed.
 *
 * The mock runs in this process (qt_mock_start, the server `quotatop mock`
 * runs); wrk (apt-get install wrk) runs as a child with -t2. Without wrk
 * only the qt_http_multi figure is printed. QT_BENCH_URL=http://HOST:PORT
 * uses a mock started elsewhere instead (to profile the client alone:
 * `perf record` then sees only this process); QT_BENCH_WRK=0 skips wrk.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quotatop/http.h"
#include "quotatop/loop.h"
#include "quotatop/mock.h"

#define BODY "{\"model\":\"bench\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\"," \
             "\"content\":\"Say hello in five words.\"}]}"

typedef struct {
    qt_loop *loop;
    qt_http_multi *hm;
    const char *url;
    uint64_t end_ms;
    long ok, bad, in_flight;
} bench;

static const char *const hdrs[] = {"Content-Type: application/json"};

static void on_done(void *ud, qt_http_response *resp);

static void start_one(bench *b)
{
    if (qt_http_multi_post(b->hm, b->url, hdrs, 1, BODY, strlen(BODY), 10000, NULL, on_done, b))
        b->in_flight++;
}

static void on_done(void *ud, qt_http_response *resp)
{
    bench *b = ud;
    b->in_flight--;
    if (resp->transport == QT_HTTP_OK && resp->status == 200)
        b->ok++;
    else
        b->bad++;
    qt_http_response_free(resp);
    if (qt_loop_now_ms(b->loop) < b->end_ms)
        start_one(b);
    else if (b->in_flight == 0)
        qt_loop_stop(b->loop);
}

typedef struct {
    const char *url;
    int secs, conc;
    long ok, bad;
    uint64_t took_ms;
} loop_arg;

/* One loop thread keeping a->conc transfers in flight for a->secs. */
static void *run_loop_thread(void *arg)
{
    loop_arg *a = arg;
    bench b = {.url = a->url};
    b.loop = qt_loop_new(NULL);
    b.hm = qt_http_multi_new(b.loop);
    if (!b.loop || !b.hm) {
        fprintf(stderr, "bench_http_multi: cannot create the loop\n");
        exit(1);
    }
    uint64_t t0 = qt_loop_now_ms(b.loop);
    b.end_ms = t0 + (uint64_t)a->secs * 1000;
    for (int i = 0; i < a->conc; i++)
        start_one(&b);
    qt_loop_run(b.loop);
    a->took_ms = qt_loop_now_ms(b.loop) - t0;
    qt_http_multi_free(b.hm);
    qt_loop_free(b.loop);
    a->ok = b.ok;
    a->bad = b.bad;
    return NULL;
}

/* conc transfers in flight, split over loops threads (one loop each);
 * returns the requests per second they completed together. */
static double run_multi(const char *url, int secs, int conc, int loops, long *bad)
{
    pthread_t th[8];
    loop_arg a[8];
    for (int i = 0; i < loops; i++) {
        a[i] = (loop_arg){.url = url, .secs = secs, .conc = conc / loops + (i < conc % loops)};
        pthread_create(&th[i], NULL, run_loop_thread, &a[i]);
    }
    long ok = 0;
    uint64_t took = 0;
    *bad = 0;
    for (int i = 0; i < loops; i++) {
        pthread_join(th[i], NULL);
        ok += a[i].ok;
        *bad += a[i].bad;
        took = a[i].took_ms > took ? a[i].took_ms : took;
    }
    return took ? (double)ok * 1000.0 / (double)took : 0;
}

/* Runs wrk against url; returns its Requests/sec, or -1 without wrk. */
static double run_wrk(const char *url, int secs, int conc)
{
    const char *use = getenv("QT_BENCH_WRK");
    if ((use && !strcmp(use, "0")) || system("command -v wrk >/dev/null 2>&1") != 0)
        return -1;
    char lua[] = "/tmp/qt-bench-XXXXXX";
    int fd = mkstemp(lua);
    if (fd < 0)
        return -1;
    const char *script = "wrk.method = \"POST\"\n"
                         "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
                         "wrk.body = '" BODY "'\n";
    ssize_t w = write(fd, script, strlen(script));
    close(fd);
    if (w < 0)
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "wrk -t2 -c%d -d%ds -s %s %s 2>&1", conc, secs, lua, url);
    FILE *p = popen(cmd, "r");
    double rps = -1;
    char line[256];
    while (p && fgets(line, sizeof line, p))
        if (!strncmp(line, "Requests/sec:", 13))
            rps = atof(line + 13);
    if (p)
        pclose(p);
    unlink(lua);
    return rps;
}

#define ROUNDS 3

static double median(const double v[ROUNDS])
{
    double a = v[0], b = v[1], c = v[2];
    if (a > b) { double t = a; a = b; b = t; }
    if (b > c) b = c;
    return a > b ? a : b;
}

int main(int argc, char **argv)
{
    int secs = argc > 1 ? atoi(argv[1]) : 2;
    int conc = argc > 2 ? atoi(argv[2]) : 32;
    if (secs < 1 || secs > 600 || conc < 1 || conc > 10000) {
        fprintf(stderr, "usage: bench_http_multi [SECONDS 1..600] [CONCURRENCY 1..10000]\n");
        return 2;
    }
    if (qt_http_global_init() != QT_OK)
        return 1;
    qt_mock *m = NULL;
    char url[160];
    const char *ext = getenv("QT_BENCH_URL");
    if (ext && *ext) {
        snprintf(url, sizeof url, "%.120s/v1/chat/completions", ext);
    } else {
        qt_mock_opts o;
        qt_mock_opts_init(&o);
        char err[256] = "";
        m = qt_mock_start(&o, err, sizeof err);
        if (!m) {
            fprintf(stderr, "bench_http_multi: mock: %s\n", err);
            return 1;
        }
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", qt_mock_port(m));
    }
    /* Interleaved rounds, medians: a burst of load from other processes hits
     * one round of each figure rather than one figure. */
    double w[ROUNDS], one[ROUNDS], two[ROUNDS], r1[ROUNDS], r2[ROUNDS];
    long bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        long b1 = 0, b2 = 0;
        w[i] = run_wrk(url, secs, conc);
        one[i] = run_multi(url, secs, conc, 1, &b1);
        two[i] = run_multi(url, secs, conc, 2, &b2);
        bad += b1 + b2;
        r1[i] = w[i] > 0 ? one[i] / w[i] : 0;
        r2[i] = w[i] > 0 ? two[i] / w[i] : 0;
    }
    printf("http_multi vs wrk -t2: %d in flight, zero-latency %s, medians of %d interleaved "
           "rounds of %d s\n", conc, m ? "mock" : "upstream at QT_BENCH_URL", ROUNDS, secs);
    if (median(w) > 0)
        printf("  wrk -t2                %8.0f req/s\n", median(w));
    else
        printf("  wrk                    not run (QT_BENCH_WRK=0, or apt-get install wrk)\n");
    printf("  qt_http_multi, 1 loop  %8.0f req/s", median(one));
    if (median(w) > 0)
        printf("   ratio %.2f (rounds %.2f %.2f %.2f)", median(r1), r1[0], r1[1], r1[2]);
    printf("\n  qt_http_multi, 2 loops %8.0f req/s", median(two));
    if (median(w) > 0)
        printf("   ratio %.2f (rounds %.2f %.2f %.2f)", median(r2), r2[0], r2[1], r2[2]);
    printf("\n  failed transfers: %ld\n", bad);
    if (m)
        qt_mock_stop(m);
    qt_http_global_cleanup();
    return 0;
}
