/* test_replay.c: the simulated wire of replay against the real provider
 * code: a recorded request becomes a job the parser accepts with the
 * recorded size; each provider kind's built body reads back to the right
 * model, max_tokens and recording index; simulated answers parse as the
 * engine parses real ones (usage, limit headers, Retry-After) and a 429
 * classifies as a retryable rate limit. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/replay/replay_int.h"
#include "quotatop/jobs.h"
#include "quotatop/provider.h"
#include "quotatop/retry.h"

static const char cfg_json[] =
    "{\"providers\": {\"oa\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:9/v1\"},"
    "                 \"an\": {\"kind\": \"anthropic\", \"base_url\": \"http://127.0.0.1:9/v1\"}},"
    " \"models\": {\"m\": {\"providers\": [\"oa\"], \"upstream_model\": \"up-m\"},"
    "             \"c\": {\"providers\": [\"an\"], \"upstream_model\": \"claude-x\"}}}";

static qt_trace_data *one_request(const char *model, int chars, int msgs, int max_tokens)
{
    char path[] = "/tmp/qt-rw.XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "{\"quotatop_trace\":1,\"config\":\"\",\"models\":{}}\n");
    fprintf(f, "{\"t\":5000,\"id\":\"a\",\"wf\":\"nightly\",\"prio\":2,\"model\":\"%s\",\"chars\":%d,"
               "\"msgs\":%d,\"max_tokens\":%d,\"status\":\"ok\",\"attempts\":[]}\n",
            model, chars, msgs, max_tokens);
    fclose(f);
    char err[100];
    const char *p = path;
    qt_trace_data *d = qt_trace_load(&p, 1, 0, err, sizeof err);
    unlink(path);
    cr_assert_not_null(d, "%s", err);
    return d;
}

static qt_config *config(void)
{
    qt_diag dg = { 0 };
    qt_config *c = qt_config_parse(cfg_json, strlen(cfg_json), &dg);
    cr_assert_not_null(c, "%s", dg.n_errors ? dg.errors[0] : "");
    qt_diag_free(&dg);
    return c;
}

static void roundtrip(const char *model, qt_provider_kind kind, int msgs)
{
    qt_config *cfg = config();
    qt_trace_data *d = one_request(model, 400, msgs, 64);
    cJSON *body = rp_job_body(d, 0);
    cr_assert_not_null(body);
    qt_job *job = NULL;
    char err[300];
    cr_assert_eq(qt_job_from_json(body, 1, cfg, &job, NULL, NULL, err, sizeof err), QT_OK, "%s", err);
    cr_expect_eq(job->prompt_chars, 400, "the recorded prompt size");
    cr_expect_eq(job->n_messages, msgs);
    cr_expect_eq(job->priority, 2);
    cr_expect_str_eq(job->workflow, "nightly");
    const qt_provider_ops *ops = qt_provider_ops_for(kind);
    qt_provider_request req = { 0 };
    cr_assert_eq(ops->build_request(job->body, &cfg->models[job->model_idx], NULL, false, &req, err,
                                    sizeof err), QT_OK, "%s", err);
    rp_req_info info;
    cr_assert_eq(rp_parse_request(req.body, req.body_len, &info), 0);
    cr_expect_str_eq(info.model, cfg->models[job->model_idx].upstream_model);
    cr_expect_eq(info.max_tokens, 64);
    cr_expect_eq(info.job, 0, "the marker names the recording's index");
    qt_provider_request_free(&req);
    qt_job_free(job);
    qt_trace_data_free(d);
    qt_config_free(cfg);
}

Test(replay, recorded_request_round_trips_openai) { roundtrip("m", QT_KIND_OPENAI, 1); }
Test(replay, recorded_request_round_trips_anthropic) { roundtrip("c", QT_KIND_ANTHROPIC, 3); }

static void answers(qt_provider_kind kind)
{
    const qt_provider_ops *ops = qt_provider_ops_for(kind);
    qt_sim_answer ok = { .status = 200, .prompt_tokens = 12, .completion_tokens = 34, .total_ms = 800,
                         .rpm = 600, .tpm = 6000, .rem_req = 590, .rem_tok = 5000,
                         .reset_req_ms = 1000, .reset_tok_ms = 10000 };
    qt_http_response r;
    uint64_t wall = 1796000000000ull;
    cr_assert_eq(rp_build_response(kind, "up", &ok, wall, 1, &r), QT_OK);
    cr_expect_eq(r.status, 200);
    qt_provider_result res = { 0 };
    char err[200];
    cr_assert_eq(ops->parse_response(r.body, r.body_len, &res, err, sizeof err), QT_OK, "%s", err);
    cr_expect_eq(res.prompt_tokens, 12);
    cr_expect_eq(res.completion_tokens, 34);
    qt_provider_limits l;
    ops->parse_limit_headers(r.headers, r.n_headers, (int64_t)wall, &l);
    cr_expect_eq(l.requests.limit, 600);
    cr_expect_eq(l.requests.remaining, 590);
    cr_expect_geq(l.requests.reset_ms, 1000);
    cr_expect_leq(l.requests.reset_ms, 2000);
    cr_expect_eq(l.tokens.remaining, 5000);
    qt_provider_result_free(&res);
    qt_http_response_free(&r);

    qt_sim_answer rl = { .status = 429, .retry_after_ms = 1500, .limited_on = 'r', .rpm = 600,
                         .rem_req = 0, .reset_req_ms = 1500 };
    cr_assert_eq(rp_build_response(kind, "up", &rl, wall, 2, &r), QT_OK);
    cr_expect_eq(r.status, 429);
    ops->parse_limit_headers(r.headers, r.n_headers, (int64_t)wall, &l);
    cr_expect_eq(l.retry_after_ms, 1500, "retry-after-ms is read");
    qt_provider_error pe;
    ops->parse_error(r.status, r.body, r.body_len, &pe);
    qt_retry_verdict v = qt_retry_classify(429, pe.type, pe.code, pe.message, QT_RETRY_TRANSPORT_NONE);
    cr_expect_eq(v.cls, QT_RETRY_RETRYABLE);
    cr_expect(v.rate_limited, "a 429 of the replay is a rate limit to the engine");
    qt_http_response_free(&r);

    qt_sim_answer down = { .status = kind == QT_KIND_ANTHROPIC ? 529 : 503, .total_ms = 20 };
    cr_assert_eq(rp_build_response(kind, "up", &down, wall, 3, &r), QT_OK);
    ops->parse_error(r.status, r.body, r.body_len, &pe);
    v = qt_retry_classify(r.status, pe.type, pe.code, pe.message, QT_RETRY_TRANSPORT_NONE);
    cr_expect_eq(v.cls, QT_RETRY_RETRYABLE);
    cr_expect(v.upstream_failure, "a recorded outage counts against the circuit");
    qt_http_response_free(&r);

    qt_sim_answer gone = { .status = 0, .total_ms = 30000 };
    cr_assert_eq(rp_build_response(kind, "up", &gone, wall, 4, &r), QT_OK);
    cr_expect_neq(r.transport, QT_HTTP_OK, "a recorded transport error stays one");
    qt_http_response_free(&r);
}

Test(replay, simulated_answers_parse_like_openai) { answers(QT_KIND_OPENAI); }
Test(replay, simulated_answers_parse_like_anthropic) { answers(QT_KIND_ANTHROPIC); }

/* A streamed request's answer is the stream its kind sends, and the
 * engine's stream parser reads the same usage out of it. */
