/* test_simprov.c: the trace reader and the simulated provider of replay:
 * limits enforced per second like the mock (and like providers), latencies
 * and sizes from the recording, recorded errors and outages at their
 * times, peak RPM figures. Time is an argument: no sleeping. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quotatop/replay.h"

#define HEADER "{\"quotatop_trace\":1,\"config\":\"/x/cfg.json\",\"config_fnv1a\":\"00000000000000ab\"," \
    "\"providers\":{\"oa\":{\"rpm\":0,\"tpm\":0}}," \
    "\"models\":{\"m\":{\"upstream_model\":\"up-m\",\"providers\":[\"oa\"],\"rpm\":600,\"tpm\":6000," \
    "\"input_usd_per_mtok\":1,\"output_usd_per_mtok\":2},\"f\":{\"providers\":[\"oa\"],\"rpm\":0}}}\n"

/* One job line: arrival t (Unix ms), answered by model mu with status st
 * after total ms; attempts as a JSON array text. */
static void job(FILE *f, const char *id, uint64_t t, const char *mu, int completion, const char *attempts)
{
    fprintf(f, "{\"t\":%llu,\"id\":\"%s\",\"wf\":\"w\",\"prio\":5,\"model\":\"m\",\"chars\":40,\"msgs\":1,"
               "\"max_tokens\":50,\"status\":\"%s\",\"model_used\":\"%s\",\"provider\":\"oa\","
               "\"n_attempts\":1,\"prompt\":10,\"completion\":%d,\"cost_usd\":0.1,\"wait_ms\":0,"
               "\"latency_ms\":0,\"done_ms\":%llu,\"attempts\":%s}\n",
            (unsigned long long)t, id, *mu ? "ok" : "failed", mu, completion,
            (unsigned long long)(t + 500), attempts);
}

static char path[64];

static qt_trace_data *load(void (*fill)(FILE *))
{
    strcpy(path, "/tmp/qt-simprov.XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(HEADER, f);
    fill(f);
    fclose(f);
    char err[200];
    const char *p = path;
    qt_trace_data *d = qt_trace_load(&p, 1, 0, err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    unlink(path);
    return d;
}

static void fill_plain(FILE *f)
{
    job(f, "b", 1000500, "m", 30,
        "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":200,\"ttfb_ms\":40,\"total_ms\":500,\"completion\":30}]");
    job(f, "a", 1000000, "m", 20,
        "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":200,\"ttfb_ms\":70,\"total_ms\":700,\"completion\":20}]");
    fprintf(f, "{\"t\":1000001,\"id\":\"c\",\"status\":\"cancelled\",\"model\":\"m\"}\n");
    fprintf(f, "not json\n");
}

Test(simprov, reader_sorts_by_arrival_relative_times_and_header_limits)
{
    qt_trace_data *d = load(fill_plain);
    cr_expect_eq(d->n_reqs, 2);
    cr_expect_eq(d->skipped, 2, "the cancelled job and the malformed line");
    cr_expect_eq(d->t0_wall_ms, 1000000);
    cr_expect_eq(d->reqs[0].t_ms, 0);
    cr_expect_eq(d->reqs[1].t_ms, 500);
    cr_expect_eq(d->reqs[0].completion, 20, "job a arrived first");
    cr_expect_str_eq(d->config_path, "/x/cfg.json");
    const qt_trace_model *m = qt_trace_model_of(d, "m");
    cr_assert_not_null(m);
    cr_expect_float_eq(m->rpm, 600, 1e-9);
    cr_expect_str_eq(qt_trace_name(d, m->upstream), "up-m");
    cr_expect_eq(d->att[d->reqs[0].att0].total_ms, 700, "attempts follow their job");
    qt_trace_data_free(d);
}

Test(simprov, per_minute_limit_is_quantized_per_second_like_the_mock)
{
    qt_trace_data *d = load(fill_plain);
    qt_simprov *s = qt_simprov_new(d, 1);
    qt_sim_req r = { .provider = "oa", .model = "up-m", .prompt_tokens = 1, .max_tokens = 1, .job = -1 };
    qt_sim_answer a;
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        qt_simprov_request(s, &r, 5000, &a);
        ok += a.status == 200;
    }
    cr_expect_eq(ok, 10, "600 RPM admits 10 in a second");
    qt_simprov_request(s, &r, 5000, &a);
    cr_expect_eq(a.status, 429, "not 600 at once");
    cr_expect_eq(a.limited_on, 'r');
    cr_expect_eq(a.retry_after_ms, 100, "one request refills in 100 ms");
    cr_expect_eq(a.rpm, 600);
    qt_simprov_request(s, &r, 5100, &a);
    cr_expect_eq(a.status, 200, "admitted once the bucket refilled");
    qt_sim_key_stats st[4];
    size_t n = qt_simprov_stats(s, st, 4);
    cr_assert_geq(n, 1);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(st[i].name, "oa/up-m")) {
            found = 1;
            cr_expect_eq(st[i].peak_rpm, 12, "sent in the busiest minute, 429s included");
            cr_expect_eq(st[i].rate_limited, 1);
        }
    cr_expect(found);
    qt_simprov_free(s);
    qt_trace_data_free(d);
}

