/* test_backend_lua.c: the arithmetic of the Redis backend's Lua scripts
 * (GCRA pacing for RPM and TPM, concurrency slots, budgets with
 * reservations, leases of dead processes, release and commit refunds,
 * pauses and limit overrides, the fleet view, TTLs), driven through a real
 * redis-server started by each test on a free port. Time is the scripts'
 * clock override (microseconds), so no test sleeps to prove a rate. Skips
 * when redis-server is not installed. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <string.h>

#include "../../src/backend/backend_int.h"
#include "redis_fixture.h"

static redis_fixture fx;
static redisContext *rc;
static char sha[QT_SCRIPT_COUNT][48];
static const uint64_t T0 = 1796000000000000ull;   /* a Redis clock, us */
static long ahead_ms;                              /* admit's ahead for the next calls */

static void setup(void)
{
    if (!rf_have_redis())
        cr_skip_test("redis-server is not installed");
    cr_assert_eq(rf_start(&fx, NULL), 0, "redis-server did not start");
    rc = redisConnect("127.0.0.1", fx.port);
    cr_assert(rc && !rc->err);
    for (int i = 0; i < QT_SCRIPT_COUNT; i++) {
        redisReply *r = redisCommand(rc, "SCRIPT LOAD %s", qt_script_text((qt_script_id)i));
        cr_assert(r && r->type == REDIS_REPLY_STRING, "SCRIPT LOAD %s: %s", qt_script_name((qt_script_id)i),
                  r && r->str ? r->str : "?");
        snprintf(sha[i], sizeof sha[i], "%s", r->str);
        freeReplyObject(r);
    }
}

static void teardown(void)
{
    if (rc)
        redisFree(rc);
    rc = NULL;
    rf_stop(&fx);
}

TestSuite(backend_lua, .init = setup, .fini = teardown, .timeout = 30);

static qt_bcmd_ctx ctx(const char *proc, uint64_t now_us)
{
    qt_bcmd_ctx x = { .tag = "{qt}", .proc = proc, .lease_ms = 10000, .burst_ms = 0, .now_us = now_us,
                      .ahead_ms = ahead_ms };
    return x;
}

static redisReply *sendc(const qt_bcmd *c)
{
    cr_assert_eq(c->overflow, 0);
    redisReply *r = redisCommandArgv(rc, c->argc, (const char **)c->argv, c->len);
    cr_assert(r, "no reply");
    cr_assert_neq(r->type, REDIS_REPLY_ERROR, "script error: %s", r->str);
    return r;
}

/* admit: returns the verdict code (reply[0]); *v1 = reply[1]. */
static long long admit(qt_backend_lease *l, const char *proc, uint64_t now_us, long long *v1)
{
    qt_bcmd c;
    qt_bcmd_ctx x = ctx(proc, now_us);
    cr_assert_eq(qt_bcmd_admit(&c, sha[QT_SCRIPT_ADMIT], &x, l), 0);
    redisReply *r = sendc(&c);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    long long code = r->element[0]->integer;
    if (v1)
        *v1 = r->elements > 1 ? r->element[code == 1 ? 3 : 1]->integer : 0;   /* admitted: the delay */
    if (code == 1)
        l->day = (long)r->element[2]->integer;
    freeReplyObject(r);
    l->seq++;
    return code;
}

static void settle(qt_backend_lease *l, const char *proc, uint64_t now_us, int release,
                   int64_t tokens, double usd)
{
    qt_bcmd c;
    qt_bcmd_ctx x = ctx(proc, now_us);
    l->seq--;   /* the lease admit used */
    cr_assert_eq(qt_bcmd_settle(&c, sha[release ? QT_SCRIPT_RELEASE : QT_SCRIPT_COMMIT], &x, l,
                                tokens, usd), 0);
    freeReplyObject(sendc(&c));
    l->seq++;
}

static void control(const char *op, const char *a1, const char *a2, const char *a3)
{
    qt_bcmd c;
    qt_bcmd_ctx x = ctx("ctl", 0);
    cr_assert_eq(qt_bcmd_control(&c, sha[QT_SCRIPT_CONTROL], &x, op, a1, a2, a3), 0);
    freeReplyObject(sendc(&c));
}

static qt_backend_lease one_key(double rpm, double tpm, int conc, int64_t est)
{
    qt_backend_lease l;
    memset(&l, 0, sizeof l);
    snprintf(l.workflow, sizeof l.workflow, "wf");
    l.n_rate = 1;
    snprintf(l.rate[0].name, sizeof l.rate[0].name, "model:m");
    l.rate[0].rpm = rpm;
    l.rate[0].tpm = tpm;
    l.rate[0].max_concurrent = conc;
    l.rate[0].est_tokens = est;
    return l;
}