static void streamed(qt_provider_kind kind)
{
    qt_sim_answer ok = { .status = 200, .prompt_tokens = 12, .completion_tokens = 34, .total_ms = 800 };
    qt_http_response r;
    cr_assert_eq(rp_build_response(kind, "up", &ok, 1796000000000ull, 7, &r), QT_OK);
    cr_assert_eq(rp_make_stream(&r, kind, "up", &ok, 7), QT_OK);
    cr_expect(strstr(r.body, "data: ") == r.body || strstr(r.body, "event: ") == r.body, "%s", r.body);
    qt_provider_stream *ps = qt_provider_stream_new(kind, NULL, 0);
    cr_assert_eq(qt_provider_stream_feed(ps, r.body, r.body_len, NULL, NULL), QT_OK);
    cr_expect(qt_provider_stream_done(ps));
    qt_provider_result res;
    char err[200];
    cr_assert_eq(qt_provider_stream_result(ps, &res, err, sizeof err), QT_OK, "%s", err);
    cr_expect_eq(res.prompt_tokens, 12);
    cr_expect_eq(res.completion_tokens, 34);
    qt_provider_result_free(&res);
    qt_provider_stream_free(ps);
    qt_http_response_free(&r);
    qt_sim_answer rl = { .status = 429, .retry_after_ms = 100, .limited_on = 'r', .rpm = 60 };
    cr_assert_eq(rp_build_response(kind, "up", &rl, 1796000000000ull, 8, &r), QT_OK);
    cr_assert_eq(rp_make_stream(&r, kind, "up", &rl, 8), QT_OK);
    cr_expect_eq(r.body[0], '{', "an error stays a JSON error");
    qt_http_response_free(&r);
}