Test(simprov, tokens_count_prompt_plus_max_tokens)
{
    qt_trace_data *d = load(fill_plain);
    qt_simprov *s = qt_simprov_new(d, 1);
    /* 6000 TPM: a bucket of 100 tokens */
    qt_sim_req r = { .provider = "oa", .model = "up-m", .prompt_tokens = 30, .max_tokens = 30, .job = -1 };
    qt_sim_answer a;
    qt_simprov_request(s, &r, 0, &a);
    cr_expect_eq(a.status, 200);
    qt_simprov_request(s, &r, 0, &a);
    cr_expect_eq(a.status, 429, "60 + 60 > 100");
    cr_expect_eq(a.limited_on, 't');
    cr_expect_eq(a.retry_after_ms, 200, "20 tokens at 100/s");
    qt_simprov_free(s);
    qt_trace_data_free(d);
}

Test(simprov, latency_and_size_come_from_the_recording)
{
    qt_trace_data *d = load(fill_plain);
    qt_simprov *s = qt_simprov_new(d, 7);
    qt_sim_req r = { .provider = "oa", .model = "up-m", .prompt_tokens = -1, .max_tokens = 50, .job = 0 };
    qt_sim_answer a;
    qt_simprov_request(s, &r, 0, &a);
    cr_expect_eq(a.status, 200);
    cr_expect_eq(a.total_ms, 700, "job a's own recorded latency");
    cr_expect_eq(a.ttfb_ms, 70);
    cr_expect_eq(a.completion_tokens, 20);
    cr_expect_eq(a.prompt_tokens, 10, "the prompt the provider counted");
    r.max_tokens = 5;
    qt_simprov_request(s, &r, 1000, &a);
    cr_expect_eq(a.completion_tokens, 5, "capped by max_tokens");
    /* an unknown job draws from the model's recorded latencies */
    qt_sim_req u = { .provider = "oa", .model = "up-m", .prompt_tokens = 5, .max_tokens = 50, .job = -1 };
    for (int i = 0; i < 20; i++) {
        qt_simprov_request(s, &u, 2000 + 1000 * (uint64_t)i, &a);   /* 55 tokens a second fit 6000 TPM */
        cr_expect(a.total_ms == 500 || a.total_ms == 700, "drawn from the pool: %llu",
                  (unsigned long long)a.total_ms);
    }
    qt_simprov_free(s);
    qt_trace_data_free(d);
}

/* 20 attempts from 20 s to 30 s: all 503 (an outage); 20 from 40 s to 50 s: half 500. */
static void fill_faults(FILE *f)
{
    job(f, "z", 1000000, "m", 10,
        "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":200,\"ttfb_ms\":10,\"total_ms\":100,\"completion\":10}]");
    char id[16];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "o%d", i);
        job(f, id, 1000000 + 20000 + 500 * (uint64_t)i - 500 + 100, "", 0,
            "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":503,\"total_ms\":100}]");
    }
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "h%d", i);
        job(f, id, 1000000 + 40000 + 500 * (uint64_t)i - 500 + 100, i % 2 ? "m" : "",
            10, i % 2 ? "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":200,\"total_ms\":100}]"
                      : "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":500,\"total_ms\":100}]");
    }
}

