/* test_engine_virtual.c: the whole engine (queue, state machine, event
 * runtime) in virtual time: a manual clock, one loop driven by the test
 * (qt_engine_run_virtual), and a simulated provider as the transport
 * (contract C) that answers from loop timers. No threads, no network, no
 * sleeping: thousands of simulated seconds run in milliseconds.
 *
 * What it proves: `workers` bounds requests in flight (not threads);
 * limiter pacing holds exactly; capacity that frees on a shared model goes
 * to the most urgent job, whether still queued or back from a fallback;
 * cancel and reprioritize reach waiting and in-flight jobs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quotatop/engine.h"
#include "quotatop/loop.h"
#include "quotatop/transport.h"

/* ------------------------------------------------------------ simulated provider */

#define MAX_SENT 20000

typedef struct {
    qt_loop *loop;
    uint64_t latency_ms;
    int status_for_model_b;   /* answer this status to model "b" (0 = 200) */
    int in_flight, peak;
    int n_sent;
    char sent_id[MAX_SENT][16];
    uint64_t sent_at[MAX_SENT];
    int n_aborted;
    int drains;               /* drain() calls */
    int sent_at_drain;        /* n_sent when the first came */
} sim;

static sim *S;

typedef struct {
    sim *s;
    qt_timer *t;
    qt_http_on_done on_done;
    void *ud;
    int status;
} sim_req;

static void *sim_open(const qt_transport *t, qt_loop *loop)
{
    (void)t;
    S->loop = loop;
    return S;
}

static void sim_close(void *conn) { (void)conn; }

static void answer(void *ud)
{
    sim_req *r = ud;
    qt_http_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = r->status;
    const char *ok = "{\"id\":\"x\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
                     "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},"
                     "\"finish_reason\":\"stop\"}],"
                     "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}";
    const char *err = "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}";
    resp.body = strdup(r->status == 200 ? ok : err);
    resp.body_len = strlen(resp.body);
    resp.elapsed_ms = (int64_t)r->s->latency_ms;
    r->s->in_flight--;
    r->on_done(r->ud, &resp);   /* the callee frees resp's contents */
    free(r);
}

/* The job's id travels in its message ("job <id>"). */
static void *sim_post(void *conn, const char *url, const char *const *h, size_t nh, const char *body,
                      size_t len, int timeout_ms, qt_http_on_data on_data, qt_http_on_done on_done,
                      void *ud)
{
    (void)url, (void)h, (void)nh, (void)len, (void)timeout_ms, (void)on_data;
    sim *s = conn;
    sim_req *r = calloc(1, sizeof *r);
    r->s = s;
    r->on_done = on_done;
    r->ud = ud;
    r->status = s->status_for_model_b && strstr(body, "\"model\":\"b\"") ? s->status_for_model_b : 200;
    const char *p = strstr(body, "job ");
    if (s->n_sent < MAX_SENT) {
        snprintf(s->sent_id[s->n_sent], sizeof s->sent_id[0], "%.*s", p ? (int)strcspn(p + 4, "\"") : 1,
                 p ? p + 4 : "?");
        s->sent_at[s->n_sent] = qt_loop_now_ms(s->loop);
        s->n_sent++;
    }
    if (++s->in_flight > s->peak)
        s->peak = s->in_flight;
    r->t = qt_loop_timer_add(s->loop, qt_loop_now_ms(s->loop) + s->latency_ms, answer, r);
    return r;
}

static void sim_abort(void *conn, void *xfer)
{
    sim *s = conn;
    sim_req *r = xfer;
    qt_loop_timer_cancel(s->loop, r->t);
    s->in_flight--;
    s->n_aborted++;
    qt_http_response resp;
    memset(&resp, 0, sizeof resp);
    resp.transport = QT_HTTP_ABORTED;
    r->on_done(r->ud, &resp);
    free(r);
}

static void sim_drain(void *conn)
{
    sim *s = conn;
    if (s->drains++ == 0)
        s->sent_at_drain = s->n_sent;
}

static const qt_transport SIM = { .open = sim_open, .close = sim_close, .post = sim_post,
                                  .abort = sim_abort, .drain = sim_drain };