Test(backend_lua, rpm_paces_exactly)
{
    qt_backend_lease l = one_key(600, 0, 0, 1);   /* one request per 100 ms */
    long long w;
    cr_expect_eq(admit(&l, "a", T0, &w), 1);
    cr_expect_eq(admit(&l, "a", T0 + 40000, &w), 0);
    cr_expect_eq(w, 60, "wait %lld ms, expected 60", w);
    cr_expect_eq(admit(&l, "a", T0 + 99999, &w), 0);
    cr_expect_eq(admit(&l, "a", T0 + 100000, &w), 1);
    /* 10 simulated seconds, two processes trying every 5 ms: 100 admissions. */
    int n = 0;
    for (uint64_t t = 200000; t < 10200000; t += 5000) {
        n += admit(&l, "a", T0 + t, NULL) == 1;
        n += admit(&l, "b", T0 + t + 1, NULL) == 1;
    }
    cr_expect_eq(n, 100, "admitted %d in 10 s at 600 rpm", n);
}

Test(backend_lua, ahead_takes_the_next_slot_with_a_delay)
{
    qt_backend_lease l = one_key(600, 0, 0, 1);   /* one request per 100 ms */
    long long v;
    ahead_ms = 100;
    cr_expect_eq(admit(&l, "a", T0, &v), 1);
    cr_expect_eq(v, 0, "first one: no delay");
    cr_expect_eq(admit(&l, "b", T0 + 40000, &v), 1, "60 ms ahead is within 100");
    cr_expect_eq(v, 60, "send after %lld ms, expected 60", v);
    cr_expect_eq(admit(&l, "a", T0 + 40000, &v), 0, "160 ms ahead is not");
    cr_expect_eq(v, 60, "ask again in %lld ms, expected 60", v);
    /* 10 simulated seconds, three processes asking as told: 100 sends, one
     * call each when every caller waits what it was told. */
    ahead_ms = 200;
    int sent = 0, calls = 0;
    uint64_t next[3] = { 300000, 300000, 300000 }, last_send = 0, min_gap = UINT64_MAX;
    for (uint64_t t = 300000; t < 10300000; t += 1000) {
        for (int p = 0; p < 3; p++) {
            if (t < next[p])
                continue;
            calls++;
            long long c = admit(&l, p == 0 ? "a" : p == 1 ? "b" : "c", T0 + t, &v);
            if (c == 1) {
                uint64_t send = t + (uint64_t)v * 1000;
                if (sent && send - last_send < min_gap)
                    min_gap = send - last_send;
                last_send = send;
                sent++;
                next[p] = send;   /* a worker is free again after sending */
            } else {
                next[p] = t + (uint64_t)v * 1000;
            }
        }
    }
    ahead_ms = 0;
    cr_expect(sent >= 100 && sent <= 103, "sent %d in 10 s at 600 rpm", sent);
    cr_expect_geq(min_gap, 99000, "two sends %llu us apart", (unsigned long long)min_gap);
    cr_expect_leq(calls, sent * 2, "%d calls for %d admissions", calls, sent);
}

Test(backend_lua, tpm_charges_the_estimate_and_commit_refunds)
{
    qt_backend_lease l = one_key(0, 6000, 0, 100);   /* 100 tokens/s: 100 tokens = 1 s */
    long long w;
    cr_expect_eq(admit(&l, "a", T0, &w), 1);
    cr_expect_eq(admit(&l, "a", T0 + 1000, &w), 0);
    cr_expect_eq(w, 999);
    /* Only 20 tokens were used: 80 tokens (800 ms) come back. */
    settle(&l, "a", T0 + 1000, 0, 20, 0);
    cr_expect_eq(admit(&l, "a", T0 + 199000, &w), 0);
    cr_expect_eq(admit(&l, "a", T0 + 200000, &w), 1, "wait %lld", w);
}

Test(backend_lua, release_gives_the_request_back)
{
    qt_backend_lease l = one_key(60, 0, 0, 1);   /* one per second */
    long long w;
    cr_expect_eq(admit(&l, "a", T0, &w), 1);
    cr_expect_eq(admit(&l, "a", T0 + 1000, &w), 0);
    settle(&l, "a", T0 + 2000, 1, 0, 0);
    cr_expect_eq(admit(&l, "a", T0 + 3000, &w), 1, "after release: wait %lld", w);
}

