/* test_circuit.c: the circuit breaker (suite "circuit").
 *
 * DESIGN
 * Every test drives a simulated clock (plain uint64_t milliseconds) and a
 * seeded PRNG, so runs over thousands of simulated seconds are exact and
 * repeatable. Helpers wrap allow/record and check that any transition they
 * report is consistent with the state before and after the call.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "quotatop/common.h"
#include "quotatop/circuit.h"

static qt_circuit_params params(int threshold, double ratio, uint64_t window, uint64_t cool,
                                uint64_t cool_max, int half_open_max)
{
    qt_circuit_params p = { threshold, ratio, window, cool, cool_max, half_open_max };
    return p;
}

/* Runs one admitted request to completion at time t with the given outcome;
 * returns whether it was admitted; *tr receives the record's transition (or
 * the allow's one when the request was refused). */
static int run_one(qt_circuit *c, uint64_t t, qt_circuit_outcome o, qt_circuit_transition *tr)
{
    qt_circuit_permit pm;
    qt_circuit_transition a;
    if (!qt_circuit_allow(c, t, &pm, &a)) {
        *tr = a;
        return 0;
    }
    cr_assert_eq(a.changed, 0, "a CLOSED admission reports no transition");
    int r = qt_circuit_record(c, &pm, o, t, tr);
    cr_assert_eq(r, tr->changed);
    return 1;
}


Test(circuit, new_validates_params)
{
    qt_circuit_params p = qt_circuit_params_default();
    qt_circuit *c = qt_circuit_new(&p);
    cr_assert_not_null(c);
    cr_assert_eq(qt_circuit_state(c, 0), QT_CIRCUIT_CLOSED);
    qt_circuit_free(c);
    qt_circuit_free(NULL);
    cr_assert_null(qt_circuit_new(NULL));
    p = params(0, 0.5, 1000, 1000, 1000, 1);
    cr_assert_null(qt_circuit_new(&p));
    p = params(1, 1.5, 1000, 1000, 1000, 1);
    cr_assert_null(qt_circuit_new(&p));
    p = params(1, 0.5, 0, 1000, 1000, 1);
    cr_assert_null(qt_circuit_new(&p));
    p = params(1, 0.5, 1000, 0, 1000, 1);
    cr_assert_null(qt_circuit_new(&p));
    p = params(1, 0.5, 1000, 1000, 1000, 0);
    cr_assert_null(qt_circuit_new(&p));
    cr_assert_str_eq(qt_circuit_state_name(QT_CIRCUIT_HALF_OPEN), "half_open");
    cr_assert_str_eq(qt_circuit_state_name(QT_CIRCUIT_OPEN), "open");
    cr_assert_str_eq(qt_circuit_state_name(QT_CIRCUIT_CLOSED), "closed");
}

Test(circuit, null_out_params_change_nothing)
{
    qt_circuit_params p = params(1, 0.0, 10000, 1000, 1000, 1);
    qt_circuit *c = qt_circuit_new(&p);
    qt_circuit_permit pm;
    qt_circuit_transition tr;
    cr_assert_eq(qt_circuit_allow(c, 0, &pm, NULL), 0);
    cr_assert_eq(qt_circuit_allow(c, 0, NULL, &tr), 0);
    cr_assert_eq(qt_circuit_allow(c, 0, &pm, &tr), 1);
    cr_assert_eq(qt_circuit_record(c, &pm, QT_CIRCUIT_FAILURE, 0, NULL), -1);
    cr_assert_eq(qt_circuit_state(c, 0), QT_CIRCUIT_CLOSED, "a record without tr must not open");
    cr_assert_eq(qt_circuit_record(c, &pm, QT_CIRCUIT_FAILURE, 0, &tr), 1);
    cr_assert_eq(qt_circuit_state(c, 0), QT_CIRCUIT_OPEN);
    qt_circuit_free(c);
}

