/* test_job_fsm.c: the job state machine driven by hand: events in, actions
 * and states out, over real policy objects, with time as plain numbers (no
 * engine, no threads, no network, no sleeping). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/engine/job_fsm.h"

static const char *CFG =
    "{\"state_dir\": \"\","
    " \"providers\": {\"p\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:1/v1\"}},"
    " \"models\": {\"a\": {\"providers\": [\"p\"], \"rpm\": 60, \"fallback\": [\"b\"],"
    "                      \"input_usd_per_mtok\": 1, \"output_usd_per_mtok\": 1},"
    "              \"b\": {\"providers\": [\"p\"], \"context_window\": 100},"
    "              \"c\": {\"providers\": [\"p\"], \"fallback\": [\"@cache\"]}},"
    " \"retry\": {\"max_attempts\": 3, \"base_ms\": 1000, \"cap_ms\": 4000},"
    " \"circuit\": {\"failure_threshold\": 100},"
    " \"budget\": {\"run_usd\": 1.0, \"on_exhausted\": \"reject\"},"
    " \"limits\": {\"headroom\": 1.0}}";

typedef struct {
    qt_config *cfg;
    fsm_env env;
    model_rt models[4];
    provider_rt providers[2];
    unsigned char blocked[8];
    uint64_t rng;
} world;

static world *w;

static void setup(void)
{
    w = calloc(1, sizeof *w);
    qt_diag d = { 0 };
    w->cfg = qt_config_parse(CFG, strlen(CFG), &d);
    cr_assert_not_null(w->cfg, "config: %s", d.n_errors ? d.errors[0] : "?");
    qt_diag_free(&d);
    const qt_config *c = w->cfg;
    w->rng = 42;
    w->env.cfg = c;
    w->env.limiter = qt_limiter_new(c->limits.burst_ms);
    w->env.budget = qt_budget_new(c->budget.run_usd, c->budget.day_usd, c->budget.warn_ratio,
                                  c->budget.on_exhausted);
    w->env.est = qt_estimator_new();
    w->env.cache = qt_cache_new(16);
    w->env.models = w->models;
    w->env.providers = w->providers;
    w->env.rng = &w->rng;
    w->env.blocked = w->blocked;
    qt_circuit_params cp = qt_circuit_params_default();
    cp.failure_threshold = 100;
    for (size_t i = 0; i < c->n_providers; i++) {
        provider_rt *p = &w->providers[i];
        p->cfg = &c->providers[i];
        p->ops = qt_provider_ops_for(p->cfg->kind);
        p->key = qt_limiter_add_key(w->env.limiter, "provider:p", 0, 0, 0);
        p->circuit = qt_circuit_new(&cp);
        p->rbudget = qt_retry_budget_new(1.0, 10000, 10);
    }
    for (size_t i = 0; i < c->n_models; i++) {
        model_rt *m = &w->models[i];
        m->cfg = &c->models[i];
        char name[80];
        snprintf(name, sizeof name, "model:%s", m->cfg->name);
        m->key = qt_limiter_add_key(w->env.limiter, name, m->cfg->rpm, m->cfg->tpm, 0);
        m->circuit = qt_circuit_new(&cp);
    }
}

static void teardown(void)
{
    for (size_t i = 0; i < w->cfg->n_providers; i++) {
        qt_circuit_free(w->providers[i].circuit);
        qt_retry_budget_free(w->providers[i].rbudget);
    }
    for (size_t i = 0; i < w->cfg->n_models; i++)
        qt_circuit_free(w->models[i].circuit);
    qt_limiter_free(w->env.limiter);
    qt_budget_free(w->env.budget);
    qt_estimator_free(w->env.est);
    qt_cache_free(w->env.cache);
    qt_config_free(w->cfg);
    free(w);
}

static qt_job *mkjob(const char *id, const char *model, int max_tokens)
{
    char line[300];
    snprintf(line, sizeof line,
             "{\"id\":\"%s\",\"model\":\"%s\",\"max_tokens\":%d,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}", id, model, max_tokens);
    qt_job *j = NULL;
    char *rid = NULL, *rwf = NULL, err[200];
    cr_assert_eq(qt_job_parse(line, strlen(line), 1, w->cfg, &j, &rid, &rwf, err, sizeof err), QT_OK,
                 "%s", err);
    free(rid);
    free(rwf);
    return j;
}

/* An attempt that came back with HTTP status st (0 with a transport error). */
static fsm_attempt answer(int st, qt_http_transport tr, const char *code)
{
    fsm_attempt a;
    memset(&a, 0, sizeof a);
    a.built = 1;
    a.resp.status = st;
    a.resp.transport = tr;
    a.resp.elapsed_ms = 100;
    memset(&a.limits, 0xff, sizeof a.limits);   /* every field -1: nothing announced */
    qt_retry_transport rt = tr == QT_HTTP_OK ? QT_RETRY_TRANSPORT_NONE
                            : tr == QT_HTTP_TIMEOUT ? QT_RETRY_TRANSPORT_TIMEOUT
                            : tr == QT_HTTP_CONNECT ? QT_RETRY_TRANSPORT_CONNECT
                                                    : QT_RETRY_TRANSPORT_OTHER;
    a.verdict = qt_retry_classify(st, code ? "invalid_request_error" : NULL, code, NULL, rt);
    if (st >= 200 && st < 300) {
        a.parsed_ok = 1;
        a.res.prompt_tokens = 10;
        a.res.completion_tokens = 5;
        a.res.content = (char *)"hi";
    }
    snprintf(a.err, sizeof a.err, "%d", st);
    return a;
}