Test(replay, streamed_answers_parse_like_openai) { streamed(QT_KIND_OPENAI); }
Test(replay, streamed_answers_parse_like_anthropic) { streamed(QT_KIND_ANTHROPIC); }

/* Each recorded endpoint replays as a job of that endpoint, of the
 * recorded size; a streamed body says so to the wire. */
Test(replay, recorded_endpoints_and_streams_replay_as_recorded)
{
    qt_config *cfg = config();
    static const char *const eps[] = { "messages", "responses", "embeddings" };
    for (int k = 0; k < 3; k++) {
        char path[] = "/tmp/qt-rw.XXXXXX";
        int fd = mkstemp(path);
        FILE *f = fdopen(fd, "w");
        fprintf(f, "{\"quotatop_trace\":1,\"config\":\"\",\"models\":{}}\n");
        fprintf(f, "{\"t\":5000,\"id\":\"a\",\"model\":\"m\",\"endpoint\":\"%s\",\"chars\":300,\"msgs\":2,"
                   "\"max_tokens\":40,\"stream\":true,\"status\":\"ok\",\"attempts\":[]}\n", eps[k]);
        fclose(f);
        char err[300];
        const char *p = path;
        qt_trace_data *d = qt_trace_load(&p, 1, 0, err, sizeof err);
        unlink(path);
        cr_assert_not_null(d);
        cr_expect_eq(d->reqs[0].stream, 1);
        cJSON *body = rp_job_body(d, 0);
        qt_job *job = NULL;
        cr_assert_eq(qt_job_from_json(body, 1, cfg, &job, NULL, NULL, err, sizeof err), QT_OK, "%s: %s", eps[k],
                     err);
        cr_expect_str_eq(qt_endpoint_name(job->endpoint), eps[k]);
        cr_expect_eq(job->prompt_chars, 300, "%s: the recorded size", eps[k]);
        const qt_provider_ops *ops = qt_provider_ops_for(QT_KIND_OPENAI);
        qt_provider_request req = { 0 };
        cr_assert_eq(ops->build_request(job->body, &cfg->models[job->model_idx], NULL, k != 2, &req, err,
                                        sizeof err), QT_OK, "%s", err);
        rp_req_info info;
        cr_assert_eq(rp_parse_request(req.body, req.body_len, &info), 0);
        cr_expect_eq(info.job, 0);
        cr_expect_eq(info.max_tokens, k == 2 ? 0 : 40, "%s: max tokens under its API's name", eps[k]);
        cr_expect_eq(info.stream, k != 2);
        qt_provider_request_free(&req);
        qt_job_free(job);
        qt_trace_data_free(d);
    }
    qt_config_free(cfg);
}