Test(circuit, dead_provider_opens_at_once)
{
    qt_circuit_params p = params(5, 0.5, 10000, 30000, 300000, 1);
    qt_circuit *c = qt_circuit_new(&p);
    qt_circuit_transition tr;
    for (int i = 0; i < 4; i++) {
        cr_assert(run_one(c, 1000 + (uint64_t)i * 100, QT_CIRCUIT_FAILURE, &tr));
        cr_assert_eq(tr.changed, 0, "opened after %d failures", i + 1);
    }
    cr_assert(run_one(c, 1400, QT_CIRCUIT_FAILURE, &tr));
    cr_assert_eq(tr.changed, 1);
    cr_assert_eq(tr.from, QT_CIRCUIT_CLOSED);
    cr_assert_eq(tr.to, QT_CIRCUIT_OPEN);
    cr_assert_eq(tr.at_ms, 1400);
    cr_assert_eq(tr.cooldown_ms, 30000);
    cr_assert_str_eq(tr.reason, "5 failures of 5 in 10s");
    cr_assert_eq(qt_circuit_state(c, 1400), QT_CIRCUIT_OPEN);
    cr_assert_eq(qt_circuit_peek(c, 1400), 0);
    qt_circuit_permit pm;
    cr_assert_eq(qt_circuit_allow(c, 1401, &pm, &tr), 0);
    cr_assert_eq(pm.gen, 0);
    cr_assert_eq(tr.changed, 0);
    qt_circuit_free(c);
}

Test(circuit, ratio_gate)
{
    qt_circuit_params p = params(3, 0.5, 10000, 30000, 300000, 1);
    qt_circuit *c = qt_circuit_new(&p);
    qt_circuit_transition tr;
    uint64_t t = 0;
    for (int i = 0; i < 10; i++)
        run_one(c, t += 10, QT_CIRCUIT_SUCCESS, &tr);
    /* failures reach the threshold long before the ratio: stays closed until
     * 10 failures of 20 */
    for (int f = 1; f < 10; f++) {
        run_one(c, t += 10, QT_CIRCUIT_FAILURE, &tr);
        cr_assert_eq(tr.changed, 0, "opened at %d failures of %d", f, 10 + f);
    }
    qt_circuit_snapshot s;
    qt_circuit_snapshot_get(c, t, &s);
    cr_assert_eq(s.failures, 9);
    cr_assert_eq(s.successes, 10);
    run_one(c, t += 10, QT_CIRCUIT_FAILURE, &tr);
    cr_assert_eq(tr.changed, 1);
    cr_assert_str_eq(tr.reason, "10 failures of 20 in 10s");
    qt_circuit_free(c);
}

/* 20% random errors at 10 requests/s over 5000 simulated seconds: the window
 * often holds >= threshold failures, but the ratio never reaches 50%. */
Test(circuit, stays_closed_with_20_percent_errors)
{
    qt_circuit_params p = params(5, 0.5, 10000, 30000, 300000, 1);
    qt_circuit *c = qt_circuit_new(&p);
    uint64_t seed = 12345;
    int64_t fails = 0, max_window_fails = 0;
    for (uint64_t t = 0; t < 5000 * 1000; t += 100) {
        qt_circuit_transition tr;
        qt_circuit_outcome o = qt_rand_next(&seed) % 5 == 0 ? QT_CIRCUIT_FAILURE : QT_CIRCUIT_SUCCESS;
        fails += o == QT_CIRCUIT_FAILURE;
        cr_assert(run_one(c, t, o, &tr), "refused at %llu ms", (unsigned long long)t);
        cr_assert_eq(tr.changed, 0, "opened at %llu ms: %s", (unsigned long long)t, tr.reason);
        qt_circuit_snapshot s;
        qt_circuit_snapshot_get(c, t, &s);
        if (s.failures > max_window_fails)
            max_window_fails = s.failures;
    }
    cr_assert_gt(fails, 9000, "the PRNG produced %lld failures", (long long)fails);
    cr_assert_geq(max_window_fails, 5, "the threshold alone would have opened it");
    /* and the same breaker opens once the provider dies */
    qt_circuit_transition tr;
    uint64_t t = 5000 * 1000;
    int n = 0;
    do {
        run_one(c, t += 100, QT_CIRCUIT_FAILURE, &tr);
        n++;
    } while (!tr.changed && n < 1000);
    cr_assert_eq(tr.to, QT_CIRCUIT_OPEN);
    cr_assert_lt(n, 100, "took %d failures to open", n);
    qt_circuit_free(c);
}