/* ------------------------------------------------------------ harness */

#define MAX_RES 20000

typedef struct {
    int n;
    char id[MAX_RES][16];
    qt_status st[MAX_RES];
    uint64_t at[MAX_RES];
    char model_used[MAX_RES][8];
} results;

static results *R;
static qt_clock *CLK;

static void on_result(void *ud, const qt_job *job, const qt_result *r, const qt_result_extra *x)
{
    (void)ud, (void)x;
    if (R->n >= MAX_RES)
        return;
    snprintf(R->id[R->n], sizeof R->id[0], "%s", job->id);
    R->st[R->n] = r->status;
    R->at[R->n] = qt_clock_now_ms(CLK);
    snprintf(R->model_used[R->n], sizeof R->model_used[0], "%s", r->model_used ? r->model_used : "");
    R->n++;
}

static qt_config *CFG;
static qt_engine *E;

static void start(const char *cfg_json, uint64_t latency)
{
    S = calloc(1, sizeof *S);
    R = calloc(1, sizeof *R);
    S->latency_ms = latency;
    qt_diag d = { 0 };
    CFG = qt_config_parse(cfg_json, strlen(cfg_json), &d);
    cr_assert_not_null(CFG, "config: %s", d.n_errors ? d.errors[0] : "?");
    qt_diag_free(&d);
    CLK = qt_clock_manual_new(1000000);
    qt_engine_opts o = { .cfg = CFG, .clock = CLK, .on_result = on_result, .transport = &SIM,
                         .virtual_time = 1, .seed = 3 };
    char err[200];
    E = qt_engine_new(&o, err, sizeof err);
    cr_assert_not_null(E, "%s", err);
    cr_assert_eq(qt_engine_start(E), QT_OK);
    cr_assert_not_null(qt_engine_loop(E));
}

static void stop(void)
{
    qt_engine_free(E);
    qt_config_free(CFG);
    qt_clock_free(CLK);
    free(S);
    free(R);
}

static qt_job *job_of(const char *id, const char *model, int prio)
{
    char line[300];
    snprintf(line, sizeof line,
             "{\"id\":\"%s\",\"model\":\"%s\",\"priority\":%d,\"max_tokens\":10,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"job %s\"}]}", id, model, prio, id);
    qt_job *j = NULL;
    char *rid = NULL, *rwf = NULL, err[200];
    cr_assert_eq(qt_job_parse(line, strlen(line), 1, CFG, &j, &rid, &rwf, err, sizeof err), QT_OK, "%s", err);
    free(rid);
    free(rwf);
    return j;
}

static void submit(const char *id, const char *model, int prio)
{
    cr_assert_eq(qt_engine_submit(E, job_of(id, model, prio)), QT_OK);
}

static int result_of(const char *id)
{
    for (int i = 0; i < R->n; i++)
        if (!strcmp(R->id[i], id))
            return i;
    return -1;
}

#define PROVIDER "\"providers\": {\"p\": {\"kind\": \"openai\", \"base_url\": \"http://sim/v1\"}}"

/* ------------------------------------------------------------ tests */

Test(engine_virtual, workers_bound_requests_in_flight_not_threads)
{
    start("{\"workers\": 5000, \"state_dir\": \"\", " PROVIDER ","
          " \"models\": {\"m\": {\"providers\": [\"p\"]}}}", 2000);
    char id[16];
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof id, "j%d", i);
        submit(id, "m", 5);
    }
    qt_engine_close_intake(E);
    cr_assert_eq(qt_engine_run_virtual(E), QT_OK);
    cr_expect_eq(R->n, 10000);
    cr_expect_eq(S->peak, 5000, "at most `workers` on the wire, and all of them: %d", S->peak);
    /* Two rounds of 2 s: the last answer at exactly 4 s of virtual time. */
    cr_expect_eq(qt_clock_now_ms(CLK) - 1000000, 4000);
    int ok = 0;
    for (int i = 0; i < R->n; i++)
        ok += R->st[i] == QT_STATUS_OK;
    cr_expect_eq(ok, 10000);
    /* The transport is told to keep no idle connection once, when the last
     * job is on the wire (not while 5,000 still wait for a slot). */
    cr_expect_eq(S->drains, 1);
    cr_expect_eq(S->sent_at_drain, 10000);
    stop();
}

