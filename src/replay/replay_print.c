/* replay_print.c: the output of `quotatop replay` (replay_report.h): one
 * table with a column per outcome (the recording first, then each -c in
 * order), a sparkline per outcome of requests per minute and queue depth,
 * and the --json object of DESIGN.md "Replay" (extended with the
 * recording, priorities, fallback flows, limits and the series).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "replay_report.h"

#define LABEL_W 38
#define COL_W 20

void rp_fmt_duration(char *buf, size_t len, double ms)
{
    if (ms < 1000)
        snprintf(buf, len, "%.0fms", ms);
    else if (ms < 60000)
        snprintf(buf, len, "%.1fs", ms / 1000);
    else if (ms < 3600000)
        snprintf(buf, len, "%dm%02ds", (int)(ms / 60000), (int)(ms / 1000) % 60);
    else
        snprintf(buf, len, "%dh%02dm", (int)(ms / 3600000), (int)(ms / 60000) % 60);
}

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* One row: a label and one cell per outcome from fmt(o, cell). */
typedef void (*cell_fn)(const rp_outcome *o, const void *arg, char *cell, size_t len);

static void row(FILE *out, const char *label, rp_outcome *const *v, size_t n, cell_fn fn, const void *arg)
{
    fprintf(out, "%-*.*s", LABEL_W, LABEL_W - 1, label);
    for (size_t i = 0; i < n; i++) {
        char cell[96] = "";
        fn(v[i], arg, cell, sizeof cell);
        fprintf(out, "%-*.*s", i + 1 < n ? COL_W : 0, COL_W - 1, cell);
    }
    fputc('\n', out);
}

static void c_elapsed(const rp_outcome *o, const void *a, char *c, size_t l)
{
    (void)a;
    rp_fmt_duration(c, l, o->elapsed_s * 1000);
}

static void c_counter(const rp_outcome *o, const void *a, char *c, size_t l)
{
    size_t off = *(const size_t *)a;
    snprintf(c, l, "%llu", (unsigned long long)*(const uint64_t *)((const char *)o + off));
}

static void c_cost(const rp_outcome *o, const void *a, char *c, size_t l)
{
    (void)a;
    snprintf(c, l, "$%.4f", o->cost_usd);
}

static const rp_group *find_group(const rp_outcome *o, const char *name)
{
    for (size_t i = 0; i < o->n_wfs; i++)
        if (!strcmp(o->wfs[i].name, name))
            return &o->wfs[i];
    for (int p = 0; p <= 10; p++)
        if (!strcmp(o->prio[p].name, name))
            return &o->prio[p];
    return NULL;
}

static void c_wf_cost(const rp_outcome *o, const void *a, char *c, size_t l)
{
    const rp_group *g = find_group(o, a);
    snprintf(c, l, g ? "$%.4f" : "-", g ? g->cost_usd : 0);
}

static void c_wf_wait(const rp_outcome *o, const void *a, char *c, size_t l)
{
    const rp_group *g = find_group(o, a);
    if (!g || !g->n_waits) {
        snprintf(c, l, "-");
        return;
    }
    char p50[16], p95[16], mx[16];
    rp_fmt_duration(p50, sizeof p50, (double)g->p50);
    rp_fmt_duration(p95, sizeof p95, (double)g->p95);
    rp_fmt_duration(mx, sizeof mx, (double)g->max);
    snprintf(c, l, "%s/%s/%s", p50, p95, mx);
}

static void c_flow(const rp_outcome *o, const void *a, char *c, size_t l)
{
    const rp_flow *f = a;
    for (size_t i = 0; i < o->n_flows; i++)
        if (!strcmp(o->flows[i].from, f->from) && !strcmp(o->flows[i].to, f->to)) {
            snprintf(c, l, "%llu", (unsigned long long)o->flows[i].n);
            return;
        }
    snprintf(c, l, "-");
}