TestSuite(job_fsm, .init = setup, .fini = teardown);

Test(job_fsm, dispatch_sends_then_ok_finishes_with_cost)
{
    qt_job *job = mkjob("j", "a", 10);
    fsm_job j;
    fsm_job_init(&j, w->cfg, job);
    cr_expect_eq(j.state, QT_JOB_QUEUED);
    cr_expect_eq(j.c.n, 2);
    fsm_action act;
    fsm_dispatch(&w->env, &j, job, 1000, 1700000000000, &act);
    cr_assert_eq(act.kind, FSM_SEND);
    cr_expect_eq(j.state, QT_JOB_IN_FLIGHT);
    cr_expect_eq(j.mi, 0);
    cr_expect_eq(j.c.attempts, 1);
    cr_expect_eq(w->models[0].in_flight, 1);
    fsm_attempt a = answer(200, QT_HTTP_OK, NULL);
    fsm_done(&w->env, &j, job, &a, 1100, 1700000000100, &act);
    cr_assert_eq(act.kind, FSM_FINISH);
    cr_expect_eq(act.status, QT_STATUS_OK);
    cr_expect_str_eq(act.model_used, "a");
    cr_expect_eq(act.billed, 1);
    cr_expect_float_eq(act.cost_usd, 15e-6, 1e-12);
    cr_expect_float_eq(j.cost_usd, 15e-6, 1e-12);
    cr_expect_eq(j.state, QT_JOB_DONE);
    cr_expect_eq(w->models[0].in_flight, 0);
    qt_job_free(job);
}

Test(job_fsm, rpm_limit_is_a_wait_on_the_key_until_the_limiter_says)
{
    qt_job *j1 = mkjob("j1", "a", 10), *j2 = mkjob("j2", "a", 10);
    fsm_job f1, f2;
    fsm_job_init(&f1, w->cfg, j1);
    fsm_job_init(&f2, w->cfg, j2);
    fsm_action act;
    fsm_dispatch(&w->env, &f1, j1, 1000, 0, &act);
    cr_assert_eq(act.kind, FSM_SEND);
    /* 60 RPM: the next admission is 1000 ms later. */
    fsm_dispatch(&w->env, &f2, j2, 1000, 0, &act);
    cr_assert_eq(act.kind, FSM_WAIT_KEY);
    cr_expect_eq(f2.state, QT_JOB_WAIT_KEY);
    cr_expect_str_eq(f2.wait_on, "model:a");
    cr_expect_eq(act.until, 2000);
    cr_expect_eq(act.key, w->models[0].key);
    cr_expect(w->blocked[w->models[0].key], "a waiting job marks its key for less urgent ones");
    /* Still too early at 1999, admitted at 2000. */
    memset(w->blocked, 0, sizeof w->blocked);
    fsm_dispatch(&w->env, &f2, j2, 1999, 0, &act);
    cr_expect_eq(act.kind, FSM_WAIT_KEY);
    memset(w->blocked, 0, sizeof w->blocked);
    fsm_dispatch(&w->env, &f2, j2, 2000, 0, &act);
    cr_expect_eq(act.kind, FSM_SEND);
    qt_job_free(j1);
    qt_job_free(j2);
}