/* A batch (run's reader) is queued as one-by-one submits are: in order,
 * each with its answer, a live duplicate id refused with an `invalid`
 * result, batches larger than one lock's share split, every job one result. */
Test(engine_virtual, submit_many_queues_a_batch_with_one_answer_each)
{
    start("{\"workers\": 1, \"state_dir\": \"\", " PROVIDER ","
          " \"models\": {\"m\": {\"providers\": [\"p\"]}}}", 100);
    enum { N = 600 };
    qt_job **jobs = calloc(N, sizeof *jobs);
    qt_err *errs = calloc(N, sizeof *errs);
    char id[16];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "j%d", i == 300 ? 7 : i);   /* j7 twice: in different locks */
        jobs[i] = job_of(id, "m", 5);
    }
    qt_job_free(jobs[5]);
    jobs[5] = job_of("j4", "m", 5);   /* j4 twice in one lock */
    qt_engine_submit_many(E, jobs, N, errs);
    for (int i = 0; i < N; i++)
        cr_assert_eq(errs[i], i == 5 || i == 300 ? QT_ERR_INVALID : QT_OK, "job %d: %d", i, errs[i]);
    cr_assert_eq(R->n, 2, "the two duplicates have their results at once");
    cr_assert_eq(R->st[0], QT_STATUS_INVALID);
    cr_assert_eq(R->st[1], QT_STATUS_INVALID);
    qt_engine_close_intake(E);
    cr_assert_eq(qt_engine_run_virtual(E), QT_OK);
    cr_assert_eq(R->n, N, "one result per job");
    /* One worker: sent in the order submitted (all priority 5). */
    cr_assert_str_eq(R->id[2], "j0");
    cr_assert_str_eq(R->id[3], "j1");
    cr_assert_str_eq(R->id[N - 1], "j599");
    int ok = 0;
    for (int i = 0; i < R->n; i++)
        ok += R->st[i] == QT_STATUS_OK;
    cr_assert_eq(ok, N - 2);
    free(jobs);
    free(errs);
    stop();
}

/* serve's backpressure: the queue bound and the wait bound refuse a job
 * under the same take of the lock that would queue it, the refused job is
 * still the caller's (no result for it), and what was seen comes back. */
Test(engine_virtual, submit_bounded_refuses_past_the_queue_or_wait_bound)
{
    /* 60 RPM, headroom 1, no burst: after one admission the next waits 1 s. */
    start("{\"workers\": 1, \"state_dir\": \"\", \"limits\": {\"headroom\": 1.0, \"burst_ms\": 0}, "
          PROVIDER ", \"models\": {\"m\": {\"providers\": [\"p\"], \"rpm\": 60}}}", 100);
    size_t depth = 99;
    uint64_t wait = 99;
    cr_assert_eq(qt_engine_submit_bounded(E, job_of("a", "m", 5), 2, 60000, &depth, &wait), QT_OK);
    cr_assert_eq(depth, 0);
    cr_assert_eq(wait, 0, "nothing admitted yet: no wait");
    cr_assert_eq(qt_engine_submit_bounded(E, job_of("b", "m", 5), 2, 60000, &depth, &wait), QT_OK);
    cr_assert_eq(depth, 1);
    qt_job *c = job_of("c", "m", 5);
    cr_assert_eq(qt_engine_submit_bounded(E, c, 2, 60000, &depth, &wait), QT_ERR_LIMIT);
    cr_assert_eq(depth, 2, "refused on the queue's depth");
    cr_assert_str_eq(c->id, "c", "the refused job is still the caller's");
    qt_job_free(c);
    /* "a" is sent: the next admission of m is 1 s away. */
    cr_assert_eq(qt_engine_run_virtual(E), QT_OK);
    cr_assert_geq(R->n, 1);
    qt_job *d = job_of("d", "m", 5);
    cr_assert_eq(qt_engine_submit_bounded(E, d, 100, 10, &depth, &wait), QT_ERR_LIMIT,
                 "a wait past max_wait_ms is refused");
    cr_assert_gt(wait, 10);
    cr_assert_leq(wait, 1000);
    qt_job_free(d);
    cr_assert_eq(qt_engine_submit_bounded(E, job_of("e", "m", 5), 100, 5000, NULL, NULL), QT_OK,
                 "the same wait within max_wait_ms is queued");
    qt_engine_close_intake(E);
    cr_assert_eq(qt_engine_run_virtual(E), QT_OK);
    cr_assert_eq(R->n, 3, "a, b and e have one result each; c and d none");
    cr_assert_eq(result_of("c"), -1);
    cr_assert_eq(result_of("d"), -1);
    stop();
}