Test(circuit, rate_limits_never_open)
{
    qt_circuit_params p = params(3, 0.5, 10000, 30000, 300000, 1);
    qt_circuit *c = qt_circuit_new(&p);
    qt_circuit_transition tr;
    for (uint64_t t = 0; t < 100000; t += 10) {
        cr_assert(run_one(c, t, QT_CIRCUIT_IGNORED, &tr));
        cr_assert_eq(tr.changed, 0);
    }
    qt_circuit_snapshot s;
    qt_circuit_snapshot_get(c, 100000, &s);
    cr_assert_eq(s.failures + s.successes, 0, "a 429 counted as an outcome");
    /* 429s between failures neither open nor dilute the ratio */
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 50; k++)
            run_one(c, 100000 + (uint64_t)i, QT_CIRCUIT_IGNORED, &tr);
        run_one(c, 100000 + (uint64_t)i, QT_CIRCUIT_FAILURE, &tr);
    }
    cr_assert_eq(tr.changed, 1);
    cr_assert_str_eq(tr.reason, "3 failures of 3 in 10s");
    qt_circuit_free(c);
}

/* Opens the breaker at time t with `threshold` failures (ratio 0 params). */
static void open_now(qt_circuit *c, int threshold, uint64_t t)
{
    qt_circuit_transition tr;
    for (int i = 0; i < threshold; i++)
        run_one(c, t, QT_CIRCUIT_FAILURE, &tr);
    cr_assert_eq(tr.changed, 1);
    cr_assert_eq(tr.to, QT_CIRCUIT_OPEN);
}

Test(circuit, next_probe_exact)
{
    qt_circuit_params p = params(2, 0.0, 10000, 30000, 300000, 1);
    qt_circuit *c = qt_circuit_new(&p);
    cr_assert_eq(qt_circuit_next_probe_ms(c, 777), 777, "closed: now");
    open_now(c, 2, 12345);
    cr_assert_eq(qt_circuit_next_probe_ms(c, 12345), 42345);
    cr_assert_eq(qt_circuit_next_probe_ms(c, 30345), 42345, "dashboard: OPEN 12s");
    cr_assert_eq(qt_circuit_next_probe_ms(c, 30345) - 30345, 12000);
    qt_circuit_permit pm;
    qt_circuit_transition tr;
    cr_assert_eq(qt_circuit_state(c, 42344), QT_CIRCUIT_OPEN);
    cr_assert_eq(qt_circuit_peek(c, 42344), 0);
    cr_assert_eq(qt_circuit_allow(c, 42344, &pm, &tr), 0);
    cr_assert_eq(tr.changed, 0);
    cr_assert_eq(qt_circuit_state(c, 42345), QT_CIRCUIT_HALF_OPEN, "lazily half-open");
    cr_assert_eq(qt_circuit_peek(c, 42345), 1);
    cr_assert_eq(qt_circuit_next_probe_ms(c, 50000), 50000, "probe may go now");
    cr_assert_eq(qt_circuit_allow(c, 42345, &pm, &tr), 1);
    cr_assert_eq(tr.changed, 1);
    cr_assert_eq(tr.from, QT_CIRCUIT_OPEN);
    cr_assert_eq(tr.to, QT_CIRCUIT_HALF_OPEN);
    cr_assert_eq(tr.at_ms, 42345);
    cr_assert_str_eq(tr.reason, "cooldown elapsed");
    cr_assert_eq(pm.probe, 1);
    cr_assert_eq(qt_circuit_next_probe_ms(c, 42346), QT_CIRCUIT_NEVER, "slot taken");
    qt_circuit_free(c);
}

