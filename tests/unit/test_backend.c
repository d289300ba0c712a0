/* test_backend.c: the async Redis backend on a live qt_loop against a real
 * redis-server started by each test: admission verdicts, commit, NOSCRIPT
 * after SCRIPT FLUSH, Redis killed and restarted (DOWN at once, recovery by
 * itself), a stopped Redis (the timeout), fleet pause through control and
 * pub/sub seen by a second process, the fleet view, and the runner (the
 * backend on a loop thread of its own, every call posted). Skips without
 * redis-server. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "quotatop/backend.h"
#include "quotatop/loop.h"
#include "redis_fixture.h"

static redis_fixture fx;
static qt_loop *loop;
static char url[64];

static void setup(void)
{
    if (!rf_have_redis())
        cr_skip_test("redis-server is not installed");
    cr_assert_eq(rf_start(&fx, NULL), 0, "redis-server did not start");
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", fx.port);
    loop = qt_loop_new(NULL);
    cr_assert_not_null(loop);
}

static void teardown(void)
{
    qt_loop_free(loop);
    loop = NULL;
    rf_stop(&fx);
}

TestSuite(backend, .init = setup, .fini = teardown, .timeout = 30);

/* Runs the loop until *flag is set or ms pass. */
static int *wait_flag;
static void check_flag(void *ud);
static void stop_loop(void *ud) { (void)ud; qt_loop_stop(loop); }
static void check_flag(void *ud)
{
    if (*wait_flag)
        qt_loop_stop(loop);
    else
        qt_loop_timer_add(loop, qt_loop_now_ms(loop) + 5, check_flag, ud);
}
static int run_until(int *flag, long ms)
{
    wait_flag = flag;
    qt_timer *t = qt_loop_timer_add(loop, qt_loop_now_ms(loop) + (uint64_t)ms, stop_loop, NULL);
    qt_timer *c = qt_loop_timer_add(loop, qt_loop_now_ms(loop) + 1, check_flag, NULL);
    qt_loop_run(loop);
    (void)t; (void)c;
    return *flag;
}

typedef struct {
    int done;
    qt_backend_decision d;
} answer;

static void on_admit(void *ud, qt_backend_lease *l, const qt_backend_decision *d)
{
    (void)l;
    answer *a = ud;
    a->d = *d;
    a->done = 1;
}

static qt_backend_lease req(double rpm, int conc)
{
    qt_backend_lease l;
    memset(&l, 0, sizeof l);
    snprintf(l.workflow, sizeof l.workflow, "default");
    l.n_rate = 2;
    snprintf(l.rate[0].name, sizeof l.rate[0].name, "model:m");
    l.rate[0].rpm = rpm;
    l.rate[0].max_concurrent = conc;
    l.rate[0].est_tokens = 10;
    snprintf(l.rate[1].name, sizeof l.rate[1].name, "provider:p");
    l.rate[1].est_tokens = 10;
    l.n_budget = 1;
    snprintf(l.budget[0].name, sizeof l.budget[0].name, "day");
    l.budget[0].per_day = 1;
    l.budget[0].limit_usd = 10;
    l.budget[0].est_usd = 0.01;
    return l;
}

static qt_backend_verdict admit_now(qt_backend *b, qt_backend_lease *l, long ms)
{
    answer a = { 0 };
    qt_backend_admit(b, l, on_admit, &a);
    cr_assert(run_until(&a.done, ms), "no answer within %ld ms", ms);
    return a.d.verdict;
}

static int states_up, states_down, ctl_pause, ctl_resume;
static void on_state(void *ud, int up, const char *why)
{
    (void)ud; (void)why;
    if (up) states_up++; else states_down++;
}
static void on_control(void *ud, const char *op, const char *arg)
{
    (void)ud; (void)arg;
    if (!strcmp(op, "pause")) ctl_pause++;
    if (!strcmp(op, "resume")) ctl_resume++;
}

