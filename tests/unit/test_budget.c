/* test_budget.c: cost arithmetic, reservations racing against run / day /
 * workflow limits, once-only events, refusal reasons and the UTC day.
 * Time is an argument everywhere: no sleeps.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <string.h>

#include "quotatop/common.h"
#include "quotatop/budget.h"

#define DAY_MS 86400000ULL
#define D0 (20000 * DAY_MS)          /* midnight UTC of some day (2024-10-04) */

static uint64_t rng_state;

static uint64_t rnd(void) { return qt_rand_next(&rng_state); }
static double rnd01(void) { return qt_rand01(&rng_state); }

/* ---- cost ------------------------------------------------------------------- */

struct cost_case { double in, out; int64_t p, c; double want; };

ParameterizedTestParameters(budget, cost)
{
    static struct cost_case cases[] = {
        {2.50, 10.00, 12, 40, 0.00043},             /* gpt-4o */
        {0.15, 0.60, 12, 40, 0.0000258},            /* gpt-4o-mini */
        {2.50, 10.00, 1000000, 0, 2.50},
        {2.50, 10.00, 0, 1000000, 10.00},
        {3.00, 15.00, 1234567, 7654321, 3.703701 + 114.814815},
        {0, 0, 1000, 1000, 0},
        {-1, NAN, 1000, 1000, 0},                   /* nonsense prices count as 0 */
        {1, 1, -5, 1000000, 1.0},                   /* negative tokens count as 0 */
    };
    return cr_make_param_array(struct cost_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct cost_case *c, budget, cost)
{
    double got = qt_budget_cost(c->in, c->out, c->p, c->c);
    cr_assert_float_eq(got, c->want, 1e-6 * (c->want > 1 ? c->want : 1),
                       "cost(%g, %g, %ld, %ld) = %.9f, want %.9f", c->in, c->out, (long)c->p,
                       (long)c->c, got, c->want);
}

/* ---- racing reservations ------------------------------------------------------ */

struct race_case { double run, day, wf_a, wf_b; };

ParameterizedTestParameters(budget, racing_reservations_never_exceed)
{
    static struct race_case cases[] = {
        {1.00, 0, 0, 0},         /* run binds */
        {0, 0.50, 0, 0},         /* day binds */
        {0, 0, 0.30, 0.20},      /* workflows bind */
        {1.00, 0.70, 0.40, 0},   /* all at once */
    };
    return cr_make_param_array(struct race_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct race_case *rc, budget, racing_reservations_never_exceed)
{
    rng_state = 99;
    qt_budget *b = qt_budget_new(rc->run, rc->day, 0.8, QT_EXHAUSTED_REJECT);
    cr_assert_not_null(b);
    cr_assert_eq(qt_budget_set_workflow(b, "a", rc->wf_a), QT_OK);
    cr_assert_eq(qt_budget_set_workflow(b, "b", rc->wf_b), QT_OK);
    const char *wfs[3] = {"a", "b", "c"};
    const double wlim[3] = {rc->wf_a, rc->wf_b, 0};
    /* 1000 callers each reserve before any of them commits: the worst race */
    static qt_budget_res res[1000];
    static double est[1000];
    static int wf_of[1000];
    int admitted = 0, refused = 0;
    for (int i = 0; i < 1000; i++) {
        wf_of[i] = (int)(rnd() % 3);
        est[i] = 0.001 + 0.02 * rnd01();
        char why[256] = "";
        qt_err e = qt_budget_reserve(b, wfs[wf_of[i]], est[i], D0 + 1000, &res[i], why, sizeof why, NULL);
        if (e == QT_OK) {
            admitted++;
        } else {
            cr_assert_eq(e, QT_ERR_LIMIT);
            cr_assert_neq(why[0], '\0');
            refused++;
        }
    }
    cr_assert_gt(admitted, 0);
    cr_assert_gt(refused, 0, "the limits never bit");
    /* then they finish in random order, each costing <= its estimate, some never
     * sent, and new callers keep racing for what is freed */
    for (int round = 0; round < 20000; round++) {
        int i = (int)(rnd() % 1000);
        if (res[i].active) {
            if (rnd() % 10 == 0)
                cr_assert_eq(qt_budget_release(b, &res[i], D0 + 2000), QT_OK);
            else
                cr_assert_eq(qt_budget_commit(b, &res[i], est[i] * rnd01(), 10, 10, D0 + 2000, NULL), QT_OK);
        } else {
            est[i] = 0.001 + 0.02 * rnd01();
            qt_budget_snap before;
            cr_assert_eq(qt_budget_snapshot(b, D0 + 2000, &before), QT_OK);
            if (qt_budget_reserve(b, wfs[wf_of[i]], est[i], D0 + 2000, &res[i], NULL, 0, NULL) != QT_OK) {
                /* not too conservative: some limit really had no room */
                int full = (rc->run > 0 && before.run_spent_usd + before.run_reserved_usd + est[i] > rc->run)
                        || (rc->day > 0 && before.day_spent_usd + before.day_reserved_usd + est[i] > rc->day);
                for (size_t w = 0; w < before.n_workflows; w++)
                    if (strcmp(before.workflows[w].name, wfs[wf_of[i]]) == 0 && wlim[wf_of[i]] > 0
                        && before.workflows[w].spent_usd + before.workflows[w].reserved_usd + est[i]
                               > wlim[wf_of[i]])
                        full = 1;
                cr_assert(full, "refused %.6f for %s with room left", est[i], wfs[wf_of[i]]);
                refused++;
            }
            qt_budget_snap_free(&before);
        }
        qt_budget_snap s;
        cr_assert_eq(qt_budget_snapshot(b, D0 + 2000, &s), QT_OK);
        if (rc->run > 0)
            cr_assert_leq(s.run_spent_usd + s.run_reserved_usd, rc->run + 1e-9, "run over: %.9f + %.9f",
                          s.run_spent_usd, s.run_reserved_usd);
        if (rc->day > 0)
            cr_assert_leq(s.day_spent_usd + s.day_reserved_usd, rc->day + 1e-9);
        for (size_t w = 0; w < s.n_workflows; w++)
            for (int k = 0; k < 3; k++)
                if (strcmp(s.workflows[w].name, wfs[k]) == 0 && wlim[k] > 0)
                    cr_assert_leq(s.workflows[w].spent_usd + s.workflows[w].reserved_usd, wlim[k] + 1e-9,
                                  "workflow %s over", wfs[k]);
        qt_budget_snap_free(&s);
    }
    for (int i = 0; i < 1000; i++)
        if (res[i].active)
            cr_assert_eq(qt_budget_release(b, &res[i], D0 + 3000), QT_OK);
    qt_budget_snap s;
    qt_budget_snapshot(b, D0 + 3000, &s);
    cr_assert_eq(s.outstanding, 0);
    cr_assert_float_eq(s.run_reserved_usd, 0, 1e-12);
    cr_assert_float_eq(s.day_reserved_usd, 0, 1e-12);
    qt_budget_snap_free(&s);
    qt_budget_free(b);
}

/* ---- events ------------------------------------------------------------------ */

Test(budget, warn_fires_exactly_once)
{
    qt_budget *b = qt_budget_new(1.00, 2.00, 0.8, QT_EXHAUSTED_REJECT);
    qt_budget_set_workflow(b, "nightly", 0.50);
    int warn_run = 0, warn_day = 0, warn_wf = 0, first_run = -1, first_wf = -1;
    for (int i = 0; i < 10; i++) {
        qt_budget_res r;
        unsigned ev = 0;
        cr_assert_eq(qt_budget_reserve(b, "nightly", 0.05, D0, &r, NULL, 0, &ev), QT_OK, "call %d", i);
        cr_assert_eq(ev, 0, "reserve raised %#x", ev);
        cr_assert_eq(qt_budget_commit(b, &r, 0.05, 100, 100, D0, &ev), QT_OK);
        if (ev & QT_BUDGET_EV_WARN_RUN) { warn_run++; if (first_run < 0) first_run = i; }
        if (ev & QT_BUDGET_EV_WARN_DAY) warn_day++;
        if (ev & QT_BUDGET_EV_WARN_WORKFLOW) { warn_wf++; if (first_wf < 0) first_wf = i; }
    }
    for (int i = 0; i < 10; i++) {
        qt_budget_res r;
        unsigned ev = 0;
        cr_assert_eq(qt_budget_reserve(b, "other", 0.05, D0, &r, NULL, 0, &ev), QT_OK);
        cr_assert_eq(qt_budget_commit(b, &r, 0.05, 100, 100, D0, &ev), QT_OK);
        if (ev & QT_BUDGET_EV_WARN_RUN) { warn_run++; if (first_run < 0) first_run = 10 + i; }
        if (ev & QT_BUDGET_EV_WARN_DAY) warn_day++;
        if (ev & QT_BUDGET_EV_WARN_WORKFLOW) warn_wf++;
    }
    cr_assert_eq(warn_wf, 1);
    cr_assert_eq(first_wf, 7, "workflow warned at call %d (0.40 of 0.50 is call 7)", first_wf);
    cr_assert_eq(warn_run, 1);
    cr_assert_eq(first_run, 15, "run warned at call %d (0.80 of 1.00 is call 15)", first_run);
    cr_assert_eq(warn_day, 0, "day at 1.00 of 2.00 warned");
    qt_budget_free(b);
}

Test(budget, refusal_reason_names_the_budget)
{
    qt_budget *b = qt_budget_new(1.00, 0, 0.8, QT_EXHAUSTED_REJECT);
    qt_budget_res r, big;
    char why[256];
    unsigned ev = 0;
    cr_assert_eq(qt_budget_reserve(b, "w", 0.98, D0, &r, why, sizeof why, &ev), QT_OK);
    cr_assert_eq(qt_budget_commit(b, &r, 0.98, 1, 1, D0, &ev), QT_OK);
    cr_assert_eq(qt_budget_reserve(b, "w", 0.01, D0, &r, why, sizeof why, &ev), QT_OK);
    ev = 0;
    cr_assert_eq(qt_budget_reserve(b, "w", 0.02, D0, &big, why, sizeof why, &ev), QT_ERR_LIMIT);
    cr_assert_eq(big.active, 0);
    cr_assert_str_eq(why, "run budget $1.00 exhausted: spent $0.98 + reserved $0.01 + this request $0.02 > $1.00");
    cr_assert_eq(ev, QT_BUDGET_EV_EXHAUSTED_RUN);
    ev = 0;
    cr_assert_eq(qt_budget_reserve(b, "w", 0.02, D0, &big, why, sizeof why, &ev), QT_ERR_LIMIT);
    cr_assert_eq(ev, 0, "exhausted fired twice");
    /* a tiny reason buffer is truncated, not overrun */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    cr_assert_eq(qt_budget_reserve(b, "w", 0.02, D0, &big, tiny, 4, NULL), QT_ERR_LIMIT);
    cr_assert_str_eq(tiny, "run");
    cr_assert_eq(tiny[5], 'x');
    qt_budget_free(b);

    b = qt_budget_new(0, 5.00, 0.8, QT_EXHAUSTED_REJECT);
    qt_budget_set_workflow(b, "nightly", 0.10);
    ev = 0;
    cr_assert_eq(qt_budget_reserve(b, "nightly", 0.25, D0, &big, why, sizeof why, &ev), QT_ERR_LIMIT);
    cr_assert_str_eq(why, "workflow \"nightly\" budget $0.10 exhausted: spent $0.00 + reserved $0.00 + this request $0.25 > $0.10");
    cr_assert_eq(ev, QT_BUDGET_EV_EXHAUSTED_WORKFLOW);
    cr_assert_eq(qt_budget_add_prior_day_spend(b, D0 + 5, 4.999), QT_OK);
    ev = 0;
    cr_assert_eq(qt_budget_reserve(b, "other", 0.0015, D0 + 6, &big, why, sizeof why, &ev), QT_ERR_LIMIT);
    cr_assert_str_eq(why, "day budget $5.00 exhausted: spent $4.999 + reserved $0.00 + this request $0.0015 > $5.00");
    cr_assert_eq(ev, QT_BUDGET_EV_EXHAUSTED_DAY);
    qt_budget_free(b);
}

/* ---- days ---------------------------------------------------------------------- */

Test(budget, day_rollover)
{
    qt_budget *b = qt_budget_new(0, 1.00, 0.5, QT_EXHAUSTED_REJECT);
    qt_budget_res r, late;
    unsigned ev = 0;
    cr_assert_eq(qt_budget_reserve(b, NULL, 0.6, D0 + 1000, &r, NULL, 0, NULL), QT_OK);
    cr_assert_eq(qt_budget_commit(b, &r, 0.6, 1, 1, D0 + 2000, &ev), QT_OK);
    cr_assert_eq(ev, QT_BUDGET_EV_WARN_DAY);
    /* outstanding at midnight: carried over to the new day */
    cr_assert_eq(qt_budget_reserve(b, NULL, 0.3, D0 + DAY_MS - 1, &late, NULL, 0, NULL), QT_OK);
    cr_assert_eq(qt_budget_reserve(b, NULL, 0.2, D0 + DAY_MS - 1, &r, NULL, 0, NULL), QT_ERR_LIMIT);
    cr_assert_eq(qt_budget_fits(b, NULL, 0.2, D0 + DAY_MS - 1), 0);
    cr_assert_eq(qt_budget_fits(b, NULL, 0.2, D0 + DAY_MS), 1, "no rollover at 00:00 UTC");
    qt_budget_res r7, no;
    cr_assert_eq(qt_budget_reserve(b, NULL, 0.7, D0 + DAY_MS, &r7, NULL, 0, NULL), QT_OK);
    cr_assert_eq(qt_budget_reserve(b, NULL, 0.01, D0 + DAY_MS, &no, NULL, 0, NULL), QT_ERR_LIMIT,
                 "yesterday's outstanding 0.30 not counted today");
    ev = 0;
    cr_assert_eq(qt_budget_commit(b, &late, 0.3, 1, 1, D0 + DAY_MS + 5, &ev), QT_OK);
    qt_budget_snap s;
    qt_budget_snapshot(b, D0 + DAY_MS + 5, &s);
    cr_assert_float_eq(s.day_spent_usd, 0.3, 1e-9);
    cr_assert_eq(s.day, 20001);
    qt_budget_snap_free(&s);
    cr_assert_eq(ev, 0, "0.30 of 1.00 warned");
    /* the warning re-arms on the new day */
    qt_budget_res r2;
    cr_assert_eq(qt_budget_release(b, &r7, D0 + DAY_MS + 6), QT_OK);
    cr_assert_eq(qt_budget_reserve(b, NULL, 0.3, D0 + DAY_MS + 7, &r2, NULL, 0, NULL), QT_OK);
    cr_assert_eq(qt_budget_commit(b, &r2, 0.3, 1, 1, D0 + DAY_MS + 8, &ev), QT_OK);
    cr_assert_eq(ev, QT_BUDGET_EV_WARN_DAY);
    /* prior spend from the ledger: past days are refused, today's counts */
    cr_assert_eq(qt_budget_add_prior_day_spend(b, D0 + 5, 1.0), QT_ERR_INVALID);
    cr_assert_eq(qt_budget_add_prior_day_spend(b, D0 + 2 * DAY_MS + 1, 0.95), QT_OK);
    cr_assert_eq(qt_budget_fits(b, NULL, 0.06, D0 + 2 * DAY_MS + 2), 0);
    cr_assert_eq(qt_budget_fits(b, NULL, 0.05, D0 + 2 * DAY_MS + 2), 1);
    qt_budget_free(b);
}

/* ---- commit, release, fits, snapshot ---------------------------------------------- */

Test(budget, release_and_overrun)
{
    qt_budget *b = qt_budget_new(1.00, 0, 0.9, QT_EXHAUSTED_DOWNGRADE);
    cr_assert_eq(qt_budget_on_exhausted(b), QT_EXHAUSTED_DOWNGRADE);
    qt_budget_res r;
    cr_assert_eq(qt_budget_reserve(b, "w", 1.00, 0, &r, NULL, 0, NULL), QT_OK);
    cr_assert_eq(qt_budget_fits(b, "w", 0.000001, 0), 0);
    cr_assert_eq(qt_budget_release(b, &r, 0), QT_OK);
    cr_assert_eq(qt_budget_release(b, &r, 0), QT_ERR_INVALID, "double release");
    cr_assert_eq(qt_budget_commit(b, &r, 0.1, 1, 1, 0, NULL), QT_ERR_INVALID, "commit after release");
    cr_assert_eq(qt_budget_fits(b, "w", 1.00, 0), 1, "release did not return the reservation");
    /* an actual above its estimate is spent all the same and blocks what follows */
    cr_assert_eq(qt_budget_reserve(b, "w", 0.10, 0, &r, NULL, 0, NULL), QT_OK);
    unsigned ev = 0;
    cr_assert_eq(qt_budget_commit(b, &r, 0.95, 100, 50, 0, &ev), QT_OK);
    cr_assert_eq(ev, QT_BUDGET_EV_WARN_RUN);   /* "w" has no limit of its own */
    cr_assert_eq(qt_budget_reserve(b, "w", 0.06, 0, &r, NULL, 0, NULL), QT_ERR_LIMIT);
    cr_assert_eq(qt_budget_reserve(b, "w", 0.05, 0, &r, NULL, 0, NULL), QT_OK);
    cr_assert_eq(qt_budget_commit(b, &r, -1, 0, 0, 0, NULL), QT_ERR_INVALID);
    cr_assert_eq(qt_budget_reserve(b, "w", NAN, 0, &r, NULL, 0, NULL), QT_ERR_INVALID);
    cr_assert_eq(r.active, 0);
    qt_budget_free(b);
    qt_budget_free(NULL);
    cr_assert_null(qt_budget_new(-1, 0, 0.8, QT_EXHAUSTED_REJECT));
}

Test(budget, fits_has_no_side_effects)
{
    qt_budget *b = qt_budget_new(0.10, 0, 0.8, QT_EXHAUSTED_DOWNGRADE);
    qt_budget_set_workflow(b, "w", 0.05);
    /* the router downgrades: gpt-4o does not fit, gpt-4o-mini does */
    double big = qt_budget_cost(2.50, 10.00, 4000, 4096);
    double small = qt_budget_cost(0.15, 0.60, 4000, 4096);
    cr_assert_eq(qt_budget_fits(b, "w", big, 0), 0);
    cr_assert_eq(qt_budget_fits(b, "w", small, 0), 1);
    cr_assert_eq(qt_budget_fits(b, "new-workflow", small, 0), 1);
    qt_budget_snap s;
    qt_budget_snapshot(b, 0, &s);
    cr_assert_float_eq(s.run_reserved_usd, 0, 1e-12);
    cr_assert_eq(s.n_workflows, 1, "fits created a workflow");
    cr_assert_eq(s.workflows[0].refused, 0);
    qt_budget_snap_free(&s);
    qt_budget_free(b);
}

Test(budget, snapshot_contents)
{
    qt_budget *b = qt_budget_new(2.00, 10.00, 0.75, QT_EXHAUSTED_REJECT);
    qt_budget_set_workflow(b, "support", 1.00);
    qt_budget_res r1, r2;
    qt_budget_reserve(b, "support", 0.30, D0, &r1, NULL, 0, NULL);
    qt_budget_reserve(b, "batch", 0.20, D0, &r2, NULL, 0, NULL);
    qt_budget_commit(b, &r1, 0.25, 1200, 300, D0, NULL);
    qt_budget_res r3;
    qt_budget_reserve(b, "support", 5.00, D0, &r3, NULL, 0, NULL);   /* refused */
    qt_budget_snap s;
    cr_assert_eq(qt_budget_snapshot(b, D0 + 10, &s), QT_OK);
    cr_assert_float_eq(s.run_limit_usd, 2.0, 1e-12);
    cr_assert_float_eq(s.run_spent_usd, 0.25, 1e-12);
    cr_assert_float_eq(s.run_reserved_usd, 0.20, 1e-12);
    cr_assert_float_eq(s.day_limit_usd, 10.0, 1e-12);
    cr_assert_float_eq(s.day_spent_usd, 0.25, 1e-12);
    cr_assert_float_eq(s.warn_ratio, 0.75, 1e-12);
    cr_assert_eq(s.outstanding, 1);
    cr_assert_eq(s.n_workflows, 2);
    cr_assert_str_eq(s.workflows[0].name, "support");
    cr_assert_float_eq(s.workflows[0].limit_usd, 1.0, 1e-12);
    cr_assert_float_eq(s.workflows[0].spent_usd, 0.25, 1e-12);
    cr_assert_eq(s.workflows[0].calls, 1);
    cr_assert_eq(s.workflows[0].prompt_tokens, 1200);
    cr_assert_eq(s.workflows[0].completion_tokens, 300);
    cr_assert_eq(s.workflows[0].refused, 1);
    cr_assert_str_eq(s.workflows[1].name, "batch");
    cr_assert_float_eq(s.workflows[1].reserved_usd, 0.20, 1e-12);
    cr_assert_float_eq(s.workflows[1].limit_usd, 0, 1e-12);
    qt_budget_snap_free(&s);
    cr_assert_null(s.workflows);
    qt_budget_snap_free(NULL);
    qt_budget_free(b);
}

Test(budget, money_is_exact)
{
    /* 100,000 calls of $0.00001 sum to exactly $1.00: integer nano-USD, no drift */
    qt_budget *b = qt_budget_new(1.00, 0, 0.8, QT_EXHAUSTED_REJECT);
    qt_budget_res r;
    for (int i = 0; i < 100000; i++) {
        cr_assert_eq(qt_budget_reserve(b, "w", 0.00001, 0, &r, NULL, 0, NULL), QT_OK, "call %d", i);
        cr_assert_eq(qt_budget_commit(b, &r, 0.00001, 1, 1, 0, NULL), QT_OK);
    }
    cr_assert_eq(qt_budget_reserve(b, "w", 0.000000001, 0, &r, NULL, 0, NULL), QT_ERR_LIMIT);
    qt_budget_snap s;
    qt_budget_snapshot(b, 0, &s);
    cr_assert_eq(s.run_spent_usd, 1.0);
    qt_budget_snap_free(&s);
    qt_budget_free(b);
}