Test(circuit, half_open_admits_exactly_max_probes)
{
    qt_circuit_params p = params(1, 0.0, 10000, 1000, 8000, 3);
    qt_circuit *c = qt_circuit_new(&p);
    open_now(c, 1, 0);
    qt_circuit_permit pm[6];
    qt_circuit_transition tr;
    int admitted = 0, transitions = 0;
    for (int i = 0; i < 6; i++) {
        admitted += qt_circuit_allow(c, 1000 + (uint64_t)i, &pm[i], &tr);
        transitions += tr.changed;
    }
    cr_assert_eq(admitted, 3);
    cr_assert_eq(transitions, 1);
    for (int i = 0; i < 3; i++)
        cr_assert(pm[i].probe && pm[i].gen != 0);
    for (int i = 3; i < 6; i++)
        cr_assert_eq(pm[i].gen, 0);
    qt_circuit_snapshot s;
    qt_circuit_snapshot_get(c, 1010, &s);
    cr_assert_eq(s.probes_in_flight, 3);
    cr_assert_eq(s.state, QT_CIRCUIT_HALF_OPEN);
    cr_assert_eq(qt_circuit_peek(c, 1010), 0);
    /* a cancelled probe releases its slot, exactly once */
    cr_assert_eq(qt_circuit_record(c, &pm[0], QT_CIRCUIT_IGNORED, 1020, &tr), 0);
    cr_assert_eq(qt_circuit_record(c, &pm[0], QT_CIRCUIT_IGNORED, 1020, &tr), 0);
    cr_assert_eq(qt_circuit_peek(c, 1020), 1);
    qt_circuit_permit extra, extra2;
    cr_assert_eq(qt_circuit_allow(c, 1021, &extra, &tr), 1);
    cr_assert_eq(qt_circuit_allow(c, 1021, &extra2, &tr), 0);
    qt_circuit_free(c);
}

Test(circuit, probe_success_closes)
{
    qt_circuit_params p = params(3, 0.0, 10000, 5000, 60000, 2);
    qt_circuit *c = qt_circuit_new(&p);
    open_now(c, 3, 0);
    qt_circuit_permit a, b;
    qt_circuit_transition tr;
    cr_assert_eq(qt_circuit_allow(c, 5000, &a, &tr), 1);
    cr_assert_eq(qt_circuit_allow(c, 5001, &b, &tr), 1);
    cr_assert_eq(qt_circuit_record(c, &a, QT_CIRCUIT_SUCCESS, 5200, &tr), 1);
    cr_assert_eq(tr.from, QT_CIRCUIT_HALF_OPEN);
    cr_assert_eq(tr.to, QT_CIRCUIT_CLOSED);
    cr_assert_eq(tr.at_ms, 5200);
    cr_assert_str_eq(tr.reason, "probe succeeded");
    cr_assert_eq(qt_circuit_state(c, 5200), QT_CIRCUIT_CLOSED);
    /* the other probe's late failure belongs to the old state: ignored */
    cr_assert_eq(qt_circuit_record(c, &b, QT_CIRCUIT_FAILURE, 5300, &tr), 0);
    qt_circuit_snapshot s;
    qt_circuit_snapshot_get(c, 5300, &s);
    cr_assert_eq(s.failures, 0, "window reset on close");
    cr_assert_eq(s.cooldown_ms, 5000);
    /* the pre-open failures do not linger: 2 new ones do not reopen (threshold 3) */
    run_one(c, 5400, QT_CIRCUIT_FAILURE, &tr);
    run_one(c, 5400, QT_CIRCUIT_FAILURE, &tr);
    cr_assert_eq(tr.changed, 0);
    cr_assert_eq(qt_circuit_state(c, 5400), QT_CIRCUIT_CLOSED);
    qt_circuit_free(c);
}