static qt_backend *make(const char *mode)
{
    static const char *keys[] = { "model:m", "provider:p" };
    qt_backend_opts o = { .url = url, .prefix = "t", .lease_ms = 2000, .timeout_ms = 300,
                          .mode = mode, .view_keys = keys, .n_view_keys = 2,
                          .on_state = on_state, .on_control = on_control };
    char err[160];
    qt_backend *b = qt_backend_new(loop, &o, err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    return b;
}

Test(backend, admit_wait_commit)
{
    qt_backend *b = make("run");
    qt_backend_lease l1 = req(60, 0), l2 = req(60, 0);
    cr_expect_eq(admit_now(b, &l1, 3000), QT_BACKEND_ADMITTED);
    cr_expect(l1.active);
    answer a = { 0 };
    qt_backend_admit(b, &l2, on_admit, &a);
    run_until(&a.done, 3000);
    cr_expect_eq(a.d.verdict, QT_BACKEND_WAIT);
    cr_expect(a.d.wait_ms > 900 && a.d.wait_ms <= 1000, "wait %llu", (unsigned long long)a.d.wait_ms);
    cr_expect_eq(a.d.index, 0, "the model key paces");
    qt_backend_commit(b, &l1, 12, 0.002);
    cr_expect_eq(l1.active, 0);
    qt_backend_free(b);
}

Test(backend, noscript_reloads_and_retries)
{
    qt_backend *b = make("run");
    qt_backend_lease l = req(0, 0);
    cr_expect_eq(admit_now(b, &l, 3000), QT_BACKEND_ADMITTED);
    redisContext *c = redisConnect("127.0.0.1", fx.port);
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    redisFree(c);
    qt_backend_lease l2 = req(0, 0);
    cr_expect_eq(admit_now(b, &l2, 3000), QT_BACKEND_ADMITTED);
    qt_backend_view v;
    qt_backend_view_copy(b, &v);
    cr_expect_geq(v.noscript_reloads, 1);
    qt_backend_free(b);
}

Test(backend, redis_killed_then_back)
{
    states_up = states_down = 0;
    qt_backend *b = make("run");
    qt_backend_lease l = req(0, 0);
    cr_expect_eq(admit_now(b, &l, 3000), QT_BACKEND_ADMITTED);
    int port = fx.port;
    rf_stop(&fx);
    int gone = 0;
    run_until(&gone, 300);   /* the loop notices the closed connection */
    qt_backend_lease l2 = req(0, 0);
    cr_expect_eq(admit_now(b, &l2, 3000), QT_BACKEND_DOWN);
    cr_expect_geq(states_down, 1);
    cr_expect_eq(qt_backend_up(b), 0);
    /* Same port again: the backend reconnects by itself. */
    const char *extra[] = { NULL };
    int saved = fx.port;
    (void)saved;
    fx.port = port;
    pid_t p = fork();
    if (p == 0) {
        char ps[16];
        snprintf(ps, sizeof ps, "%d", port);
        int dn = open("/dev/null", O_RDWR);
        dup2(dn, 1);
        dup2(dn, 2);
        execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    (void)extra;
    fx.pid = p;
    int up = 0;
    for (int i = 0; i < 100 && !up; i++) {
        int never = 0;
        run_until(&never, 50);
        up = qt_backend_up(b);
    }
    cr_expect(up, "no reconnection within 5 s");
    cr_expect_geq(states_up, 1);
    qt_backend_lease l3 = req(0, 0);
    cr_expect_eq(admit_now(b, &l3, 3000), QT_BACKEND_ADMITTED, "admits again after the restart");
    qt_backend_free(b);
}

Test(backend, stopped_redis_times_out)
{
    qt_backend *b = make("run");
    qt_backend_lease l = req(0, 0);
    cr_expect_eq(admit_now(b, &l, 3000), QT_BACKEND_ADMITTED);
    kill(fx.pid, SIGSTOP);
    uint64_t t0 = qt_loop_now_ms(loop);
    qt_backend_lease l2 = req(0, 0);
    cr_expect_eq(admit_now(b, &l2, 3000), QT_BACKEND_DOWN);
    uint64_t took = qt_loop_now_ms(loop) - t0;
    cr_expect(took >= 290 && took < 600, "DOWN after %llu ms (timeout 300)", (unsigned long long)took);
    kill(fx.pid, SIGCONT);
    int up = 0;
    for (int i = 0; i < 100 && !up; i++) {
        int never = 0;
        run_until(&never, 50);
        up = qt_backend_up(b);
    }
    cr_expect(up);
    qt_backend_free(b);
}

Test(backend, fleet_pause_reaches_the_other_process)
{
    ctl_pause = ctl_resume = 0;
    qt_backend *a = make("run"), *b = make("serve");
    qt_backend_lease l = req(0, 0);
    cr_expect_eq(admit_now(b, &l, 3000), QT_BACKEND_ADMITTED);
    cr_expect_eq(admit_now(a, &l, 3000), QT_BACKEND_ADMITTED);
    cr_expect_eq(qt_backend_control(a, "pause", NULL, NULL, 0), QT_OK);
    int never = 0;
    run_until(&never, 300);
    cr_expect_eq(ctl_pause, 2, "both processes told (%d)", ctl_pause);
    qt_backend_lease l2 = req(0, 0);
    cr_expect_eq(admit_now(b, &l2, 3000), QT_BACKEND_PAUSED);
    qt_backend_view v;
    qt_backend_view_copy(b, &v);
    cr_expect_eq(v.paused, 1);
    cr_expect_eq(v.n_procs, 2, "two processes in the view");
    cr_expect_eq(v.fleet_in_flight, 2);
    cr_expect_geq(v.rates[0].requests_60s, 2);
    cr_expect_eq(qt_backend_control(b, "resume", NULL, NULL, 0), QT_OK);
    run_until(&never, 300);
    cr_expect_eq(ctl_resume, 2);
    cr_expect_eq(admit_now(b, &l2, 3000), QT_BACKEND_ADMITTED);
    qt_backend_free(a);
    qt_backend_free(b);
}

/* The runner: every call posted; an answer on the runner's thread. */
typedef struct {
    pthread_mutex_t mu;
    int done, take;
    qt_backend_decision d;
    qt_backend_lease lease;
} runner_answer;

static int on_runner_admit(void *ud, const qt_backend_lease *l, const qt_backend_decision *d)
{
    runner_answer *a = ud;
    pthread_mutex_lock(&a->mu);
    a->d = *d;
    a->lease = *l;
    a->done = 1;
    int take = a->take;
    pthread_mutex_unlock(&a->mu);
    return take;
}

static int runner_wait(runner_answer *a, long ms)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pthread_mutex_lock(&a->mu);
        int d = a->done;
        pthread_mutex_unlock(&a->mu);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long el = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (d || el > ms)
            return d;
        usleep(1000);
    }
}