Test(job_fsm, a_key_a_more_urgent_job_waits_for_is_not_taken)
{
    qt_job *job = mkjob("j", "a", 10);
    fsm_job j;
    fsm_job_init(&j, w->cfg, job);
    w->blocked[w->providers[0].key] = 1;
    fsm_action act;
    fsm_dispatch(&w->env, &j, job, 1000, 0, &act);
    cr_assert_eq(act.kind, FSM_WAIT_KEY);
    cr_expect(strstr(j.wait_on, "provider:p (a more urgent job first)"), "%s", j.wait_on);
    qt_limiter_stats st;
    qt_limiter_key_stats(w->env.limiter, w->models[0].key, 1000, &st);
    cr_expect_eq(st.requests_60s, 0, "nothing was reserved");
    qt_job_free(job);
}

Test(job_fsm, server_error_backs_off_then_the_timer_redispatches)
{
    qt_job *job = mkjob("j", "a", 10);
    fsm_job j;
    fsm_job_init(&j, w->cfg, job);
    fsm_action act;
    fsm_dispatch(&w->env, &j, job, 1000, 0, &act);
    fsm_attempt a = answer(503, QT_HTTP_OK, NULL);
    fsm_done(&w->env, &j, job, &a, 1100, 0, &act);
    cr_assert_eq(act.kind, FSM_WAIT_TIMER);
    cr_expect_eq(j.state, QT_JOB_WAIT_BACKOFF);
    cr_expect(act.until >= 1100 && act.until <= 1100 + 1000, "backoff within base_ms: %llu",
              (unsigned long long)act.until);
    cr_expect_str_eq(j.wait_on, "retry 1 of a");
    cr_expect_eq(j.c.tries[0], 1);
    /* Offered too early, it keeps waiting for its timer. */
    if (act.until > 1100) {
        fsm_action early;
        fsm_dispatch(&w->env, &j, job, 1100, 0, &early);
        cr_expect_eq(early.kind, FSM_WAIT_TIMER);
    }
    fsm_timer(&j, act.until, &act);
    cr_expect_eq(act.kind, FSM_REDISPATCH);
    cr_expect_eq(j.state, QT_JOB_ROUTED);
    fsm_dispatch(&w->env, &j, job, j.c.not_before + 1000, 0, &act);
    cr_expect_eq(act.kind, FSM_SEND);
    cr_expect_eq(j.mi, 0, "same model again");
    cr_expect_eq(j.c.attempts, 2);
    qt_job_free(job);
}

Test(job_fsm, rate_limited_holds_the_model_and_falls_back)
{
    qt_job *job = mkjob("j", "a", 10);
    fsm_job j;
    fsm_job_init(&j, w->cfg, job);
    fsm_action act;
    fsm_dispatch(&w->env, &j, job, 1000, 0, &act);
    fsm_attempt a = answer(429, QT_HTTP_OK, NULL);
    a.limits.retry_after_ms = 5000;
    fsm_done(&w->env, &j, job, &a, 1100, 0, &act);
    cr_assert_eq(act.kind, FSM_REDISPATCH);
    uint64_t until = 0;
    cr_expect(fsm_key_held(&w->env, w->models[0].key, 1100, &until));
    cr_expect_eq(until, 6100);
    fsm_dispatch(&w->env, &j, job, 1200, 0, &act);
    cr_assert_eq(act.kind, FSM_SEND);
    cr_expect_eq(j.mi, 1, "fell back to b while a cools down");
    qt_job_free(job);
}

Test(job_fsm, everything_unavailable_waits_for_the_probe)
{
    qt_job *job = mkjob("j", "a", 10);
    fsm_job j;
    fsm_job_init(&j, w->cfg, job);
    j.c.exhausted[1] = 1;   /* b is out */
    qt_limiter_hold(w->env.limiter, w->models[0].key, 9000);
    fsm_action act;
    fsm_dispatch(&w->env, &j, job, 1000, 0, &act);
    cr_assert_eq(act.kind, FSM_WAIT_TIMER);
    cr_expect_eq(j.state, QT_JOB_WAIT_PROBE);
    cr_expect_eq(act.until, 9000);
    cr_expect_str_eq(j.wait_on, "cooling down after 429");
    qt_job_free(job);
}

