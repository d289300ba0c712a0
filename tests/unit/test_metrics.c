/* test_metrics.c: Criterion suite "metrics".
 *
 * Counters per model / provider / workflow and totals, the per-second history
 * ring (placement, idle gaps, wraparound after 120 s, stale writes),
 * histogram buckets, percentiles on known distributions, snapshot sizing, and
 * threads_* tests where writers race snapshot readers (for `make tsan`).
 */
#include "quotatop/metrics.h"

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void req(qt_metrics *m, int model, int prov, int wf, qt_outcome o,
                uint64_t lat, uint64_t pt, uint64_t ct, double cost, uint64_t now)
{
    qt_metrics_request r = {.model = model, .provider = prov, .workflow = wf,
                            .outcome = o, .latency_ms = lat, .prompt_tokens = pt,
                            .completion_tokens = ct, .cost_usd = cost};
    qt_metrics_record_request(m, &r, now);
}

Test(metrics, registration_is_stable)
{
    qt_metrics *m = qt_metrics_new(0);
    cr_assert_eq(qt_metrics_model_index(m, "gpt-4o"), 0);
    cr_assert_eq(qt_metrics_model_index(m, "gpt-4o-mini"), 1);
    cr_assert_eq(qt_metrics_model_index(m, "gpt-4o"), 0);
    cr_assert_eq(qt_metrics_provider_index(m, "gpt-4o"), 0, "separate namespaces");
    cr_assert_eq(qt_metrics_workflow_index(m, "support"), 0);
    cr_assert_eq(qt_metrics_model_index(m, NULL), -1);
    for (int i = 0; i < 40; i++) { /* grows past the initial capacity */
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        cr_assert_eq(qt_metrics_model_index(m, name), 2 + i);
    }
    qt_metrics_snapshot s;
    cr_assert_eq(qt_metrics_snapshot_take(m, 0, &s), QT_OK);
    cr_assert_eq(s.n_models, 42);
    cr_assert_str_eq(s.models[1].name, "gpt-4o-mini");
    cr_assert_str_eq(s.models[41].name, "m39");
    qt_metrics_snapshot_free(&s);
    qt_metrics_snapshot_free(&s); /* zeroed: second free is harmless */
    qt_metrics_free(m);
    qt_metrics_free(NULL);
}

