/* test_engine_view.c: the job views of contract D (qt_engine_jobs,
 * qt_engine_job_detail) and the attempts handed to on_result.
 *
 * Engines here are either never started (every job stays queued, the clock
 * is manual) or point at a loopback port nobody listens on (attempts fail at
 * once with a connection error), so nothing waits on a real upstream. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quotatop/engine.h"
#include "quotatop/http.h"

static const char *CFG =
    "{\"workers\": 2, \"state_dir\": \"\","
    " \"providers\": {\"p\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:1/v1\","
    "   \"timeout_ms\": 2000}},"
    " \"models\": {\"a\": {\"providers\": [\"p\"], \"fallback\": [\"b\"]},"
    "              \"b\": {\"providers\": [\"p\"]}},"
    " \"retry\": {\"max_attempts\": 2, \"base_ms\": 1, \"cap_ms\": 2},"
    " \"circuit\": {\"failure_threshold\": 100},"
    " \"queue\": {\"aging_ms\": 1000}}";

static qt_config *load(void)
{
    qt_diag d = { 0 };
    qt_config *c = qt_config_parse(CFG, strlen(CFG), &d);
    cr_assert_not_null(c, "config: %s", d.n_errors ? d.errors[0] : "?");
    qt_diag_free(&d);
    return c;
}

static qt_job *mkjob(const qt_config *c, const char *id, const char *model, int prio)
{
    char line[300];
    snprintf(line, sizeof line,
             "{\"id\":\"%s\",\"model\":\"%s\",\"priority\":%d,\"max_tokens\":10,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}",
             id, model, prio);
    qt_job *j = NULL;
    char *rid = NULL, *rwf = NULL, err[200];
    cr_assert_eq(qt_job_parse(line, strlen(line), 1, c, &j, &rid, &rwf, err, sizeof err), QT_OK, "%s", err);
    free(rid);
    free(rwf);
    return j;
}

typedef struct {
    pthread_mutex_t mu;
    int n;
    qt_status last_status;
    int n_attempts, attempts;
    int first_status;
    char first_error[160];
    uint64_t enqueued_wall_ms;
} sink;

static void on_result(void *ud, const qt_job *job, const qt_result *r, const qt_result_extra *x)
{
    (void)job;
    sink *s = ud;
    pthread_mutex_lock(&s->mu);
    s->n++;
    s->last_status = r->status;
    s->attempts = r->attempts;
    s->n_attempts = x->n_attempts;
    s->enqueued_wall_ms = x->enqueued_wall_ms;
    if (x->n_attempts > 0) {
        s->first_status = x->attempts[0].status;
        snprintf(s->first_error, sizeof s->first_error, "%s", x->attempts[0].error);
    }
    pthread_mutex_unlock(&s->mu);
}

Test(engine_view, state_names)
{
    cr_expect_str_eq(qt_job_state_name(QT_JOB_QUEUED), "queued");
    cr_expect_str_eq(qt_job_state_name(QT_JOB_WAIT_KEY), "wait-key");
    cr_expect_str_eq(qt_job_state_name(QT_JOB_WAIT_BACKOFF), "wait-backoff");
    cr_expect_str_eq(qt_job_state_name(QT_JOB_IN_FLIGHT), "in-flight");
    cr_expect_str_eq(qt_job_state_name(QT_JOB_STREAMING), "streaming");
    cr_expect_str_eq(qt_job_state_name(QT_JOB_DONE), "done");
    cr_expect_str_eq(qt_job_state_name((qt_job_state)99), "?");
}

Test(engine_view, queued_jobs_visible_most_urgent_first_with_aging)
{
    qt_config *c = load();
    qt_clock *clk = qt_clock_manual_new(1000000);
    sink s = { .mu = PTHREAD_MUTEX_INITIALIZER };
    qt_engine_opts o = { .cfg = c, .clock = clk, .on_result = on_result, .on_result_ud = &s };
    char err[200];
    qt_engine *e = qt_engine_new(&o, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    cr_assert_eq(qt_engine_submit(e, mkjob(c, "old", "a", 5)), QT_OK);
    qt_clock_manual_advance(clk, 3000);   /* "old" has aged 3 levels: 5 -> 2 */
    cr_assert_eq(qt_engine_submit(e, mkjob(c, "urgent", "b", 1)), QT_OK);
    cr_assert_eq(qt_engine_submit(e, mkjob(c, "lazy", "a", 9)), QT_OK);
    qt_clock_manual_advance(clk, 500);

    qt_job_view v[8];
    size_t n = qt_engine_jobs(e, v, 8);
    cr_assert_eq(n, 3);
    cr_expect_eq(qt_engine_jobs_count(e), 3);
    cr_expect_str_eq(v[0].id, "urgent");
    cr_expect_str_eq(v[1].id, "old");
    cr_expect_str_eq(v[2].id, "lazy");
    cr_expect_eq(v[1].priority, 5);
    cr_expect_eq(v[1].aged_priority, 2);
    cr_expect_eq(v[1].age_ms, 3500);
    cr_expect_eq(v[0].age_ms, 500);
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(v[i].state, QT_JOB_QUEUED);
        cr_expect_str_eq(v[i].cur_model, "");
        cr_expect_eq(v[i].attempts, 0);
        cr_expect_eq(v[i].max_tokens, 10);
        cr_expect_gt(v[i].est_prompt_tokens, 0);
    }
    cr_expect_eq(v[2].since_ms, 500);
    cr_expect_str_eq(v[2].model, "a");

    /* Reprioritize shows at once and moves the job. */
    cr_assert_eq(qt_engine_reprioritize(e, "lazy", 1), QT_OK);
    n = qt_engine_jobs(e, v, 8);
    cr_expect_str_eq(v[0].id, "urgent");   /* same aged priority, submitted first */
    cr_expect_str_eq(v[1].id, "lazy");
    cr_expect_eq(v[1].priority, 1);
    cr_expect_eq(qt_engine_reprioritize(e, "lazy", 11), QT_ERR_INVALID);
    cr_expect_eq(qt_engine_reprioritize(e, "nobody", 3), QT_ERR_NOTFOUND);

    /* max bounds the copy. */
    cr_expect_eq(qt_engine_jobs(e, v, 1), 1);
    cr_expect_str_eq(v[0].id, "urgent");

    qt_job_detail d;
    cr_assert_eq(qt_engine_job_detail(e, "old", &d), QT_OK);
    cr_expect_str_eq(d.job.id, "old");
    cr_expect_eq(d.n_chain, 2);
    cr_expect_str_eq(d.chain[0], "a");
    cr_expect_str_eq(d.chain[1], "b");
    cr_expect_eq(d.n_attempts, 0);
    cr_expect_eq(d.n_waits, 0);
    cr_expect_eq(qt_engine_job_detail(e, "nobody", &d), QT_ERR_NOTFOUND);

    /* A cancelled job leaves the views with its result. */
    cr_assert_eq(qt_engine_cancel(e, "old"), QT_OK);
    cr_expect_eq(s.n, 1);
    cr_expect_eq(s.last_status, QT_STATUS_CANCELLED);
    cr_expect_eq(s.enqueued_wall_ms, 1000000);
    cr_expect_eq(qt_engine_jobs(e, v, 8), 2);
    cr_expect_eq(qt_engine_job_detail(e, "old", &d), QT_ERR_NOTFOUND);

    qt_engine_free(e);   /* the two left get their `cancelled` result */
    cr_expect_eq(s.n, 3);
    qt_clock_free(clk);
    qt_config_free(c);
}

Test(engine_view, attempts_reach_the_result)
{
    qt_config *c = load();
    sink s = { .mu = PTHREAD_MUTEX_INITIALIZER };
    qt_engine_opts o = { .cfg = c, .on_result = on_result, .on_result_ud = &s, .seed = 7 };
    char err[200];
    qt_http_global_init();
    qt_engine *e = qt_engine_new(&o, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    cr_assert_eq(qt_engine_start(e), QT_OK);
    cr_assert_eq(qt_engine_submit(e, mkjob(c, "j1", "b", 5)), QT_OK);
    qt_engine_close_intake(e);
    cr_assert(qt_engine_wait_done(e, 20000));
    cr_expect_eq(s.n, 1);
    cr_expect_eq(s.last_status, QT_STATUS_FAILED);
    cr_expect_eq(s.attempts, 2);
    cr_expect_eq(s.n_attempts, 2, "attempts in the result: %d", s.n_attempts);
    cr_expect_eq(s.first_status, 0);   /* transport error: no HTTP status */
    cr_expect_neq(s.first_error[0], '\0');
    qt_engine_free(e);
    qt_config_free(c);
}