Test(backend_lua, concurrency_slots_across_processes)
{
    qt_backend_lease a = one_key(0, 0, 2, 0), b = one_key(0, 0, 2, 0), c = one_key(0, 0, 2, 0);
    c.seq = b.seq = 100;
    cr_expect_eq(admit(&a, "pa", T0, NULL), 1);
    cr_expect_eq(admit(&b, "pb", T0, NULL), 1);
    cr_expect_eq(admit(&c, "pc", T0, NULL), 2, "third slot of 2 taken");
    settle(&a, "pa", T0 + 10, 0, 0, 0);
    cr_expect_eq(admit(&c, "pc", T0 + 20, NULL), 1);
}

static void heartbeat(const char *proc, const char *info, long lease_ms)
{
    qt_bcmd c;
    qt_bcmd_ctx x = ctx(proc, 0);
    x.lease_ms = lease_ms;
    const char *keys[] = { "model:m" };
    cr_assert_eq(qt_bcmd_heartbeat(&c, sha[QT_SCRIPT_HEARTBEAT], &x, info, keys, 1), 0);
    freeReplyObject(sendc(&c));
}

Test(backend_lua, dead_process_slots_and_reservations_are_swept)
{
    qt_backend_lease a = one_key(0, 0, 1, 0), b = one_key(0, 0, 1, 0);
    a.n_budget = b.n_budget = 1;
    snprintf(a.budget[0].name, sizeof a.budget[0].name, "day");
    b.budget[0] = a.budget[0];
    a.budget[0].per_day = b.budget[0].per_day = 1;
    a.budget[0].limit_usd = b.budget[0].limit_usd = 1.0;
    a.budget[0].est_usd = b.budget[0].est_usd = 0.6;
    heartbeat("pa", "host|1|run|1", 60000);
    heartbeat("pb", "host|2|run|0", 60000);
    cr_expect_eq(admit(&a, "pa", T0, NULL), 1);
    cr_expect_eq(admit(&b, "pb", T0 + 1000, NULL), 2, "slot held by pa");
    /* Past pa's lease deadline, but pa is alive: the lease is renewed. */
    cr_expect_eq(admit(&b, "pb", T0 + 20000000, NULL), 2, "a live process keeps its slot");
    /* pa dies: its heartbeat key expires (deleted here); past the renewed
     * deadline (now + the key's TTL then) the next sweep frees its slot and
     * its $0.60 reservation. */
    cr_expect_eq(admit(&b, "pb", T0 + 30000000, NULL), 2, "renewed until the heartbeat's TTL");
    freeReplyObject(redisCommand(rc, "DEL {qt}:proc:pa"));
    cr_expect_eq(admit(&b, "pb", T0 + 90000000, NULL), 1, "dead process's slot and reservation freed");
}

Test(backend_lua, budget_counts_reservations_of_every_process)
{
    qt_backend_lease l[4];
    for (int i = 0; i < 4; i++) {
        l[i] = one_key(0, 0, 0, 0);
        l[i].seq = (uint64_t)i * 10;
        l[i].n_budget = 2;
        snprintf(l[i].budget[0].name, sizeof l[i].budget[0].name, "day");
        l[i].budget[0].per_day = 1;
        l[i].budget[0].limit_usd = 1.0;
        l[i].budget[0].est_usd = 0.4;
        snprintf(l[i].budget[1].name, sizeof l[i].budget[1].name, "wf:wf");
        l[i].budget[1].per_day = 1;
        l[i].budget[1].limit_usd = 0;   /* counted, unlimited */
        l[i].budget[1].est_usd = 0.4;
    }
    long long v;
    cr_expect_eq(admit(&l[0], "pa", T0, &v), 1);
    cr_expect_eq(admit(&l[1], "pb", T0, &v), 1);
    cr_expect_eq(admit(&l[2], "pc", T0, &v), 3, "0.4 + 0.4 reserved + 0.4 > 1.0");
    cr_expect_eq(v, 1, "the day budget refuses");
    settle(&l[0], "pa", T0 + 5, 0, 0, 0.1);   /* cost 0.10 of 0.40 */
    cr_expect_eq(admit(&l[2], "pc", T0 + 10, &v), 1, "0.1 spent + 0.4 + 0.4 <= 1.0");
    cr_expect_eq(admit(&l[3], "pd", T0 + 10, &v), 3);
    redisReply *r = redisCommand(rc, "HMGET {qt}:b:day:%ld spent reserved", l[0].day);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_expect_str_eq(r->element[0]->str, "100000000");
    cr_expect_str_eq(r->element[1]->str, "800000000");
    freeReplyObject(r);
    r = redisCommand(rc, "HGET {qt}:b:wf:wf:%ld spent", l[0].day);
    cr_expect_str_eq(r->str, "100000000", "the workflow's spend is counted too");
    freeReplyObject(r);
}

