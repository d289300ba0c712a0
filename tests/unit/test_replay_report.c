/* test_replay_report.c: what replay prints: exact nearest-rank wait
 * percentiles per workflow and priority, where fallbacks went, the queue
 * depth over time, and the JSON of DESIGN.md "Replay" (one entry per -c in
 * order, the recording apart). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "../../src/replay/replay_report.h"

static void fill(rp_outcome *o)
{
    /* 100 support jobs waiting 1..100 ms, priority 2; 10 nightly at priority 7, 3 rejected */
    for (int i = 1; i <= 100; i++)
        rp_outcome_add(o, "support", 2, QT_STATUS_OK, "gpt-4o", i % 10 ? "gpt-4o" : "gpt-4o-mini",
                       0.01, (uint64_t)i, 0, 1000 + (uint64_t)i);
    for (int i = 0; i < 10; i++)
        rp_outcome_add(o, "nightly", 7, i < 3 ? QT_STATUS_REJECTED : QT_STATUS_OK, "gpt-4o",
                       i < 3 ? NULL : "gpt-4o", i < 3 ? 0 : 0.1, 5000, 100, 6000);
    rp_outcome_finish(o);
}

Test(replay_report, percentiles_counts_and_flows)
{
    rp_outcome o;
    rp_outcome_init(&o, "a.json");
    fill(&o);
    cr_expect_eq(o.jobs, 110);
    cr_expect_eq(o.ok, 107);
    cr_expect_eq(o.rejected, 3);
    cr_expect_float_eq(o.cost_usd, 1.0 + 0.7, 1e-9);
    cr_expect_float_eq(o.elapsed_s, 6.0, 1e-9, "the last result");
    const rp_group *s = NULL;
    for (size_t i = 0; i < o.n_wfs; i++)
        if (!strcmp(o.wfs[i].name, "support"))
            s = &o.wfs[i];
    cr_assert_not_null(s);
    cr_expect_eq(s->p50, 50);
    cr_expect_eq(s->p95, 95);
    cr_expect_eq(s->max, 100);
    cr_expect_eq(o.prio[7].jobs, 10);
    cr_expect_eq(o.prio[7].rejected, 3);
    cr_expect_eq(o.prio[7].p50, 5000);
    cr_expect_eq(o.n_flows, 1);
    cr_expect_str_eq(o.flows[0].to, "gpt-4o-mini");
    cr_expect_eq(o.flows[0].n, 10);
    cr_expect_eq(o.depth_peak, 100, "every support job and 10 nightly, but not at once: %llu",
                 (unsigned long long)o.depth_peak);
    rp_outcome_free(&o);
}

Test(replay_report, json_has_the_design_fields_one_entry_per_config)
{
    rp_outcome rec, a, b;
    rp_outcome_init(&rec, "/x/rec.json");
    rec.recorded = 1;
    rp_outcome_init(&a, "a.json");
    rp_outcome_init(&b, "b.json");
    fill(&rec);
    fill(&a);
    fill(&b);
    rp_outcome *v[] = { &rec, &a, &b };
    qt_trace_data d;
    memset(&d, 0, sizeof d);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rp_print_json(f, &d, "t.jsonl", v, 3);
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    cr_assert_not_null(j, "%s", buf);
    cJSON *cfgs = cJSON_GetObjectItem(j, "configs");
    cr_assert_eq(cJSON_GetArraySize(cfgs), 2, "one per -c; the recording apart");
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(cfgs, 0), "name")->valuestring, "a.json");
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(cfgs, 1), "name")->valuestring, "b.json");
    cr_expect_not_null(cJSON_GetObjectItem(j, "recorded"));
    cJSON *c = cJSON_GetArrayItem(cfgs, 0);
    const char *keys[] = { "name", "elapsed_s", "ok", "failed", "rejected", "upstream_429", "retries",
                           "fallbacks", "cost_usd", "workflows" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect_not_null(cJSON_GetObjectItem(c, keys[i]), "missing %s", keys[i]);
    cJSON *w = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "workflows"), "support");
    cr_assert_not_null(w);
    const char *wk[] = { "jobs", "ok", "cost_usd", "wait_p50_ms", "wait_p95_ms" };
    for (size_t i = 0; i < sizeof wk / sizeof wk[0]; i++)
        cr_expect_not_null(cJSON_GetObjectItem(w, wk[i]), "missing workflows.support.%s", wk[i]);
    cr_expect_eq(cJSON_GetObjectItem(w, "wait_p95_ms")->valueint, 95);
    cr_expect_eq(cJSON_GetObjectItem(c, "rejected")->valueint, 3);
    cJSON_Delete(j);
    free(buf);
    rp_outcome_free(&rec);
    rp_outcome_free(&a);
    rp_outcome_free(&b);
}