static void runner_ask(qt_backend_runner *r, runner_answer *a, const qt_backend_lease *l, int take)
{
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    a->take = take;
    cr_assert_eq(qt_backend_runner_admit(r, l, on_runner_admit, a), QT_OK);
}

Test(backend, runner_answers_without_blocking_and_forgets_a_refused_lease)
{
    static const char *keys[] = { "model:m" };
    qt_backend_opts o = { .url = url, .prefix = "r", .lease_ms = 2000, .timeout_ms = 300,
                          .mode = "run", .view_keys = keys, .n_view_keys = 1 };
    char err[160];
    qt_backend_runner *r = qt_backend_runner_new(&o, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    qt_backend_lease l = req(0, 1);
    runner_answer a;
    /* Admitted but refused by the caller: the slot is freed at once. */
    runner_ask(r, &a, &l, 0);
    cr_assert(runner_wait(&a, 3000));
    cr_expect_eq(a.d.verdict, QT_BACKEND_ADMITTED, "%s", a.d.error);
    runner_ask(r, &a, &l, 1);
    cr_assert(runner_wait(&a, 3000));
    cr_expect_eq(a.d.verdict, QT_BACKEND_ADMITTED, "the forgotten lease freed its slot");
    cr_expect(a.lease.active, "taken");
    qt_backend_lease held = a.lease;
    runner_ask(r, &a, &l, 1);
    cr_assert(runner_wait(&a, 3000));
    cr_expect_eq(a.d.verdict, QT_BACKEND_FULL, "one slot, held");
    qt_backend_runner_commit(r, &held, 10, 0.001);
    cr_expect_eq(held.active, 0);
    /* Redis stopped: the call returns at once, the answer comes as DOWN
     * after timeout_ms. */
    kill(fx.pid, SIGSTOP);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    runner_ask(r, &a, &l, 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_expect(ms < 50, "the admission call took %ld ms", ms);
    cr_assert(runner_wait(&a, 2000), "answered within the timeout");
    cr_expect_eq(a.d.verdict, QT_BACKEND_DOWN);
    kill(fx.pid, SIGCONT);
    qt_backend_runner_free(r);
}
