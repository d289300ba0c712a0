/* test_backend_gate.c: the engine's shared admission step (backend_gate.h)
 * against a real redis-server started by each test: nobody waits for
 * Redis (an admission returns at once, even with Redis stopped, and its
 * answer comes on the backend's thread), per-key asks one at a time with
 * the fleet's hint answering the rest without a Redis call, a slot taken
 * ahead given back when the fleet pauses, the outage policies (this
 * process's share on a manual clock; closed), and close answering what
 * Redis has not. threads_* also run under `make tsan`. Skips without
 * redis-server. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "quotatop/backend_gate.h"
#include "quotatop/clock.h"
#include "quotatop/config.h"
#include "redis_fixture.h"

#ifdef QT_TSAN_CRITERION_SHIM_H
#define SKIP_WITHOUT_REDIS() do { if (!rf_have_redis()) return; } while (0)
#else
#define SKIP_WITHOUT_REDIS() do { if (!rf_have_redis()) cr_skip_test("redis-server is not installed"); } while (0)
#endif

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One admission's answer, set on whichever thread the gate answers. */
typedef struct {
    pthread_mutex_t mu;
    int done;
    pthread_t thread;
    qt_gate_answer a;
    qt_gate_ticket t;
} asked;

static void on_answer(void *ud, qt_gate_ticket *t, const qt_gate_answer *a)
{
    asked *k = ud;
    (void)t;
    pthread_mutex_lock(&k->mu);
    k->a = *a;
    k->thread = pthread_self();
    k->done = 1;
    pthread_mutex_unlock(&k->mu);
}

static void ask_init(asked *k)
{
    memset(k, 0, sizeof *k);
    pthread_mutex_init(&k->mu, NULL);
}

static int is_done(asked *k)
{
    pthread_mutex_lock(&k->mu);
    int d = k->done;
    pthread_mutex_unlock(&k->mu);
    return d;
}

/* Waits (real time, polling) for an answer: 1 when it came within ms. */
static int wait_answer(asked *k, long ms)
{
    uint64_t end = mono_ms() + (uint64_t)ms;
    while (!is_done(k) && mono_ms() < end)
        usleep(1000);
    return is_done(k);
}

typedef struct {
    redis_fixture fx;
    qt_config *cfg;
    qt_backend_gate *g;
    qt_clock *clock;
    int paused_seen;
} env;

static void on_control(void *ud, const char *op, const char *arg)
{
    env *v = ud;
    (void)arg;
    if (!strcmp(op, "pause"))
        __atomic_store_n(&v->paused_seen, 1, __ATOMIC_RELAXED);
}

/* A fleet with model m (rpm) on provider p, through the fixture's Redis.
 * backend_extra: more "backend" keys (",\"on_error\": \"closed\""). */
static int env_start(env *v, double rpm, const char *backend_extra, qt_clock *clock)
{
    memset(v, 0, sizeof *v);
    if (rf_start(&v->fx, NULL) != 0)
        return -1;
    char json[1024];
    snprintf(json, sizeof json,
             "{\"providers\": {\"p\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:1\"}},"
             " \"models\": {\"m\": {\"providers\": [\"p\"], \"rpm\": %g}}, \"state_dir\": \"\","
             " \"backend\": {\"kind\": \"redis\", \"url\": \"redis://127.0.0.1:%d\", \"prefix\": \"g\","
             " \"lease_ms\": 2000, \"timeout_ms\": 300 %s}}",
             rpm, v->fx.port, backend_extra ? backend_extra : "");
    qt_diag d = { 0 };
    v->cfg = qt_config_parse(json, strlen(json), &d);
    qt_diag_free(&d);
    if (!v->cfg)
        return -1;
    v->clock = clock;
    qt_backend_gate_opts o = { .cfg = v->cfg, .mode = "run", .clock = clock, .on_control = on_control,
                               .ud = v };
    char err[200];
    v->g = qt_backend_gate_new(&o, err, sizeof err);
    if (!v->g)
        return -1;
    /* Connected: an admission of nothing (an unlimited estimate) is shared. */
    for (int i = 0; i < 300; i++) {
        qt_backend_view bv;
        qt_backend_gate_view(v->g, &bv);
        if (bv.up)
            return 0;
        usleep(10000);
    }
    return -1;
}

static void env_stop(env *v)
{
    qt_backend_gate_free(v->g);
    qt_config_free(v->cfg);
    rf_stop(&v->fx);
}

static uint64_t redis_admits(env *v)
{
    qt_backend_view bv;
    qt_backend_gate_view(v->g, &bv);
    return bv.admits;
}

static void admit(env *v, asked *k)
{
    ask_init(k);
    qt_backend_gate_admit(v->g, 0, 0, "default", 10, 0.001, &k->t, on_answer, k);
}