Test(circuit, probe_failure_doubles_cooldown_capped)
{
    qt_circuit_params p = params(1, 0.0, 10000, 1000, 5000, 1);
    qt_circuit *c = qt_circuit_new(&p);
    open_now(c, 1, 0);
    uint64_t t = 0, expect_cool[] = { 2000, 4000, 5000, 5000 };
    const char *expect_reason[] = { "probe failed, cooldown 2s", "probe failed, cooldown 4s",
                                    "probe failed, cooldown 5s", "probe failed, cooldown 5s" };
    uint64_t cool = 1000;
    for (int i = 0; i < 4; i++) {
        t += cool;
        qt_circuit_permit pm;
        qt_circuit_transition tr;
        cr_assert_eq(qt_circuit_allow(c, t - 1, &pm, &tr), 0, "round %d: early probe", i);
        cr_assert_eq(qt_circuit_allow(c, t, &pm, &tr), 1, "round %d: probe refused", i);
        cr_assert_eq(qt_circuit_record(c, &pm, QT_CIRCUIT_FAILURE, t + 10, &tr), 1);
        cr_assert_eq(tr.from, QT_CIRCUIT_HALF_OPEN);
        cr_assert_eq(tr.to, QT_CIRCUIT_OPEN);
        cr_assert_eq(tr.cooldown_ms, expect_cool[i]);
        cr_assert_str_eq(tr.reason, expect_reason[i]);
        t += 10;
        cool = expect_cool[i];
        cr_assert_eq(qt_circuit_next_probe_ms(c, t), t + cool);
    }
    /* success brings the cooldown back to base */
    t += cool;
    qt_circuit_permit pm;
    qt_circuit_transition tr;
    cr_assert_eq(qt_circuit_allow(c, t, &pm, &tr), 1);
    cr_assert_eq(qt_circuit_record(c, &pm, QT_CIRCUIT_SUCCESS, t, &tr), 1);
    open_now(c, 1, t + 1);
    cr_assert_eq(qt_circuit_next_probe_ms(c, t + 1), t + 1 + 1000);
    qt_circuit_free(c);
}

Test(circuit, old_failures_fall_out_of_window)
{
    qt_circuit_params p = params(3, 0.0, 10000, 30000, 300000, 1);
    qt_circuit *c = qt_circuit_new(&p);
    qt_circuit_transition tr;
    run_one(c, 0, QT_CIRCUIT_FAILURE, &tr);
    run_one(c, 1000, QT_CIRCUIT_FAILURE, &tr);
    /* 11 s later both are out of the 10 s window */
    run_one(c, 11500, QT_CIRCUIT_FAILURE, &tr);
    cr_assert_eq(tr.changed, 0, "stale failures counted: %s", tr.reason);
    qt_circuit_snapshot s;
    qt_circuit_snapshot_get(c, 11500, &s);
    cr_assert_eq(s.failures, 1);
    /* within the window they add up */
    run_one(c, 15000, QT_CIRCUIT_FAILURE, &tr);
    cr_assert_eq(tr.changed, 0);
    run_one(c, 20000, QT_CIRCUIT_FAILURE, &tr);
    cr_assert_eq(tr.changed, 1);
    cr_assert_str_eq(tr.reason, "3 failures of 3 in 10s");
    qt_circuit_free(c);
}

Test(circuit, straggler_from_before_open_is_not_a_probe)
{
    qt_circuit_params p = params(2, 0.0, 10000, 1000, 8000, 1);
    qt_circuit *c = qt_circuit_new(&p);
    qt_circuit_permit slow, probe;
    qt_circuit_transition tr;
    cr_assert_eq(qt_circuit_allow(c, 0, &slow, &tr), 1);
    open_now(c, 2, 10);
    cr_assert_eq(qt_circuit_allow(c, 1010, &probe, &tr), 1);
    cr_assert_eq(tr.to, QT_CIRCUIT_HALF_OPEN);
    /* the slow request (admitted while CLOSED) succeeds: no verdict, slot kept */
    cr_assert_eq(qt_circuit_record(c, &slow, QT_CIRCUIT_SUCCESS, 1020, &tr), 0);
    cr_assert_eq(qt_circuit_state(c, 1020), QT_CIRCUIT_HALF_OPEN);
    cr_assert_eq(qt_circuit_peek(c, 1020), 0);
    cr_assert_eq(qt_circuit_record(c, &probe, QT_CIRCUIT_SUCCESS, 1030, &tr), 1);
    cr_assert_eq(tr.to, QT_CIRCUIT_CLOSED);
    qt_circuit_free(c);
}