Test(job_fsm, cache_answers_with_the_tool_calls_when_everything_is_unavailable)
{
    qt_job *job = mkjob("j", "a", 10);
    fsm_job j;
    fsm_job_init(&j, w->cfg, job);
    j.c.has_cache = 1;   /* as for a chain ending in @cache */
    fsm_action act;
    fsm_dispatch(&w->env, &j, job, 1000, 0, &act);
    cr_assert_eq(act.kind, FSM_SEND);
    fsm_attempt a = answer(200, QT_HTTP_OK, NULL);
    const char *calls = "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]";
    a.res.content = (char *)"";
    a.res.finish_reason = (char *)"tool_calls";
    a.res.tool_calls = (char *)calls;
    fsm_done(&w->env, &j, job, &a, 1100, 0, &act);
    cr_assert_eq(act.kind, FSM_FINISH);
    cr_expect_eq(act.cached, 0);

    /* The same request again while a cools down after a 429 and b is out:
     * the cached answer now, not a wait for the probe. */
    fsm_job j2;
    fsm_job_init(&j2, w->cfg, job);
    j2.c.has_cache = 1;
    j2.c.exhausted[1] = 1;
    qt_limiter_hold(w->env.limiter, w->models[0].key, 9000);
    fsm_dispatch(&w->env, &j2, job, 2000, 0, &act);
    cr_assert_eq(act.kind, FSM_FINISH);
    cr_expect_eq(act.status, QT_STATUS_OK);
    cr_expect_eq(act.cached, 1);
    cr_expect_eq(j2.state, QT_JOB_DONE);
    cr_assert_not_null(act.owned_tool_calls);
    cr_expect_str_eq(act.owned_tool_calls, calls);
    cr_expect_str_eq(act.owned_finish, "tool_calls");
    cr_expect_str_eq(act.model_used, "a");
    free(act.owned_content);
    free(act.owned_model);
    free(act.owned_finish);
    free(act.owned_tool_calls);

    /* Without a cached answer it still waits. */
    qt_job *other = mkjob("k", "a", 11);
    fsm_job j3;
    fsm_job_init(&j3, w->cfg, other);
    j3.c.has_cache = 1;
    j3.c.exhausted[1] = 1;
    fsm_dispatch(&w->env, &j3, other, 2000, 0, &act);
    cr_expect_eq(act.kind, FSM_WAIT_TIMER);
    qt_job_free(other);
    qt_job_free(job);
}

/* What the proxy asks before refusing a request for a long wait: would the
 * machine answer it from the cache at once? Exactly when dispatch would. */
Test(job_fsm, cache_answers_now_agrees_with_dispatch)
{
    qt_job *job = mkjob("j", "c", 10);
    fsm_job j;
    fsm_job_init(&j, w->cfg, job);
    cr_assert_eq(j.c.has_cache, 1, "c's chain ends in @cache");
    cr_expect_eq(fsm_cache_answers_now(&w->env, job, 1000), 0, "nothing cached yet");
    fsm_action act;
    fsm_dispatch(&w->env, &j, job, 1000, 0, &act);
    cr_assert_eq(act.kind, FSM_SEND);
    fsm_attempt a = answer(200, QT_HTTP_OK, NULL);
    fsm_done(&w->env, &j, job, &a, 1100, 0, &act);
    cr_assert_eq(act.kind, FSM_FINISH);
    cr_expect_eq(fsm_cache_answers_now(&w->env, job, 1200), 0, "c can go: it is sent, not cached");

    qt_limiter_hold(w->env.limiter, w->models[2].key, 9000);   /* c cools down after a 429 */
    cr_expect_eq(fsm_cache_answers_now(&w->env, job, 2000), 1);
    qt_job *other = mkjob("k", "c", 11);
    cr_expect_eq(fsm_cache_answers_now(&w->env, other, 2000), 0, "another request has no answer");
    fsm_job j2;
    fsm_job_init(&j2, w->cfg, job);
    fsm_dispatch(&w->env, &j2, job, 2000, 0, &act);
    cr_expect_eq(act.kind, FSM_FINISH, "dispatch answers it from the cache too");
    cr_expect_eq(act.cached, 1);
    free(act.owned_content);
    free(act.owned_model);
    free(act.owned_finish);
    free(act.owned_tool_calls);
    cr_expect_eq(fsm_cache_answers_now(&w->env, job, 9500), 0, "the hold is over: c goes again");
    qt_job_free(other);
    qt_job_free(job);
}