Test(metrics, counters_per_series_and_totals)
{
    qt_metrics *m = qt_metrics_new(1000);
    int g4 = qt_metrics_model_index(m, "gpt-4o");
    int mini = qt_metrics_model_index(m, "gpt-4o-mini");
    int oa = qt_metrics_provider_index(m, "openai");
    int sup = qt_metrics_workflow_index(m, "support");
    int night = qt_metrics_workflow_index(m, "nightly");
    req(m, g4, oa, sup, QT_OUTCOME_OK, 800, 100, 50, 0.01, 2000);
    req(m, g4, oa, sup, QT_OUTCOME_RATE_LIMITED, 30, 0, 0, 0, 2100);
    req(m, mini, oa, night, QT_OUTCOME_OK, 200, 10, 5, 0.001, 2200);
    req(m, -1, -1, -1, QT_OUTCOME_SERVER_ERROR, 100, 0, 0, 0, 2300); /* totals only */
    qt_metrics_record_retry(m, g4, oa, sup);
    qt_metrics_record_fallback(m, g4, sup);
    qt_metrics_record_job(m, sup, QT_JOB_OK);
    qt_metrics_record_job(m, night, QT_JOB_REJECTED);
    qt_metrics_record_job(m, 99, QT_JOB_CANCELLED);
    qt_metrics_count(m, QT_COUNTER_CIRCUIT_TRANSITIONS, 2);
    qt_metrics_gauge_set(m, QT_GAUGE_QUEUE_DEPTH, 17);
    qt_metrics_gauge_set(m, QT_GAUGE_QUEUE_DEPTH, 12);

    qt_metrics_snapshot s;
    cr_assert_eq(qt_metrics_snapshot_take(m, 3000, &s), QT_OK);
    cr_assert_eq(s.start_ms, 1000);
    cr_assert_eq(s.now_ms, 3000);
    const qt_metrics_series *a = &s.models[g4];
    cr_assert_eq(a->requests_total, 2);
    cr_assert_eq(a->requests[QT_OUTCOME_OK], 1);
    cr_assert_eq(a->requests[QT_OUTCOME_RATE_LIMITED], 1);
    cr_assert_eq(a->prompt_tokens, 100);
    cr_assert_eq(a->completion_tokens, 50);
    cr_assert_eq(a->retries, 1);
    cr_assert_eq(a->fallbacks, 1);
    cr_assert_float_eq(a->cost_usd, 0.01, 1e-12);
    cr_assert_eq(s.providers[oa].requests_total, 3);
    cr_assert_eq(s.providers[oa].prompt_tokens, 110);
    cr_assert_eq(s.workflows[sup].calls, 2);
    cr_assert_eq(s.workflows[sup].calls_ok, 1);
    cr_assert_eq(s.workflows[sup].jobs[QT_JOB_OK], 1);
    cr_assert_eq(s.workflows[night].jobs[QT_JOB_REJECTED], 1);
    cr_assert_float_eq(s.workflows[night].cost_usd, 0.001, 1e-12);
    cr_assert_eq(s.totals.requests_total, 4);
    cr_assert_eq(s.totals.requests[QT_OUTCOME_SERVER_ERROR], 1);
    cr_assert_eq(s.totals.jobs_total, 3);
    cr_assert_eq(s.totals.jobs[QT_JOB_CANCELLED], 1);
    cr_assert_eq(s.totals.retries, 1);
    cr_assert_eq(s.totals.fallbacks, 1);
    cr_assert_eq(s.totals.counters[QT_COUNTER_CIRCUIT_TRANSITIONS], 2);
    cr_assert_eq(s.totals.gauges[QT_GAUGE_QUEUE_DEPTH], 12);
    cr_assert_float_eq(s.totals.cost_usd, 0.011, 1e-12);
    cr_assert_str_eq(qt_outcome_name(QT_OUTCOME_RATE_LIMITED), "rate_limited");
    cr_assert_str_eq(qt_job_status_name(QT_JOB_INVALID), "invalid");
    qt_metrics_snapshot_free(&s);
    qt_metrics_free(m);
}

Test(metrics, latency_buckets_le_semantics)
{
    qt_metrics *m = qt_metrics_new(0);
    int x = qt_metrics_model_index(m, "x");
    /* exactly on a bound goes in that bucket (Prometheus le) */
    uint64_t lats[] = {0, 50, 51, 100, 1000, 1001, 60000, 60001, 600000};
    size_t want_bucket[] = {0, 0, 1, 1, 4, 5, 9, 10, 10};
    for (size_t i = 0; i < QT_ARRAY_LEN(lats); i++)
        req(m, x, -1, -1, QT_OUTCOME_OK, lats[i], 0, 0, 0, 0);
    qt_metrics_snapshot s;
    qt_metrics_snapshot_take(m, 0, &s);
    uint64_t want[QT_METRICS_LAT_BUCKETS + 1] = {0};
    for (size_t i = 0; i < QT_ARRAY_LEN(want_bucket); i++)
        want[want_bucket[i]]++;
    for (size_t b = 0; b <= QT_METRICS_LAT_BUCKETS; b++)
        cr_assert_eq(s.models[x].latency_buckets[b], want[b], "bucket %zu", b);
    cr_assert_eq(s.models[x].latency_count, QT_ARRAY_LEN(lats));
    cr_assert_float_eq(s.models[x].latency_sum_s, 722.203, 1e-9);
    qt_metrics_snapshot_free(&s);
    qt_metrics_free(m);
}