/* Outcomes of requests admitted in an earlier state count nowhere. */
Test(circuit, stragglers_from_earlier_generations)
{
    qt_circuit_params p = params(2, 0.0, 10000, 1000, 8000, 2);
    qt_circuit *c = qt_circuit_new(&p);
    qt_circuit_permit s1, s2, a, b, n;
    qt_circuit_transition tr;
    cr_assert_eq(qt_circuit_allow(c, 0, &s1, &tr), 1);
    cr_assert_eq(qt_circuit_allow(c, 0, &s2, &tr), 1);
    open_now(c, 2, 10);
    cr_assert_eq(qt_circuit_allow(c, 1010, &a, &tr), 1);
    cr_assert_eq(qt_circuit_allow(c, 1010, &b, &tr), 1);
    /* probe a fails: OPEN again (2 s); probe b is now from an old half-open */
    cr_assert_eq(qt_circuit_record(c, &a, QT_CIRCUIT_FAILURE, 1020, &tr), 1);
    cr_assert_eq(qt_circuit_allow(c, 3020, &n, &tr), 1);
    cr_assert_eq(tr.to, QT_CIRCUIT_HALF_OPEN);
    cr_assert_eq(qt_circuit_record(c, &b, QT_CIRCUIT_SUCCESS, 3030, &tr), 0);
    cr_assert_eq(qt_circuit_state(c, 3030), QT_CIRCUIT_HALF_OPEN, "an old probe closed it");
    cr_assert_eq(qt_circuit_record(c, &n, QT_CIRCUIT_SUCCESS, 3040, &tr), 1);
    cr_assert_eq(tr.to, QT_CIRCUIT_CLOSED);
    /* the two requests from the first CLOSED period fail now: not counted */
    cr_assert_eq(qt_circuit_record(c, &s1, QT_CIRCUIT_FAILURE, 3050, &tr), 0);
    cr_assert_eq(qt_circuit_record(c, &s2, QT_CIRCUIT_FAILURE, 3050, &tr), 0);
    cr_assert_eq(qt_circuit_state(c, 3050), QT_CIRCUIT_CLOSED, "old failures reopened it");
    qt_circuit_free(c);
}

Test(circuit, time_going_backwards)
{
    qt_circuit_params p = params(1, 0.0, 10000, 1000, 8000, 1);
    qt_circuit *c = qt_circuit_new(&p);
    open_now(c, 1, 5000);
    qt_circuit_permit pm;
    qt_circuit_transition tr;
    cr_assert_eq(qt_circuit_allow(c, 100, &pm, &tr), 0, "an earlier time is the latest seen");
    cr_assert_eq(qt_circuit_next_probe_ms(c, 100), 6000);
    qt_circuit_free(c);
}

/* Random traffic against a flapping provider for 2000 simulated seconds:
 * every state change the breaker makes is reported exactly once, in order,
 * with a non-empty reason and the time of the call. */