Test(simprov, recorded_outage_and_error_rate_replay_at_their_times)
{
    qt_trace_data *d = load(fill_faults);
    qt_simprov *s = qt_simprov_new(d, 3);
    qt_sim_req r = { .provider = "oa", .model = "up-m", .prompt_tokens = 1, .max_tokens = 1, .job = -1 };
    qt_sim_answer a;
    int before = 0, during = 0, half = 0;
    for (int i = 0; i < 50; i++) {
        qt_simprov_request(s, &r, 5000 + 200 * (uint64_t)i, &a);     /* 5 s .. 15 s */
        before += a.status == 200;
        qt_simprov_request(s, &r, 20000 + 200 * (uint64_t)i, &a);    /* 20 s .. 30 s */
        during += a.status == 503;
    }
    for (int i = 0; i < 400; i++) {
        qt_simprov_request(s, &r, 40000 + 25 * (uint64_t)i, &a);     /* 40 s .. 50 s */
        half += a.status == 500;
    }
    cr_expect_eq(before, 50, "no recorded errors before the outage");
    cr_expect_eq(during, 50, "the recorded outage answers 503 throughout");
    cr_expect(half > 150 && half < 250, "about half fail where half did: %d/400", half);
    qt_simprov_free(s);
    qt_trace_data_free(d);
}

Test(simprov, sent_series_counts_every_request_per_second)
{
    qt_trace_data *d = load(fill_plain);
    qt_simprov *s = qt_simprov_new(d, 1);
    qt_sim_req r = { .provider = "oa", .model = "f", .prompt_tokens = 1, .max_tokens = 1, .job = -1 };
    qt_sim_answer a;
    for (int i = 0; i < 30; i++)
        qt_simprov_request(s, &r, (uint64_t)i * 4000, &a);   /* 15 a minute for 2 minutes */
    uint32_t v[200];
    size_t n = qt_simprov_sent_series(s, v, 200);
    cr_expect_eq(n, 117, "the last request in second 116");
    uint32_t first_min = 0, second_min = 0;
    for (size_t i = 0; i < n; i++)
        *(i < 60 ? &first_min : &second_min) += v[i];
    cr_expect_eq(first_min, 15);
    cr_expect_eq(second_min, 15);
    cr_expect_eq(v[4], 1);
    cr_expect_eq(v[5], 0);
    qt_simprov_free(s);
    qt_trace_data_free(d);
}

/* Failures at 20 s and 80 s with nothing between (an open circuit sends
 * nothing): the outage spans the gap. */
static void fill_gap(FILE *f)
{
    job(f, "z", 1000000, "m", 10,
        "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":200,\"total_ms\":100}]");
    job(f, "o1", 1000000 + 20000 - 400, "", 0, "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":503,\"total_ms\":100}]");
    job(f, "o2", 1000000 + 80000 - 400, "", 0, "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":503,\"total_ms\":100}]");
    job(f, "k", 1000000 + 400000 - 400, "m", 10, "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":200,\"total_ms\":100}]");
}

Test(simprov, an_outage_spans_the_gap_an_open_circuit_left)
{
    qt_trace_data *d = load(fill_gap);
    qt_simprov *s = qt_simprov_new(d, 3);
    qt_sim_req r = { .provider = "oa", .model = "up-m", .prompt_tokens = 1, .max_tokens = 1, .job = -1 };
    qt_sim_answer a;
    qt_simprov_request(s, &r, 50000, &a);
    cr_expect_eq(a.status, 503, "between two failing windows");
    qt_simprov_request(s, &r, 200000, &a);
    cr_expect_eq(a.status, 200, "long after the last failure");
    qt_simprov_free(s);
    qt_trace_data_free(d);
}

Test(simprov, limits_can_be_overridden_for_a_what_if_tier)
{
    qt_trace_data *d = load(fill_plain);
    qt_simprov *s = qt_simprov_new(d, 1);
    cr_assert_eq(qt_simprov_set_limits(s, "oa", "up-m", 1200, 0), QT_OK);
    qt_sim_req r = { .provider = "oa", .model = "up-m", .prompt_tokens = 1, .max_tokens = 1, .job = -1 };
    qt_sim_answer a;
    int ok = 0;
    for (int i = 0; i < 21; i++) {
        qt_simprov_request(s, &r, 0, &a);
        ok += a.status == 200;
    }
    cr_expect_eq(ok, 20, "1200 RPM admits 20 in a second, not the recorded 600's 10");
    cr_expect_eq(a.rpm, 1200);
    cr_expect_eq(a.tpm, 0, "no token limit in the override");
    qt_simprov_free(s);
    qt_trace_data_free(d);
}

/* Attempts whose headers announced the provider's limits, with their
 * start times recorded: the later announcement (300 RPM) wins. */