Test(backend_lua, fleet_pause_workflow_pause_and_limit_override)
{
    qt_backend_lease l = one_key(60, 0, 0, 1);
    long long w;
    control("pause", NULL, NULL, NULL);
    cr_expect_eq(admit(&l, "a", T0, &w), 4);
    control("resume", NULL, NULL, NULL);
    control("wfpause", "wf", NULL, NULL);
    cr_expect_eq(admit(&l, "a", T0, &w), 5);
    control("wfresume", "wf", NULL, NULL);
    cr_expect_eq(admit(&l, "a", T0, &w), 1);
    cr_expect_eq(admit(&l, "a", T0 + 10000, &w), 0);
    cr_expect_eq(w, 990);
    control("limit", "model:m", "rpm", "6000");   /* 10 ms apart from the next one on */
    cr_expect_eq(admit(&l, "a", T0 + 1000000, &w), 1);
    cr_expect_eq(admit(&l, "a", T0 + 1005000, &w), 0);
    cr_expect_eq(w, 5);
    control("restore", "model:m", NULL, NULL);
    cr_expect_eq(admit(&l, "a", T0 + 1010000, &w), 1);
    cr_expect_eq(admit(&l, "a", T0 + 1020000, &w), 0);
    cr_expect_eq(w, 990);
}

Test(backend_lua, heartbeat_returns_the_fleet)
{
    heartbeat("pa", "h1|11|run|3", 60000);
    heartbeat("pb", "h2|22|serve|1", 60000);
    qt_backend_lease l = one_key(0, 0, 0, 50);
    cr_expect_eq(admit(&l, "pa", 0, NULL), 1);   /* Redis's clock: the view counts the last minute */
    cr_expect_eq(admit(&l, "pa", 0, NULL), 1);
    qt_bcmd c;
    qt_bcmd_ctx x = ctx("pa", 0);
    const char *keys[] = { "model:m" };
    cr_assert_eq(qt_bcmd_heartbeat(&c, sha[QT_SCRIPT_HEARTBEAT], &x, "h1|11|run|3", keys, 1), 0);
    redisReply *r = sendc(&c);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 8);
    cr_expect_eq(r->element[4]->elements, 2, "two live processes");
    cr_expect_eq(r->element[5]->element[0]->integer, 2, "fleet requests of the last minute");
    cr_expect_eq(r->element[5]->element[1]->integer, 100, "fleet tokens of the last minute");
    freeReplyObject(r);
    heartbeat("pb", "", 60000);   /* pb leaves */
    cr_assert_eq(qt_bcmd_heartbeat(&c, sha[QT_SCRIPT_HEARTBEAT], &x, "h1|11|run|3", keys, 1), 0);
    r = sendc(&c);
    cr_expect_eq(r->element[4]->elements, 1);
    freeReplyObject(r);
}

Test(backend_lua, every_key_has_a_ttl)
{
    qt_backend_lease l = one_key(60, 6000, 4, 10);
    l.n_budget = 1;
    snprintf(l.budget[0].name, sizeof l.budget[0].name, "day");
    l.budget[0].per_day = 1;
    l.budget[0].limit_usd = 5;
    l.budget[0].est_usd = 0.01;
    heartbeat("pa", "h|1|run|0", 5000);
    control("pause", NULL, NULL, NULL);
    control("wfpause", "x", NULL, NULL);
    control("resume", NULL, NULL, NULL);
    control("limit", "model:m", "tpm", "5000");
    cr_expect_eq(admit(&l, "pa", 0, NULL), 1);
    settle(&l, "pa", 0, 0, 5, 0.005);
    redisReply *r = redisCommand(rc, "KEYS *");
    cr_assert_geq(r->elements, 5, "only %zu keys", r->elements);
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *t = redisCommand(rc, "PTTL %s", r->element[i]->str);
        cr_expect_gt(t->integer, 0, "%s has no TTL (%lld)", r->element[i]->str, t->integer);
        cr_expect(strncmp(r->element[i]->str, "{qt}:", 5) == 0, "%s lacks the hash tag", r->element[i]->str);
        freeReplyObject(t);
    }
    freeReplyObject(r);
}