Test(circuit, every_transition_reported)
{
    qt_circuit_params p = params(4, 0.5, 5000, 2000, 16000, 2);
    qt_circuit *c = qt_circuit_new(&p);
    uint64_t seed = 7;
    qt_circuit_status shadow = QT_CIRCUIT_CLOSED;
    int n_trans[3][3] = { { 0 } };
    struct { qt_circuit_permit pm; uint64_t done; int used; } fl[16];
    memset(fl, 0, sizeof fl);
    for (uint64_t t = 0; t < 2000 * 1000; t += 50) {
        int down = (t / 60000) % 2 == 1;          /* a minute up, a minute down */
        qt_circuit_transition tr;
        /* complete requests that are due */
        for (int i = 0; i < 16; i++) {
            if (!fl[i].used || fl[i].done > t)
                continue;
            uint64_t r = qt_rand_next(&seed) % 100;
            qt_circuit_outcome o = down ? (r < 95 ? QT_CIRCUIT_FAILURE : QT_CIRCUIT_SUCCESS)
                                        : (r < 5 ? QT_CIRCUIT_FAILURE
                                                 : r < 10 ? QT_CIRCUIT_IGNORED : QT_CIRCUIT_SUCCESS);
            int rc = qt_circuit_record(c, &fl[i].pm, o, t, &tr);
            fl[i].used = 0;
            cr_assert_eq(rc, tr.changed);
            if (tr.changed) {
                cr_assert_eq(tr.from, shadow, "from %s, expected %s", qt_circuit_state_name(tr.from),
                             qt_circuit_state_name(shadow));
                cr_assert_neq(tr.to, tr.from);
                cr_assert_eq(tr.at_ms, t);
                cr_assert_gt(strlen(tr.reason), 0);
                n_trans[tr.from][tr.to]++;
                shadow = tr.to;
            }
        }
        /* start a request in a free slot */
        for (int i = 0; i < 16; i++) {
            if (fl[i].used)
                continue;
            int ok = qt_circuit_allow(c, t, &fl[i].pm, &tr);
            if (tr.changed) {
                cr_assert_eq(tr.from, shadow);
                cr_assert_eq(tr.at_ms, t);
                cr_assert_gt(strlen(tr.reason), 0);
                n_trans[tr.from][tr.to]++;
                shadow = tr.to;
            }
            if (ok) {
                fl[i].used = 1;
                fl[i].done = t + 50 + qt_rand_next(&seed) % 2000;
            }
            break;
        }
        /* nothing changed behind our back */
        qt_circuit_status st = qt_circuit_state(c, t);
        if (shadow == QT_CIRCUIT_OPEN)
            cr_assert(st == QT_CIRCUIT_OPEN || st == QT_CIRCUIT_HALF_OPEN);
        else
            cr_assert_eq(st, shadow, "state %s, last reported %s", qt_circuit_state_name(st),
                         qt_circuit_state_name(shadow));
    }
    cr_assert_gt(n_trans[QT_CIRCUIT_CLOSED][QT_CIRCUIT_OPEN], 5);
    cr_assert_gt(n_trans[QT_CIRCUIT_OPEN][QT_CIRCUIT_HALF_OPEN], 5);
    cr_assert_gt(n_trans[QT_CIRCUIT_HALF_OPEN][QT_CIRCUIT_CLOSED], 5);
    cr_assert_gt(n_trans[QT_CIRCUIT_HALF_OPEN][QT_CIRCUIT_OPEN], 5);
    cr_assert_eq(n_trans[QT_CIRCUIT_CLOSED][QT_CIRCUIT_HALF_OPEN], 0);
    cr_assert_eq(n_trans[QT_CIRCUIT_OPEN][QT_CIRCUIT_CLOSED], 0);
    qt_circuit_free(c);
}

/* Issue 12, defect 14: a circuit must never stay HALF_OPEN without a probe.
 * A property test over random event sequences: jobs take permits the way
 * the engine does (the model's breaker, then the provider's; a refusal by
 * the second gives the first back as IGNORED), hold them for random times,
 * and end with random outcomes (success, failure, 429 = IGNORED, cancel =
 * IGNORED), while time jumps by random steps (some past the cooldown).
 * After every step: probes_in_flight equals the probe permits outstanding;
 * whenever no permit is outstanding, a breaker that reads HALF_OPEN admits
 * a probe (peek and next_probe agree), and one that reads OPEN names a
 * finite next probe time. At the end every permit has been returned. */
#define PROP_JOBS 12

typedef struct {
    int live;
    qt_circuit_permit m, p;   /* model's and provider's permits */
    uint64_t until;           /* when it completes */
} prop_job;

/* Probe permits outstanding in the breaker's current generation (gen, as
 * counted from the transitions it reported; stragglers from earlier ones
 * hold no slot). */
static int probes_out(const prop_job *j, int which, uint64_t gen)
{
    int n = 0;
    for (int i = 0; i < PROP_JOBS; i++) {
        const qt_circuit_permit *pm = which ? &j[i].p : &j[i].m;
        if (j[i].live && pm->probe && pm->gen == gen)
            n++;
    }
    return n;
}

static void prop_check(qt_circuit *c, const prop_job *jobs, int which, uint64_t gen, uint64_t t,
                       int seq, int step)
{
    qt_circuit_snapshot s;
    qt_circuit_snapshot_get(c, t, &s);
    int out = probes_out(jobs, which, gen);
    cr_assert_eq(s.probes_in_flight, out, "seq %d step %d: %d probes counted, %d outstanding", seq,
                 step, s.probes_in_flight, out);
    int any = 0;
    for (int i = 0; i < PROP_JOBS; i++)
        any |= jobs[i].live && (which ? jobs[i].p.gen : jobs[i].m.gen) == gen;
    if (!any && s.state == QT_CIRCUIT_HALF_OPEN) {
        cr_assert(qt_circuit_peek(c, t), "seq %d step %d: HALF_OPEN with no permit out refuses", seq, step);
        cr_assert_eq(qt_circuit_next_probe_ms(c, t), t, "seq %d step %d", seq, step);
    }
    if (s.state == QT_CIRCUIT_OPEN)
        cr_assert_neq(qt_circuit_next_probe_ms(c, t), QT_CIRCUIT_NEVER, "seq %d step %d", seq, step);
}