Test(job_fsm, context_window_and_fatal_errors_finish)
{
    /* 300 max_tokens do not fit b's window of 100: a fails fatally, b is
     * never sent, the job fails naming the window. */
    qt_job *job = mkjob("j", "a", 300);
    fsm_job j;
    fsm_job_init(&j, w->cfg, job);
    fsm_action act;
    fsm_dispatch(&w->env, &j, job, 1000, 0, &act);
    cr_assert_eq(act.kind, FSM_SEND);
    fsm_attempt a = answer(400, QT_HTTP_OK, "context_length_exceeded");
    fsm_done(&w->env, &j, job, &a, 1100, 0, &act);
    cr_assert_eq(act.kind, FSM_REDISPATCH, "context length moves on");
    fsm_dispatch(&w->env, &j, job, 1200, 0, &act);
    cr_assert_eq(act.kind, FSM_FINISH);
    cr_expect_eq(act.status, QT_STATUS_FAILED);
    cr_expect(strstr(act.error, "context window"), "%s", act.error);
    cr_expect(strstr(act.error, "every model of the chain was tried"), "%s", act.error);
    qt_job_free(job);

    job = mkjob("k", "a", 10);
    fsm_job_init(&j, w->cfg, job);
    fsm_dispatch(&w->env, &j, job, 5000, 0, &act);
    cr_assert_eq(act.kind, FSM_SEND);
    a = answer(401, QT_HTTP_OK, NULL);
    fsm_done(&w->env, &j, job, &a, 5100, 0, &act);
    cr_assert_eq(act.kind, FSM_FINISH);
    cr_expect_eq(act.status, QT_STATUS_FAILED);
    qt_job_free(job);
}

Test(job_fsm, aborted_transfer_is_cancelled_and_gives_capacity_back)
{
    qt_job *job = mkjob("j", "a", 10);
    fsm_job j;
    fsm_job_init(&j, w->cfg, job);
    fsm_action act;
    fsm_dispatch(&w->env, &j, job, 1000, 0, &act);
    cr_assert_eq(act.kind, FSM_SEND);
    qt_budget_snap bs;
    qt_budget_snapshot(w->env.budget, 0, &bs);
    cr_expect_gt(bs.run_reserved_usd, 0);
    qt_budget_snap_free(&bs);
    fsm_attempt a = answer(0, QT_HTTP_ABORTED, NULL);
    fsm_done(&w->env, &j, job, &a, 1100, 0, &act);
    cr_assert_eq(act.kind, FSM_FINISH);
    cr_expect_eq(act.status, QT_STATUS_CANCELLED);
    cr_expect_eq(w->providers[0].in_flight, 0);
    qt_budget_snapshot(w->env.budget, 0, &bs);
    cr_expect_float_eq(bs.run_reserved_usd, 0, 1e-12, "the reservation was released");
    qt_budget_snap_free(&bs);
    qt_job_free(job);
}

Test(job_fsm, budget_refusal_rejects)
{
    qt_job *job = mkjob("j", "a", 10);
    qt_budget_res r;
    char reason[100];
    unsigned ev = 0;
    cr_assert_eq(qt_budget_reserve(w->env.budget, "x", 0.9999999, 0, &r, reason, sizeof reason, &ev),
                 QT_OK);
    qt_budget_commit(w->env.budget, &r, 0.9999999, 0, 0, 0, &ev);
    fsm_job j;
    fsm_job_init(&j, w->cfg, job);
    fsm_action act;
    fsm_dispatch(&w->env, &j, job, 1000, 0, &act);
    cr_assert_eq(act.kind, FSM_FINISH);
    cr_expect_eq(act.status, QT_STATUS_REJECTED);
    qt_job_free(job);
}