static void c_limit(const rp_outcome *o, const void *a, char *c, size_t l)
{
    const char *name = (const char *)a + 1;
    int tpm = *(const char *)a == 't';
    for (size_t i = 0; i < o->n_limits; i++) {
        const rp_limit *x = &o->limits[i];
        if (strcmp(x->name, name))
            continue;
        uint64_t peak = tpm ? x->peak_tpm : x->peak_rpm, cfg = tpm ? x->cfg_tpm : x->cfg_rpm;
        if (cfg)
            snprintf(c, l, "%llu / %llu", (unsigned long long)peak, (unsigned long long)cfg);
        else
            snprintf(c, l, "%llu", (unsigned long long)peak);
        return;
    }
    snprintf(c, l, "-");
}

/* Bars scaled to the series' own highest column. */
static void spark(FILE *out, const uint32_t *v)
{
    uint64_t peak = 0;
    for (int i = 0; i < RP_SERIES; i++)
        peak = v[i] > peak ? v[i] : peak;
    static const char *bars[] = { " ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586",
                                  "\u2587", "\u2588" };
    for (int i = 0; i < RP_SERIES; i++) {
        int b = peak ? (int)((v[i] * 8 + peak - 1) / peak) : 0;
        fputs(bars[b > 8 ? 8 : b], out);
    }
}

static void collect_names(rp_outcome *const *v, size_t n, char names[][64], size_t *nn, size_t max,
                          int prios)
{
    *nn = 0;
    for (size_t i = 0; i < n; i++) {
        size_t cnt = prios ? 11 : v[i]->n_wfs;
        for (size_t k = 0; k < cnt; k++) {
            const rp_group *g = prios ? &v[i]->prio[k] : &v[i]->wfs[k];
            if (!g->jobs)
                continue;
            size_t j = 0;
            while (j < *nn && strcmp(names[j], g->name))
                j++;
            if (j == *nn && *nn < max)
                snprintf(names[(*nn)++], 64, "%s", g->name);
        }
    }
}