Test(circuit, property_every_permit_returned_no_stuck_half_open, .timeout = 60)
{
    uint64_t rng = 0x14;
    for (int seq = 0; seq < 400; seq++) {
        int hmax = 1 + (int)(qt_rand_next(&rng) % 3);
        qt_circuit_params pp = params(1 + (int)(qt_rand_next(&rng) % 4), 0.5, 1000, 200, 1600, hmax);
        qt_circuit *m = qt_circuit_new(&pp), *p = qt_circuit_new(&pp);
        cr_assert(m && p);
        prop_job jobs[PROP_JOBS];
        memset(jobs, 0, sizeof jobs);
        uint64_t t = 0, mgen = 1, pgen = 1;   /* generations: +1 per reported transition */
        double fail_p = qt_rand01(&rng);   /* each sequence its own outage severity */
        for (int step = 0; step < 600; step++) {
            uint64_t r = qt_rand_next(&rng);
            t += r % 7 == 0 ? 150 + r % 400 : r % 20;   /* sometimes past a cooldown */
            int i = (int)((r >> 8) % PROP_JOBS);
            prop_job *j = &jobs[i];
            qt_circuit_transition tr;
            if (!j->live) {
                int ok = qt_circuit_allow(m, t, &j->m, &tr);
                mgen += tr.changed;
                if (ok) {
                    ok = qt_circuit_allow(p, t, &j->p, &tr);
                    pgen += tr.changed;
                    if (ok) {
                        j->live = 1;
                        j->until = t + (r >> 20) % 300;
                    } else {
                        qt_circuit_record(m, &j->m, QT_CIRCUIT_IGNORED, t, &tr);
                        mgen += tr.changed;
                        cr_assert_eq(j->m.gen, 0, "a recorded permit is spent");
                    }
                }
            } else if (t >= j->until) {
                double u = qt_rand01(&rng);
                qt_circuit_outcome o = u < fail_p ? QT_CIRCUIT_FAILURE
                                       : u < fail_p + (1 - fail_p) / 4 ? QT_CIRCUIT_IGNORED
                                                                      : QT_CIRCUIT_SUCCESS;
                /* the provider's breaker only takes transport failures */
                qt_circuit_outcome po = o == QT_CIRCUIT_FAILURE && (r & 1) ? QT_CIRCUIT_SUCCESS : o;
                qt_circuit_record(m, &j->m, o, t, &tr);
                mgen += tr.changed;
                qt_circuit_record(p, &j->p, po, t, &tr);
                pgen += tr.changed;
                cr_assert(j->m.gen == 0 && j->p.gen == 0, "permits are spent once recorded");
                j->live = 0;
            }
            prop_check(m, jobs, 0, mgen, t, seq, step);
            prop_check(p, jobs, 1, pgen, t, seq, step);
        }
        /* drain: every job ends (cancelled = IGNORED), then both must admit
         * again once the cooldown has passed */
        for (int i = 0; i < PROP_JOBS; i++) {
            qt_circuit_transition tr;
            if (!jobs[i].live)
                continue;
            qt_circuit_record(m, &jobs[i].m, QT_CIRCUIT_IGNORED, t, &tr);
            qt_circuit_record(p, &jobs[i].p, QT_CIRCUIT_IGNORED, t, &tr);
            jobs[i].live = 0;
        }
        t += 2000;
        qt_circuit_snapshot s;
        qt_circuit_snapshot_get(m, t, &s);
        cr_assert_eq(s.probes_in_flight, 0, "seq %d: every probe slot returned", seq);
        cr_assert(qt_circuit_peek(m, t) && qt_circuit_peek(p, t), "seq %d: admits after the cooldown", seq);
        qt_circuit_free(m);
        qt_circuit_free(p);
    }
}
