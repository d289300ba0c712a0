/* test_http_multi_threads.c: Criterion suite "http_multi", the threaded
 * model the engine runs: several loop threads, each with its own
 * qt_http_multi, fed by other threads through qt_loop_post (the one lock).
 * Named threads_* so `make tsan` runs it under ThreadSanitizer (built
 * against tests/tsan/criterion, hence no TestSuite fixtures here).
 */
#include "quotatop/http.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quotatop/loop.h"
#include "quotatop/mock.h"

enum { LOOPS = 2, FEEDERS = 3, PER_FEEDER = 40 };   /* each feeder posts to every loop */

typedef struct {
    qt_loop *loop;
    qt_http_multi *hm;
    const char *url;
    int want, done, ok;   /* loop thread only */
} lane;

typedef struct {
    lane *lane;
} job;

static const char *const hdrs[] = {"Content-Type: application/json"};
static const char *body = "{\"model\":\"m\",\"max_tokens\":8,"
                          "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

static void on_done(void *ud, qt_http_response *resp)
{
    job *j = ud;
    lane *ln = j->lane;
    ln->ok += resp->transport == QT_HTTP_OK && resp->status == 200;
    qt_http_response_free(resp);
    free(j);
    if (++ln->done == ln->want)
        qt_loop_stop(ln->loop);
}

/* Runs on the lane's loop thread: the transfer starts there. */
static void start_on_loop(void *ud)
{
    job *j = ud;
    lane *ln = j->lane;
    if (!qt_http_multi_post(ln->hm, ln->url, hdrs, 1, body, strlen(body), 10000, NULL, on_done, j)) {
        free(j);
        if (++ln->done == ln->want)
            qt_loop_stop(ln->loop);
    }
}

static void *run_lane(void *arg)
{
    lane *ln = arg;
    qt_loop_run(ln->loop);
    return NULL;
}

typedef struct {
    lane *lanes;
    pthread_barrier_t *bar;
    int failed;
} feeder_arg;

static void *feeder(void *arg)
{
    feeder_arg *f = arg;
    pthread_barrier_wait(f->bar);
    for (int i = 0; i < PER_FEEDER; i++)
        for (int k = 0; k < LOOPS; k++) {
            job *j = malloc(sizeof *j);
            j->lane = &f->lanes[k];
            if (qt_loop_post(f->lanes[k].loop, start_on_loop, j) != QT_OK) {
                free(j);
                f->failed++;
            }
        }
    return NULL;
}

Test(http_multi, threads_loops_each_with_a_multi_fed_from_other_threads, .timeout = 60)
{
    cr_assert_eq(qt_http_global_init(), QT_OK);
    qt_mock_opts o;
    qt_mock_opts_init(&o);
    char err[256] = "";
    qt_mock *mock = qt_mock_start(&o, err, sizeof err);
    cr_assert_not_null(mock);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", qt_mock_port(mock));

    lane lanes[LOOPS];
    pthread_t lt[LOOPS], ft[FEEDERS];
    for (int k = 0; k < LOOPS; k++) {
        lanes[k] = (lane){.url = url, .want = FEEDERS * PER_FEEDER};
        lanes[k].loop = qt_loop_new(NULL);
        lanes[k].hm = qt_http_multi_new(lanes[k].loop);   /* before its thread starts */
        cr_assert_not_null(lanes[k].hm);
        pthread_create(&lt[k], NULL, run_lane, &lanes[k]);
    }
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, FEEDERS);
    feeder_arg fa[FEEDERS];
    for (int i = 0; i < FEEDERS; i++) {
        fa[i] = (feeder_arg){.lanes = lanes, .bar = &bar};
        pthread_create(&ft[i], NULL, feeder, &fa[i]);
    }
    for (int i = 0; i < FEEDERS; i++) {
        pthread_join(ft[i], NULL);
        cr_assert_eq(fa[i].failed, 0);
    }
    for (int k = 0; k < LOOPS; k++) {
        pthread_join(lt[k], NULL);   /* each loop stops when its last transfer is done */
        cr_assert_eq(lanes[k].done, FEEDERS * PER_FEEDER);
        cr_assert_eq(lanes[k].ok, FEEDERS * PER_FEEDER, "lane %d: every transfer 200", k);
        qt_http_multi_free(lanes[k].hm);
        qt_loop_free(lanes[k].loop);
    }
    pthread_barrier_destroy(&bar);
    qt_mock_stop(mock);
    qt_http_global_cleanup();
}