void rp_print_table(FILE *out, const qt_trace_data *d, const char *trace_path, rp_outcome *const *v,
                    size_t n)
{
    char span[32], when[40] = "";
    uint64_t last = 0;
    for (size_t i = 0; i < d->n_reqs; i++)
        last = d->reqs[i].t_ms > last ? d->reqs[i].t_ms : last;
    rp_fmt_duration(span, sizeof span, (double)last);
    time_t t0 = (time_t)(d->t0_wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t0, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    fprintf(out, "replay of %s: %zu requests arriving over %s from %s; recorded with %s\n",
            trace_path, d->n_reqs, span, when, d->config_path[0] ? d->config_path : "(unnamed config)");
    fprintf(out, "%-*s", LABEL_W, "");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%-*.*s", i + 1 < n ? COL_W : 0, COL_W - 1,
                v[i]->recorded ? "recorded" : base(v[i]->name));
    fputc('\n', out);
    row(out, "elapsed (makespan)", v, n, c_elapsed, NULL);
    static const struct { const char *label; size_t off; } counters[] = {
        { "jobs ok", offsetof(rp_outcome, ok) },
        { "jobs failed", offsetof(rp_outcome, failed) },
        { "jobs rejected (budget)", offsetof(rp_outcome, rejected) },
        { "upstream requests", offsetof(rp_outcome, requests) },
        { "upstream 429s", offsetof(rp_outcome, upstream_429) },
        { "retries", offsetof(rp_outcome, retries) },
        { "fallbacks", offsetof(rp_outcome, fallbacks) },
    };
    for (size_t i = 0; i < QT_ARRAY_LEN(counters); i++)
        row(out, counters[i].label, v, n, c_counter, &counters[i].off);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < v[i]->n_flows; k++) {
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++)
                for (size_t m = 0; m < v[j]->n_flows && !seen; m++)
                    seen = !strcmp(v[j]->flows[m].from, v[i]->flows[k].from)
                           && !strcmp(v[j]->flows[m].to, v[i]->flows[k].to);
            for (size_t m = 0; m < k && !seen; m++)
                seen = !strcmp(v[i]->flows[m].from, v[i]->flows[k].from)
                       && !strcmp(v[i]->flows[m].to, v[i]->flows[k].to);
            if (seen)
                continue;
            char label[160];
            snprintf(label, sizeof label, "  answered %s -> %s", v[i]->flows[k].from, v[i]->flows[k].to);
            row(out, label, v, n, c_flow, &v[i]->flows[k]);
        }
    row(out, "spend total", v, n, c_cost, NULL);
    char names[64][64];
    size_t nn;
    collect_names(v, n, names, &nn, 64, 0);
    for (size_t k = 0; k < nn; k++) {
        char label[96];
        snprintf(label, sizeof label, "  spend %s", names[k]);
        row(out, label, v, n, c_wf_cost, names[k]);
    }
    fprintf(out, "%-*s(p50/p95/max)\n", LABEL_W, "queue wait");
    for (size_t k = 0; k < nn; k++) {
        char label[96];
        snprintf(label, sizeof label, "  %s", names[k]);
        row(out, label, v, n, c_wf_wait, names[k]);
    }
    collect_names(v, n, names, &nn, 64, 1);
    for (size_t k = 0; k < nn; k++) {
        char label[96];
        snprintf(label, sizeof label, "  %s", names[k]);
        row(out, label, v, n, c_wf_wait, names[k]);
    }
    fprintf(out, "%-*s(most sent in 60 s / the config's limit)\n", LABEL_W, "limits (upstream's)");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < v[i]->n_limits; k++) {
            const rp_limit *l = &v[i]->limits[k];
            if (strchr(l->name, '/') == NULL && !l->up_rpm && !l->up_tpm && !l->cfg_rpm && !l->cfg_tpm)
                continue;   /* a provider with no limit anywhere */
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++)
                for (size_t m = 0; m < v[j]->n_limits && !seen; m++)
                    seen = !strcmp(v[j]->limits[m].name, l->name);
            if (seen)
                continue;
            char key[150], label[200], up[32] = "none";
            for (int w = 0; w < 2; w++) {
                uint64_t ul = w ? l->up_tpm : l->up_rpm;
                if (ul)
                    snprintf(up, sizeof up, "%llu", (unsigned long long)ul);
                else
                    snprintf(up, sizeof up, "none");
                snprintf(key, sizeof key, "%c%s", w ? 't' : 'r', l->name);
                snprintf(label, sizeof label, "  %s %s (%s%s)", l->name, w ? "TPM" : "RPM", up,
                         ul && l->up_source == QT_SIM_LIMITS_HEADERS ? ", from headers"
                         : ul && l->up_source == QT_SIM_LIMITS_OVERRIDE ? ", --upstream config" : "");
                row(out, label, v, n, c_limit, key);
            }
        }
    fputc('\n', out);
    for (size_t i = 0; i < n; i++) {
        const char *nm = v[i]->recorded ? "recorded" : base(v[i]->name);
        fprintf(out, "%-20.20s RPM   |", nm);
        spark(out, v[i]->rpm);
        fprintf(out, "| most in 60 s: %llu\n", (unsigned long long)v[i]->rpm_peak);
        fprintf(out, "%-20s queue |", "");
        spark(out, v[i]->depth);
        fprintf(out, "| most queued: %llu\n", (unsigned long long)v[i]->depth_peak);
    }
}

static cJSON *group_json(const rp_group *g)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "jobs", (double)g->jobs);
    cJSON_AddNumberToObject(o, "ok", (double)g->ok);
    cJSON_AddNumberToObject(o, "failed", (double)g->failed);
    cJSON_AddNumberToObject(o, "rejected", (double)g->rejected);
    cJSON_AddNumberToObject(o, "cost_usd", g->cost_usd);
    cJSON_AddNumberToObject(o, "wait_p50_ms", (double)g->p50);
    cJSON_AddNumberToObject(o, "wait_p95_ms", (double)g->p95);
    cJSON_AddNumberToObject(o, "wait_max_ms", (double)g->max);
    return o;
}