static void fill_announced(FILE *f)
{
    job(f, "a", 1000000, "m", 20,
        "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":429,\"total_ms\":5,\"at_ms\":3,"
        "\"limit_rpm\":900},{\"model\":\"m\",\"provider\":\"oa\",\"status\":200,\"ttfb_ms\":0,"
        "\"total_ms\":200,\"completion\":20,\"at_ms\":250,\"limit_rpm\":300,\"limit_tpm\":9000}]");
    job(f, "b", 1000100, "m", 20,
        "[{\"model\":\"m\",\"provider\":\"oa\",\"status\":200,\"total_ms\":200,\"completion\":20,"
        "\"at_ms\":10}]");
}

Test(simprov, limits_announced_in_the_recording_beat_the_config)
{
    qt_trace_data *d = load(fill_announced);
    const qt_trace_attempt *a = &d->att[d->reqs[0].att0];
    cr_expect_eq(a[0].t_ms, 3, "a recorded start: the arrival (0) + at_ms");
    cr_expect_eq(a[1].t_ms, 250);
    cr_expect_eq(d->att[d->reqs[1].att0].t_ms, 110, "job b arrived at 100");
    cr_expect_eq(a[1].limit_rpm, 300);
    qt_simprov *s = qt_simprov_new(d, 1);
    qt_sim_req r = { .provider = "oa", .model = "up-m", .prompt_tokens = 1, .max_tokens = 1, .job = -1 };
    qt_sim_answer ans;
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        qt_simprov_request(s, &r, 5000, &ans);
        ok += ans.status == 200;
    }
    cr_expect_eq(ok, 5, "the announced 300 RPM admits 5 in a second, not the configured 600's 10");
    cr_expect_eq(ans.rpm, 300);
    cr_expect_eq(ans.tpm, 9000);
    qt_sim_key_stats st[4];
    size_t n = qt_simprov_stats(s, st, 4);
    int found = 0;
    for (size_t i = 0; i < n && i < 4; i++)
        if (!strcmp(st[i].name, "oa/up-m")) {
            found = 1;
            cr_expect_eq(st[i].source, QT_SIM_LIMITS_HEADERS);
        }
    cr_expect(found);
    qt_simprov_free(s);
    /* An override (--upstream config) still beats the headers. */
    s = qt_simprov_new(d, 1);
    cr_assert_eq(qt_simprov_set_limits(s, "oa", "up-m", 1200, 0), QT_OK);
    qt_simprov_request(s, &r, 0, &ans);
    cr_expect_eq(ans.rpm, 1200);
    qt_simprov_free(s);
    qt_trace_data_free(d);
}

/* The simulated provider admits exactly what the mock's buckets admit, for
 * a random stream of requests of random sizes at random times. */
#include "../../src/sim/mock_int.h"

Test(simprov, admits_exactly_what_the_mock_admits)
{
    qt_trace_data *d = load(fill_plain);     /* up-m: 600 RPM, 6000 TPM */
    qt_simprov *s = qt_simprov_new(d, 9);
    mock_bucket req = { mock_bucket_cap(600), 0 }, tok = { mock_bucket_cap(6000), 0 };
    uint64_t rng = 42, now = 0;
    int agree = 0, admitted = 0;
    for (int i = 0; i < 5000; i++) {
        now += qt_rand_next(&rng) % 150;
        uint64_t cost_p = 1 + qt_rand_next(&rng) % 40, cost_m = qt_rand_next(&rng) % 40;
        qt_sim_req r = { .provider = "oa", .model = "up-m", .prompt_tokens = (int64_t)cost_p,
                         .max_tokens = (int64_t)cost_m, .job = -1 };
        if (!cost_m)
            r.max_tokens = 1, cost_m = 1;
        qt_sim_answer a;
        qt_simprov_request(s, &r, now, &a);
        mock_bucket_refill(&req, 600, now);
        mock_bucket_refill(&tok, 6000, now);
        uint64_t wr, wt;
        bool fr = mock_bucket_fits(&req, 600, 1, &wr), ft = mock_bucket_fits(&tok, 6000, cost_p + cost_m, &wt);
        bool mock_ok = fr && ft;
        if (mock_ok) {
            req.level -= 1.0;
            tok.level -= (double)(cost_p + cost_m);
        }
        agree += mock_ok == (a.status == 200);
        admitted += mock_ok;
        if (!mock_ok)
            cr_expect_eq(a.retry_after_ms, wr > wt ? wr : wt, "the same wait at request %d", i);
    }
    cr_expect_eq(agree, 5000);
    cr_expect(admitted > 500 && admitted < 4900, "the stream pressed the limits: %d admitted", admitted);
    qt_simprov_free(s);
    qt_trace_data_free(d);
}