Test(engine_virtual, rpm_pacing_is_exact)
{
    /* 600 RPM with headroom 1: one admission every 100 ms. */
    start("{\"workers\": 50, \"state_dir\": \"\", \"limits\": {\"headroom\": 1.0}, " PROVIDER ","
          " \"models\": {\"m\": {\"providers\": [\"p\"], \"rpm\": 600}}}", 300);
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "j%d", i);
        submit(id, "m", 5);
    }
    qt_engine_close_intake(E);
    qt_engine_run_virtual(E);
    cr_assert_eq(R->n, 100);
    cr_assert_eq(S->n_sent, 100);
    /* In any 1000 ms window at most ceil(600/60) = 10 requests. */
    for (int i = 10; i < S->n_sent; i++)
        cr_expect_geq(S->sent_at[i] - S->sent_at[i - 10], 1000, "window at %d", i);
    uint64_t span = S->sent_at[99] - S->sent_at[0];
    cr_expect(span >= 9800 && span <= 10000, "100 sends at 600 RPM span ~9.9 s: %llu",
              (unsigned long long)span);
    stop();
}

Test(engine_virtual, freed_capacity_goes_to_the_most_urgent_job_queued_or_fallen_back)
{
    /* "a" always fails over to the shared model "s" (a 400 it cannot
     * retry); "s" takes 60 RPM. Urgent jobs for s (priority 2), jobs that
     * fall back from a onto s (priority 5), lazy jobs for s (priority 6):
     * every urgent job must be sent to s before any other. */
    start("{\"workers\": 100, \"state_dir\": \"\", \"limits\": {\"headroom\": 1.0}, " PROVIDER ","
          " \"models\": {\"a\": {\"providers\": [\"p\"], \"fallback\": [\"s\"]},"
          "              \"s\": {\"providers\": [\"p\"], \"rpm\": 60}},"
          " \"queue\": {\"aging_ms\": 0}}", 500);
    S->status_for_model_b = 0;
    char id[16];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "f%d", i);
        submit(id, "a", 5);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "l%d", i);
        submit(id, "s", 6);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "u%d", i);
        submit(id, "s", 2);
    }
    qt_engine_close_intake(E);
    qt_engine_run_virtual(E);
    cr_assert_eq(R->n, 60);
    /* Order of the sends to s: after the first one (taken before the
     * urgent jobs arrived in this run's single pass), urgent first. */
    int last_urgent = -1, first_other = 1 << 30;
    for (int i = 0; i < S->n_sent; i++) {
        const char *who = S->sent_id[i];
        if (who[0] == 'u' && i > last_urgent)
            last_urgent = i;
        if (who[0] == 'l' && i < first_other)
            first_other = i;
    }
    cr_expect_lt(last_urgent, first_other, "every urgent job before any lazy one (%d vs %d)",
                 last_urgent, first_other);
    /* The urgent jobs finish first, within ~20 s at 60 RPM. */
    uint64_t u_max = 0, l_min = UINT64_MAX;
    for (int i = 0; i < R->n; i++) {
        if (R->id[i][0] == 'u' && R->at[i] > u_max)
            u_max = R->at[i];
        if (R->id[i][0] == 'l' && R->at[i] < l_min)
            l_min = R->at[i];
    }
    cr_expect_lt(u_max, l_min);
    stop();
}