static cJSON *series_json(const uint32_t *v)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < RP_SERIES; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *outcome_json(const rp_outcome *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", o->name);
    cJSON_AddNumberToObject(j, "elapsed_s", o->elapsed_s);
    cJSON_AddNumberToObject(j, "jobs", (double)o->jobs);
    cJSON_AddNumberToObject(j, "ok", (double)o->ok);
    cJSON_AddNumberToObject(j, "failed", (double)o->failed);
    cJSON_AddNumberToObject(j, "rejected", (double)o->rejected);
    cJSON_AddNumberToObject(j, "invalid", (double)o->invalid);
    cJSON_AddNumberToObject(j, "requests", (double)o->requests);
    cJSON_AddNumberToObject(j, "upstream_429", (double)o->upstream_429);
    cJSON_AddNumberToObject(j, "retries", (double)o->retries);
    cJSON_AddNumberToObject(j, "fallbacks", (double)o->fallbacks);
    cJSON_AddNumberToObject(j, "cost_usd", o->cost_usd);
    cJSON *w = cJSON_AddObjectToObject(j, "workflows");
    for (size_t i = 0; i < o->n_wfs; i++)
        cJSON_AddItemToObject(w, o->wfs[i].name, group_json(&o->wfs[i]));
    cJSON *p = cJSON_AddObjectToObject(j, "priorities");
    for (int i = 1; i <= 10; i++)
        if (o->prio[i].jobs) {
            char k[4];
            snprintf(k, sizeof k, "%d", i);
            cJSON_AddItemToObject(p, k, group_json(&o->prio[i]));
        }
    cJSON *f = cJSON_AddObjectToObject(j, "answered_by_fallback");
    for (size_t i = 0; i < o->n_flows; i++) {
        char k[140];
        snprintf(k, sizeof k, "%s->%s", o->flows[i].from, o->flows[i].to);
        cJSON_AddNumberToObject(f, k, (double)o->flows[i].n);
    }
    cJSON *l = cJSON_AddArrayToObject(j, "limits");
    for (size_t i = 0; i < o->n_limits; i++) {
        const rp_limit *x = &o->limits[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", x->name);
        cJSON_AddNumberToObject(e, "peak_rpm", (double)x->peak_rpm);
        cJSON_AddNumberToObject(e, "peak_tpm", (double)x->peak_tpm);
        cJSON_AddNumberToObject(e, "config_rpm", (double)x->cfg_rpm);
        cJSON_AddNumberToObject(e, "config_tpm", (double)x->cfg_tpm);
        cJSON_AddNumberToObject(e, "upstream_rpm", (double)x->up_rpm);
        cJSON_AddNumberToObject(e, "upstream_tpm", (double)x->up_tpm);
        cJSON_AddStringToObject(e, "upstream_source", x->up_source == QT_SIM_LIMITS_HEADERS ? "headers"
                                : x->up_source == QT_SIM_LIMITS_OVERRIDE ? "override" : "config");
        cJSON_AddNumberToObject(e, "upstream_429", (double)x->rate_limited);
        cJSON_AddItemToArray(l, e);
    }
    cJSON_AddItemToObject(j, "rpm_series", series_json(o->rpm));
    cJSON_AddItemToObject(j, "queue_series", series_json(o->depth));
    return j;
}

void rp_print_json(FILE *out, const qt_trace_data *d, const char *trace_path, rp_outcome *const *v,
                   size_t n)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "trace", trace_path);
    cJSON_AddNumberToObject(root, "requests", (double)d->n_reqs);
    cJSON_AddStringToObject(root, "recorded_config", d->config_path);
    cJSON *cfgs = cJSON_AddArrayToObject(root, "configs");
    for (size_t i = 0; i < n; i++) {
        if (v[i]->recorded)
            cJSON_AddItemToObject(root, "recorded", outcome_json(v[i]));
        else
            cJSON_AddItemToArray(cfgs, outcome_json(v[i]));
    }
    char *s = cJSON_Print(root);
    if (s)
        fprintf(out, "%s\n", s);
    free(s);
    cJSON_Delete(root);
}