typedef struct {
    env *v;
    asked *k;
    uint64_t took_ms;
} asker;

static void *ask_thread(void *ud)
{
    asker *a = ud;
    uint64_t t0 = mono_ms();
    admit(a->v, a->k);
    a->took_ms = mono_ms() - t0;
    return NULL;
}

Test(backend_gate, threads_admit_never_waits_for_redis, .timeout = 30)
{
    SKIP_WITHOUT_REDIS();
    env v;
    cr_assert_eq(env_start(&v, 0, NULL, NULL), 0, "redis or the gate did not start");
    asked k1;
    admit(&v, &k1);
    cr_assert(wait_answer(&k1, 3000));
    cr_expect_eq(k1.a.verdict, QT_GATE_GO);
    cr_expect(k1.t.active && k1.t.shared, "a Redis lease");
    cr_expect(!pthread_equal(k1.thread, pthread_self()), "answered on the backend's thread");
    qt_backend_gate_commit(v.g, &k1.t, 10, 0.001);

    /* Redis stops answering: an admission from another thread still
     * returns at once; the answer (this process's share) comes after
     * backend.timeout_ms (300), on the backend's thread. */
    kill(v.fx.pid, SIGSTOP);
    asked k2;
    asker a = { &v, &k2, 0 };
    pthread_t th;
    uint64_t t0 = mono_ms();
    pthread_create(&th, NULL, ask_thread, &a);
    pthread_join(th, NULL);
    cr_expect(a.took_ms < 50, "the admission returned after %llu ms", (unsigned long long)a.took_ms);
    cr_expect(!is_done(&k2), "not answered before the timeout");
    cr_assert(wait_answer(&k2, 2000), "answered within the timeout");
    uint64_t took = mono_ms() - t0;
    cr_expect(took >= 250 && took < 1000, "answered after %llu ms (timeout 300)", (unsigned long long)took);
    cr_expect_eq(k2.a.verdict, QT_GATE_GO, "the share admits (no limit on m)");
    cr_expect(k2.t.active && !k2.t.shared, "a fallback ticket");
    cr_expect_eq(qt_backend_gate_state(v.g), QT_GATE_LOCAL_SHARE);
    qt_backend_gate_commit(v.g, &k2.t, 10, 0.001);
    kill(v.fx.pid, SIGCONT);
    env_stop(&v);
}

Test(backend_gate, one_ask_per_key_and_the_hint_answers_the_rest, .timeout = 30)
{
    SKIP_WITHOUT_REDIS();
    env v;
    /* 60 RPM: one a second; lease 2000 ms: slots up to 1000 ms ahead. */
    cr_assert_eq(env_start(&v, 60, NULL, NULL), 0, "redis or the gate did not start");
    uint64_t before = redis_admits(&v);
    enum { N = 5 };
    asked k[N];
    for (int i = 0; i < N; i++)
        admit(&v, &k[i]);
    for (int i = 0; i < N; i++)
        cr_assert(wait_answer(&k[i], 3000), "ask %d answered", i);
    int go = 0, ahead = 0, wait = 0;
    for (int i = 0; i < N; i++) {
        if (k[i].a.verdict == QT_GATE_GO) {
            go++;
            if (k[i].a.delay_ms >= 900)
                ahead++;
        } else if (k[i].a.verdict == QT_GATE_WAIT) {
            wait++;
            cr_expect(k[i].a.wait_ms > 0 && k[i].a.wait_ms <= 2000, "wait %llu ms",
                      (unsigned long long)k[i].a.wait_ms);
            cr_expect_eq(k[i].a.rate, 0, "the model's key holds");
        }
    }
    cr_expect_eq(k[0].a.verdict, QT_GATE_GO);
    cr_expect_eq(k[0].a.delay_ms, 0, "the first goes now");
    cr_expect_eq(go, 2, "now and the next slot (1 s ahead)");
    cr_expect_eq(ahead, 1, "the second sends after its slot");
    cr_expect_eq(wait, 3);
    cr_expect_eq(redis_admits(&v) - before, 2, "2 Redis calls for 5 admissions (the hint answered 3)");
    for (int i = 0; i < N; i++)
        qt_backend_gate_release(v.g, &k[i].t);
    env_stop(&v);
}