Test(metrics, percentiles_known_distribution)
{
    qt_metrics *m = qt_metrics_new(0);
    int x = qt_metrics_model_index(m, "x");
    int empty = qt_metrics_model_index(m, "empty");
    /* 1..200 ms in a shuffled order */
    uint32_t v[200];
    for (int i = 0; i < 200; i++)
        v[i] = (uint32_t)(i + 1);
    srand(3);
    for (int i = 199; i > 0; i--) {
        int j = rand() % (i + 1);
        uint32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    for (int i = 0; i < 200; i++)
        req(m, x, -1, -1, QT_OUTCOME_OK, v[i], 0, 0, 0, 0);
    qt_metrics_snapshot s;
    qt_metrics_snapshot_take(m, 0, &s);
    cr_assert_eq(s.models[x].samples, 200);
    cr_assert_float_eq(s.models[x].p50_ms, 100, 1e-9);
    cr_assert_float_eq(s.models[x].p95_ms, 190, 1e-9);
    cr_assert_float_eq(s.models[x].p99_ms, 198, 1e-9);
    cr_assert_float_eq(s.models[empty].p50_ms, -1, 1e-9);
    qt_metrics_snapshot_free(&s);
    qt_metrics_free(m);
}

Test(metrics, percentiles_use_recent_samples)
{
    qt_metrics *m = qt_metrics_new(0);
    int x = qt_metrics_model_index(m, "x");
    for (int i = 0; i < QT_METRICS_SAMPLES; i++)
        req(m, x, -1, -1, QT_OUTCOME_OK, 10000, 0, 0, 0, 0); /* old and slow */
    for (int i = 0; i < QT_METRICS_SAMPLES; i++)
        req(m, x, -1, -1, QT_OUTCOME_OK, 20, 0, 0, 0, 0);    /* recent and fast */
    qt_metrics_snapshot s;
    qt_metrics_snapshot_take(m, 0, &s);
    cr_assert_eq(s.models[x].samples, QT_METRICS_SAMPLES);
    cr_assert_float_eq(s.models[x].p99_ms, 20, 1e-9);
    cr_assert_eq(s.models[x].latency_count, 2 * QT_METRICS_SAMPLES, "totals keep all");
    qt_metrics_snapshot_free(&s);
    qt_metrics_free(m);
}

Test(metrics, percentile_function_table)
{
    struct { uint32_t v[5]; size_t n; double pct, want; } t[] = {
        {{5}, 1, 50, 5},
        {{1, 2, 3, 4}, 4, 50, 2},
        {{4, 3, 2, 1}, 4, 75, 3},
        {{4, 3, 2, 1}, 4, 76, 4},
        {{10, 20, 30, 40, 50}, 5, 100, 50},
        {{10, 20, 30, 40, 50}, 5, 1, 10},
    };
    for (size_t i = 0; i < QT_ARRAY_LEN(t); i++)
        cr_assert_float_eq(qt_metrics_percentile(t[i].v, t[i].n, t[i].pct), t[i].want,
                           1e-9, "row %zu", i);
    cr_assert_float_eq(qt_metrics_percentile(t[0].v, 0, 50), -1, 1e-9);
}

Test(metrics, bucket_quantile_interpolates)
{
    uint64_t b[QT_METRICS_LAT_BUCKETS + 1] = {0};
    cr_assert_float_eq(qt_metrics_bucket_quantile(b, 0.5), -1, 1e-9);
    b[4] = 100; /* all in (0.5, 1] s */
    cr_assert_float_eq(qt_metrics_bucket_quantile(b, 0.5), 0.75, 1e-9);
    cr_assert_float_eq(qt_metrics_bucket_quantile(b, 1.0), 1.0, 1e-9);
    b[10] = 100; /* half above 60 s */
    cr_assert_float_eq(qt_metrics_bucket_quantile(b, 0.95), 60, 1e-9);
}

Test(metrics, history_per_second)
{
    qt_metrics *m = qt_metrics_new(0);
    int x = qt_metrics_model_index(m, "x");
    int p = qt_metrics_provider_index(m, "p");
    /* 3 requests in second 10, 1 in second 12; 10 tokens each */
    req(m, x, p, -1, QT_OUTCOME_OK, 1, 5, 5, 0, 10000);
    req(m, x, p, -1, QT_OUTCOME_OK, 1, 5, 5, 0, 10500);
    req(m, x, p, -1, QT_OUTCOME_RATE_LIMITED, 1, 5, 5, 0, 10999);
    req(m, x, p, -1, QT_OUTCOME_OK, 1, 5, 5, 0, 12000);
    qt_metrics_snapshot s;
    qt_metrics_snapshot_take(m, 12400, &s);
    const qt_metrics_series *h = &s.models[x];
    cr_assert_eq(h->rps[119], 1, "second 12 is the last slot");
    cr_assert_eq(h->rps[118], 0, "second 11 was idle");
    cr_assert_eq(h->rps[117], 3);
    cr_assert_eq(h->tps[117], 30);
    cr_assert_eq(h->tps[119], 10);
    cr_assert_eq(s.providers[p].rps[117], 3);
    uint64_t sum = 0;
    for (int i = 0; i < QT_METRICS_HISTORY_S; i++)
        sum += h->rps[i];
    cr_assert_eq(sum, 4);
    qt_metrics_snapshot_free(&s);
    /* a later snapshot slides the window: second 10 is now 50 s back */
    qt_metrics_snapshot_take(m, 60000, &s);
    cr_assert_eq(s.models[x].rps[119 - 50], 3);
    cr_assert_eq(s.models[x].rps[119 - 48], 1);
    cr_assert_eq(s.models[x].rps[119], 0);
    qt_metrics_snapshot_free(&s);
    qt_metrics_free(m);
}

Test(metrics, history_wraps_after_120_seconds)
{
    qt_metrics *m = qt_metrics_new(0);
    int x = qt_metrics_model_index(m, "x");
    /* one request per second for 300 seconds, i requests in second i % 7 pattern */
    for (uint64_t sec = 0; sec < 300; sec++)
        for (uint64_t k = 0; k < sec % 7 + 1; k++)
            req(m, x, -1, -1, QT_OUTCOME_OK, 1, 1, 0, 0, sec * 1000 + k);
    qt_metrics_snapshot s;
    qt_metrics_snapshot_take(m, 299999, &s);
    for (int i = 0; i < QT_METRICS_HISTORY_S; i++) {
        uint64_t sec = 299 - (119 - (uint64_t)i);
        cr_assert_eq(s.models[x].rps[i], sec % 7 + 1, "slot %d (second %lu)", i,
                     (unsigned long)sec);
        cr_assert_eq(s.models[x].tps[i], sec % 7 + 1);
    }
    qt_metrics_snapshot_free(&s);
    /* a write for second 150 (older than 299-119) is dropped from history,
     * kept in totals */
    req(m, x, -1, -1, QT_OUTCOME_OK, 1, 1, 0, 0, 150000);
    /* a write 5 s in the past still lands in its slot */
    req(m, x, -1, -1, QT_OUTCOME_OK, 1, 1, 0, 0, 294000);
    qt_metrics_snapshot_take(m, 299999, &s);
    cr_assert_eq(s.models[x].rps[114], 294 % 7 + 2);
    cr_assert_eq(s.models[x].rps[0], 180 % 7 + 1);
    qt_metrics_snapshot_free(&s);
    /* a long idle gap (far more than 120 s) clears everything */
    req(m, x, -1, -1, QT_OUTCOME_OK, 1, 1, 0, 0, 1000000);
    qt_metrics_snapshot_take(m, 1000500, &s);
    uint64_t sum = 0;
    for (int i = 0; i < QT_METRICS_HISTORY_S; i++)
        sum += s.models[x].rps[i];
    cr_assert_eq(sum, 1);
    cr_assert_eq(s.models[x].rps[119], 1);
    qt_metrics_snapshot_free(&s);
    /* a snapshot far after the last write reads zeros */
    qt_metrics_snapshot_take(m, 5000000, &s);
    for (int i = 0; i < QT_METRICS_HISTORY_S; i++)
        cr_assert_eq(s.models[x].rps[i], 0);
    qt_metrics_snapshot_free(&s);
    qt_metrics_free(m);
}

Test(metrics, history_near_time_zero)
{
    qt_metrics *m = qt_metrics_new(0);
    int x = qt_metrics_model_index(m, "x");
    req(m, x, -1, -1, QT_OUTCOME_OK, 1, 0, 0, 0, 500);
    qt_metrics_snapshot s;
    qt_metrics_snapshot_take(m, 2500, &s);
    cr_assert_eq(s.models[x].rps[117], 1);
    cr_assert_eq(s.models[x].rps[119], 0);
    qt_metrics_snapshot_free(&s);
    qt_metrics_free(m);
}

/* ---------- threads ---------- */

enum { MWRITERS = 4, MPER = 20000, MREADERS = 2 };

typedef struct {
    qt_metrics *m;
    pthread_barrier_t *bar;
    int id;
    int models[2], prov, wf;
    volatile int *stop;
    long bad, snaps;
} m_arg;

static void *m_writer(void *a)
{
    m_arg *w = a;
    pthread_barrier_wait(w->bar);
    for (int i = 0; i < MPER; i++) {
        /* time advances so the history ring wraps several times */
        uint64_t now = (uint64_t)i * 20;
        req(w->m, w->models[i & 1], w->prov, w->wf,
            (i % 10) ? QT_OUTCOME_OK : QT_OUTCOME_RATE_LIMITED, (uint64_t)(i % 3000),
            3, 2, 0.5, now);
        if (i % 100 == 0) {
            qt_metrics_record_retry(w->m, w->models[0], w->prov, w->wf);
            qt_metrics_gauge_set(w->m, QT_GAUGE_INFLIGHT, i);
        }
        if (i == MPER / 2) { /* registration racing writers and readers */
            char name[16];
            snprintf(name, sizeof name, "late%d", w->id);
            qt_metrics_model_index(w->m, name);
        }
    }
    return NULL;
}

static void *m_reader(void *a)
{
    m_arg *r = a;
    pthread_barrier_wait(r->bar);
    /* at least 50 snapshots, and keep going while writers write */
    while (r->snaps < 50 || !__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        qt_metrics_snapshot s;
        if (qt_metrics_snapshot_take(r->m, 0, &s) != QT_OK) {
            r->bad++;
            continue;
        }
        /* consistency within one snapshot: totals equal the sums over series,
         * and each series' outcomes add up to its total */
        uint64_t sum = 0, tok = 0;
        for (size_t i = 0; i < s.n_models; i++) {
            uint64_t o = 0;
            for (int k = 0; k < QT_OUTCOME__COUNT; k++)
                o += s.models[i].requests[k];
            if (o != s.models[i].requests_total)
                r->bad++;
            sum += s.models[i].requests_total;
            tok += s.models[i].prompt_tokens + s.models[i].completion_tokens;
        }
        if (sum != s.totals.requests_total || tok != 5 * sum)
            r->bad++;
        if (s.n_providers == 1 && s.providers[0].requests_total != sum)
            r->bad++;
        if (fabs(s.totals.cost_usd - 0.5 * (double)sum) > 1e-6)
            r->bad++;
        r->snaps++;
        qt_metrics_snapshot_free(&s);
    }
    return NULL;
}

Test(metrics, threads_writers_race_snapshots, .timeout = 20)
{
    qt_metrics *m = qt_metrics_new(0);
    int models[2] = {qt_metrics_model_index(m, "a"), qt_metrics_model_index(m, "b")};
    int prov = qt_metrics_provider_index(m, "p");
    int wf = qt_metrics_workflow_index(m, "w");
    volatile int stop = 0;
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, MWRITERS + MREADERS);
    m_arg args[MWRITERS + MREADERS];
    pthread_t t[MWRITERS + MREADERS];
    for (int i = 0; i < MWRITERS + MREADERS; i++) {
        args[i] = (m_arg){.m = m, .bar = &bar, .id = i, .models = {models[0], models[1]},
                          .prov = prov, .wf = wf, .stop = &stop};
        pthread_create(&t[i], NULL, i < MWRITERS ? m_writer : m_reader, &args[i]);
    }
    for (int i = 0; i < MWRITERS; i++)
        pthread_join(t[i], NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = MWRITERS; i < MWRITERS + MREADERS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(args[i].bad, 0, "reader %d saw an inconsistent snapshot", i);
        cr_assert_gt(args[i].snaps, 0);
    }
    qt_metrics_snapshot s;
    cr_assert_eq(qt_metrics_snapshot_take(m, 0, &s), QT_OK);
    const uint64_t total = (uint64_t)MWRITERS * MPER;
    cr_assert_eq(s.totals.requests_total, total);
    cr_assert_eq(s.totals.requests[QT_OUTCOME_RATE_LIMITED], total / 10);
    cr_assert_eq(s.models[models[0]].requests_total + s.models[models[1]].requests_total,
                 total);
    cr_assert_eq(s.providers[prov].prompt_tokens, 3 * total);
    cr_assert_eq(s.workflows[wf].calls, total);
    cr_assert_eq(s.workflows[wf].retries, (uint64_t)MWRITERS * (MPER / 100));
    cr_assert_eq(s.n_models, 2 + MWRITERS);
    cr_assert_eq(s.models[models[0]].latency_count, total / 2);
    qt_metrics_snapshot_free(&s);
    pthread_barrier_destroy(&bar);
    qt_metrics_free(m);
}