Test(engine_virtual, cancel_and_reprioritize_in_every_state)
{
    start("{\"workers\": 1, \"state_dir\": \"\", \"limits\": {\"headroom\": 1.0}, " PROVIDER ","
          " \"models\": {\"m\": {\"providers\": [\"p\"]}}}", 10000);
    submit("wire", "m", 5);
    submit("q1", "m", 5);
    submit("q2", "m", 9);
    submit("q3", "m", 9);
    /* Let the first go on the wire: run until the clock would jump (a
     * timer 10 s out); stop the loop from a timer at +1 s. */
    qt_loop *l = qt_engine_loop(E);
    qt_loop_timer_add(l, qt_clock_now_ms(CLK) + 1000, (qt_loop_fn)qt_loop_stop, l);
    qt_engine_run_virtual(E);
    qt_job_view v[8];
    size_t n = qt_engine_jobs(E, v, 8);
    cr_assert_eq(n, 4);
    cr_expect_str_eq(v[0].id, "wire");
    cr_expect_eq(v[0].state, QT_JOB_IN_FLIGHT);
    cr_expect_str_eq(v[0].provider, "p");
    cr_expect_eq(v[0].since_ms, 1000);
    /* Reprioritize a queued job: q3 now goes before q1. */
    cr_expect_eq(qt_engine_reprioritize(E, "q3", 1), QT_OK);
    /* Cancel a queued job and the one on the wire (its transfer aborted). */
    cr_expect_eq(qt_engine_cancel(E, "q2"), QT_OK);
    cr_expect_eq(qt_engine_cancel(E, "wire"), QT_OK);
    qt_engine_close_intake(E);
    qt_engine_run_virtual(E);
    cr_assert_eq(R->n, 4);
    cr_expect_eq(S->n_aborted, 1);
    cr_expect_eq(R->st[result_of("q2")], QT_STATUS_CANCELLED);
    cr_expect_eq(R->st[result_of("wire")], QT_STATUS_CANCELLED);
    cr_expect_eq(R->st[result_of("q1")], QT_STATUS_OK);
    cr_expect_eq(R->st[result_of("q3")], QT_STATUS_OK);
    cr_expect_lt(result_of("q3"), result_of("q1"), "q3 was made more urgent");
    cr_expect_eq(S->n_sent, 3, "wire, q3, q1");
    stop();
}

Test(engine_virtual, backoff_waits_are_timers_and_visible)
{
    start("{\"workers\": 10, \"state_dir\": \"\", " PROVIDER ","
          " \"models\": {\"b\": {\"providers\": [\"p\"]}},"
          " \"retry\": {\"max_attempts\": 3, \"base_ms\": 4000, \"cap_ms\": 4000}}", 100);
    S->status_for_model_b = 503;
    submit("r", "b", 5);
    qt_loop *l = qt_engine_loop(E);
    /* Stop 150 ms in: the first attempt failed, the job waits its backoff. */
    qt_loop_timer_add(l, qt_clock_now_ms(CLK) + 150, (qt_loop_fn)qt_loop_stop, l);
    qt_engine_run_virtual(E);
    qt_job_detail d;
    cr_assert_eq(qt_engine_job_detail(E, "r", &d), QT_OK);
    if (d.job.state == QT_JOB_WAIT_BACKOFF) {
        cr_expect_str_eq(d.job.wait_on, "retry 1 of b");
        cr_expect_gt(d.job.until_in_ms, 0);
    } else {
        cr_expect_eq(d.job.state, QT_JOB_IN_FLIGHT, "state %s", qt_job_state_name(d.job.state));
    }
    cr_expect_geq(d.n_attempts, 1);
    cr_expect_eq(d.attempts[0].status, 503);
    /* Cancel it while it waits: the timer goes, the result comes at once. */
    cr_expect_eq(qt_engine_cancel(E, "r"), QT_OK);
    qt_engine_close_intake(E);
    qt_engine_run_virtual(E);
    cr_assert_eq(R->n, 1);
    cr_expect_eq(R->st[0], QT_STATUS_CANCELLED);
    cr_expect_lt(qt_clock_now_ms(CLK) - 1000000, 4100, "no waiting out the backoff");
    stop();
}