Test(backend_gate, a_slot_taken_ahead_is_given_back_when_the_fleet_pauses, .timeout = 30)
{
    SKIP_WITHOUT_REDIS();
    env v;
    cr_assert_eq(env_start(&v, 60, NULL, NULL), 0, "redis or the gate did not start");
    asked k1, k2;
    admit(&v, &k1);
    cr_assert(wait_answer(&k1, 3000));
    admit(&v, &k2);
    cr_assert(wait_answer(&k2, 3000));
    cr_assert_eq(k2.a.verdict, QT_GATE_GO);
    cr_assert_gt(k2.a.delay_ms, 0, "a slot ahead");
    cr_assert_eq(qt_backend_gate_control(v.g, "pause", NULL, NULL, 0), QT_OK);
    for (int i = 0; i < 300 && !__atomic_load_n(&v.paused_seen, __ATOMIC_RELAXED); i++)
        usleep(10000);
    cr_assert(__atomic_load_n(&v.paused_seen, __ATOMIC_RELAXED), "the pause came back through Redis");
    qt_gate_answer a;
    qt_backend_gate_slot(v.g, &k2.t, &a);
    cr_expect_eq(a.verdict, QT_GATE_WAIT);
    cr_expect(strstr(a.reason, "fleet paused") != NULL, "%s", a.reason);
    cr_expect_eq(k2.t.active, 0, "the lease was given back");
    qt_gate_answer a1;
    qt_backend_gate_slot(v.g, &k1.t, &a1);   /* an unpaused copy would go: here it is paused too */
    cr_expect_eq(a1.verdict, QT_GATE_WAIT);
    env_stop(&v);
}

Test(backend_gate, local_share_paces_at_limit_over_processes, .timeout = 30)
{
    SKIP_WITHOUT_REDIS();
    qt_clock *clk = qt_clock_manual_new(1000000);
    env v;
    /* 600 RPM over 2 expected processes: 300 RPM, one per 200 ms. */
    cr_assert_eq(env_start(&v, 600, ", \"expected_processes\": 2", clk), 0, "redis or the gate did not start");
    rf_stop(&v.fx);
    for (int i = 0; i < 300 && qt_backend_gate_state(v.g) == QT_GATE_SHARED; i++)
        usleep(10000);
    cr_assert_eq(qt_backend_gate_state(v.g), QT_GATE_LOCAL_SHARE);
    cr_expect_eq(qt_backend_gate_divisor(v.g), 2);
    int sent = 0;
    for (int step = 0; step < 100; step++) {   /* 10 s of the manual clock, 100 ms a step */
        for (;;) {
            asked k;
            admit(&v, &k);
            cr_assert(is_done(&k), "the share answers at once");
            if (k.a.verdict != QT_GATE_GO)
                break;
            sent++;
            qt_backend_gate_commit(v.g, &k.t, 10, 0);
        }
        qt_clock_manual_advance(clk, 100);
    }
    cr_expect(sent >= 48 && sent <= 51, "%d sent in 10 s at 300 RPM (a multiplied limit: 100)", sent);
    env_stop(&v);
    qt_clock_free(clk);
}

Test(backend_gate, closed_policy_stops_dispatch_while_redis_is_down, .timeout = 30)
{
    SKIP_WITHOUT_REDIS();
    env v;
    cr_assert_eq(env_start(&v, 0, ", \"on_error\": \"closed\"", NULL), 0, "redis or the gate did not start");
    rf_stop(&v.fx);
    asked k;
    admit(&v, &k);
    cr_assert(wait_answer(&k, 2000));
    cr_expect_eq(k.a.verdict, QT_GATE_WAIT);
    cr_expect(strstr(k.a.reason, "dispatch stopped") != NULL, "%s", k.a.reason);
    cr_expect_eq(qt_backend_gate_state(v.g), QT_GATE_CLOSED);
    env_stop(&v);
}

Test(backend_gate, close_answers_what_redis_has_not, .timeout = 30)
{
    SKIP_WITHOUT_REDIS();
    env v;
    cr_assert_eq(env_start(&v, 60, ", \"timeout_ms\": 5000", NULL), 0, "redis or the gate did not start");
    kill(v.fx.pid, SIGSTOP);
    asked k1, k2;
    admit(&v, &k1);   /* sent: Redis will not answer for 5 s */
    admit(&v, &k2);   /* parked behind it (the same key) */
    usleep(50000);
    cr_expect(!is_done(&k1) && !is_done(&k2));
    uint64_t t0 = mono_ms();
    qt_backend_gate_close(v.g);
    cr_expect(is_done(&k1) && is_done(&k2), "both answered by close");
    cr_expect_eq(k1.a.verdict, QT_GATE_WAIT);
    cr_expect(strstr(k2.a.reason, "shutting down") != NULL, "%s", k2.a.reason);
    cr_expect(mono_ms() - t0 < 2000, "close did not wait for Redis");
    asked k3;
    admit(&v, &k3);
    cr_expect(is_done(&k3) && k3.a.verdict == QT_GATE_WAIT, "a closed gate answers at once");
    kill(v.fx.pid, SIGCONT);
    env_stop(&v);
}
