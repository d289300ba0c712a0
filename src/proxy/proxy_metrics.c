/* proxy_metrics.c: GET /metrics, the Prometheus text exposition format 0.0.4.
 *
 * Everything is read from two copies taken without holding anything while
 * formatting: the engine snapshot (limits, usage over the last 60 s,
 * circuits, queue, budget) and the metrics snapshot (attempt outcomes,
 * tokens, spend, latency buckets). Each family is written whole - HELP, TYPE,
 * then its samples - so families never interleave. Histograms turn the
 * metrics module's per-bucket counts into cumulative `le` buckets ending
 * with +Inf = _count.
 *
 * The metrics module counts per model and per provider, not per pair, so
 * quotatop_requests_total{model,provider,status} names a model's provider
 * when it has one, else its providers joined with "|";
 * quotatop_provider_requests_total{provider,status} has exact per-provider
 * counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_int.h"
#include "quotatop/clock.h"
#include "quotatop/metrics.h"

typedef struct {
    px_buf b;
    int oom;
} out_t;

static void family(out_t *o, const char *name, const char *type, const char *help)
{
    o->oom |= px_buf_addf(&o->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Appends name{k1="v1",k2="v2"} value. labels: NULL-terminated k, v pairs. */
static void sample(out_t *o, const char *name, const char *const *labels, const char *value)
{
    o->oom |= px_buf_adds(&o->b, name);
    for (size_t i = 0; labels && labels[i]; i += 2) {
        const char *v = labels[i + 1] ? labels[i + 1] : "";
        size_t need = qt_proxy_label_escape(v, NULL, 0);
        char small[256], *esc = need < sizeof small ? small : malloc(need + 1);
        if (!esc) {
            o->oom = 1;
            return;
        }
        qt_proxy_label_escape(v, esc, need + 1);
        o->oom |= px_buf_addf(&o->b, "%s%s=\"%s\"", i ? "," : "{", labels[i], esc);
        if (esc != small)
            free(esc);
    }
    o->oom |= px_buf_addf(&o->b, "%s %s\n", labels && labels[0] ? "}" : "", value);
}

static void sample_u(out_t *o, const char *name, const char *const *labels, uint64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%llu", (unsigned long long)v);
    sample(o, name, labels, s);
}

static void sample_d(out_t *o, const char *name, const char *const *labels, double v)
{
    char s[40];
    snprintf(s, sizeof s, "%.10g", v);
    sample(o, name, labels, s);
}

/* One histogram series (label k = v) from non-cumulative buckets. */
static void histogram(out_t *o, const char *name, const char *k, const char *v,
                      const qt_metrics_series *m)
{
    char bname[128], le[32];
    snprintf(bname, sizeof bname, "%s_bucket", name);
    uint64_t cum = 0;
    for (int i = 0; i < QT_METRICS_LAT_BUCKETS; i++) {
        cum += m->latency_buckets[i];
        snprintf(le, sizeof le, "%g", qt_metrics_latency_bounds_s[i]);
        const char *l[] = { k, v, "le", le, NULL };
        sample_u(o, bname, l, cum);
    }
    const char *l[] = { k, v, "le", "+Inf", NULL };
    sample_u(o, bname, l, m->latency_count);
    const char *ls[] = { k, v, NULL };
    snprintf(bname, sizeof bname, "%s_sum", name);
    sample_d(o, bname, ls, m->latency_sum_s);
    snprintf(bname, sizeof bname, "%s_count", name);
    sample_u(o, bname, ls, m->latency_count);
}

static double circuit_value(const char *s)
{
    return !strcmp(s, "OPEN") ? 1 : !strcmp(s, "HALF_OPEN") ? 2 : 0;
}

/* The limit and used families of the model rows (providers 0) or the
 * provider rows (providers 1) of a snapshot: rpm and tpm of each. */
static void limit_families(out_t *o, const qt_engine_snapshot *s, int providers,
                           const char *limit_name, const char *used_name,
                           const char *limit_help, const char *used_help)
{
    const char *who = providers ? "provider" : "model";
    family(o, limit_name, "gauge", limit_help);
    for (size_t i = 0; i < s->n_rows; i++) {
        const qt_engine_row *r = &s->rows[i];
        if (r->is_provider != providers)
            continue;
        const char *lr[] = { who, r->name, "kind", "rpm", NULL };
        const char *lt[] = { who, r->name, "kind", "tpm", NULL };
        if (r->rpm > 0)
            sample_d(o, limit_name, lr, r->rpm);
        if (r->tpm > 0)
            sample_d(o, limit_name, lt, r->tpm);
    }
    family(o, used_name, "gauge", used_help);
    for (size_t i = 0; i < s->n_rows; i++) {
        const qt_engine_row *r = &s->rows[i];
        if (r->is_provider != providers)
            continue;
        const char *lr[] = { who, r->name, "kind", "rpm", NULL };
        const char *lt[] = { who, r->name, "kind", "tpm", NULL };
        sample_u(o, used_name, lr, r->requests_60s);
        sample_u(o, used_name, lt, r->tokens_60s);
    }
}

/* Upstream attempts by model, provider and outcome; retries, fallbacks, cache hits, circuit changes. */
static void attempts_section(out_t *o, const qt_metrics_snapshot *ms_, const qt_config *cfg)
{
    family(o, "quotatop_requests_total", "counter",
           "Upstream requests (attempts) by model, its provider(s) and outcome.");
    for (size_t i = 0; i < ms_->n_models; i++) {
        const qt_metrics_series *m = &ms_->models[i];
        /* Metrics model i is config model i (the engine registers them so). */
        px_buf prov = { 0 };
        const qt_model_cfg *mc = cfg && i < cfg->n_models ? &cfg->models[i] : NULL;
        for (size_t k = 0; mc && k < mc->n_providers; k++)
            o->oom |= px_buf_addf(&prov, "%s%s", k ? "|" : "", mc->providers[k]);
        for (int oc = 0; oc < QT_OUTCOME__COUNT; oc++) {
            const char *l[] = { "model", m->name, "provider", prov.s ? prov.s : "", "status",
                                qt_outcome_name((qt_outcome)oc), NULL };
            sample_u(o, "quotatop_requests_total", l, m->requests[oc]);
        }
        px_buf_free(&prov);
    }
    family(o, "quotatop_provider_requests_total", "counter",
           "Upstream requests (attempts) by provider and outcome.");
    for (size_t i = 0; i < ms_->n_providers; i++)
        for (int oc = 0; oc < QT_OUTCOME__COUNT; oc++) {
            const char *l[] = { "provider", ms_->providers[i].name, "status",
                                qt_outcome_name((qt_outcome)oc), NULL };
            sample_u(o, "quotatop_provider_requests_total", l, ms_->providers[i].requests[oc]);
        }
    family(o, "quotatop_upstream_429_total", "counter",
           "Upstream answers that were 429 (or 529 overloaded).");
    sample_u(o, "quotatop_upstream_429_total", NULL, ms_->totals.requests[QT_OUTCOME_RATE_LIMITED]);
    family(o, "quotatop_retries_total", "counter", "Retries after a retryable upstream failure.");
    sample_u(o, "quotatop_retries_total", NULL, ms_->totals.retries);
    family(o, "quotatop_fallbacks_total", "counter", "Moves down a model's fallback chain.");
    sample_u(o, "quotatop_fallbacks_total", NULL, ms_->totals.fallbacks);
    family(o, "quotatop_cache_hits_total", "counter", "Jobs answered from the response cache (@cache).");
    sample_u(o, "quotatop_cache_hits_total", NULL, ms_->totals.counters[QT_COUNTER_CACHE_HITS]);
    family(o, "quotatop_circuit_transitions_total", "counter", "Circuit breaker state changes.");
    sample_u(o, "quotatop_circuit_transitions_total", NULL,
             ms_->totals.counters[QT_COUNTER_CIRCUIT_TRANSITIONS]);
}

/* Finished jobs by workflow and status; queue, in flight, workers. */
static void jobs_section(out_t *o, const qt_engine_snapshot *s_, const qt_metrics_snapshot *ms_)
{
    family(o, "quotatop_jobs_total", "counter", "Finished jobs (requests) by workflow and final status.");
    for (size_t i = 0; i < ms_->n_workflows; i++)
        for (int js = 0; js < QT_JOB__COUNT; js++) {
            const char *l[] = { "workflow", ms_->workflows[i].name, "status",
                                qt_job_status_name((qt_job_status)js), NULL };
            sample_u(o, "quotatop_jobs_total", l, ms_->workflows[i].jobs[js]);
        }
    family(o, "quotatop_queue_depth", "gauge", "Jobs waiting in the queue (not yet taken by a worker).");
    sample_u(o, "quotatop_queue_depth", NULL, s_->queued);
    family(o, "quotatop_jobs_waiting", "gauge",
           "Jobs taken from the queue and not on the wire: waiting on a limit, a backoff or a circuit probe.");
    sample_u(o, "quotatop_jobs_waiting", NULL, s_->waiting);
    family(o, "quotatop_in_flight", "gauge", "Upstream requests on the wire now.");
    int in_flight = 0;
    for (size_t i = 0; i < s_->n_rows; i++)
        if (s_->rows[i].is_provider)
            in_flight += s_->rows[i].in_flight;
    sample_u(o, "quotatop_in_flight", NULL, (uint64_t)in_flight);
    family(o, "quotatop_workers_busy", "gauge", "Requests on the wire, counted against workers.");
    sample_u(o, "quotatop_workers_busy", NULL, (uint64_t)s_->busy);
    family(o, "quotatop_workers", "gauge", "The most requests in flight at once (workers).");
    sample_u(o, "quotatop_workers", NULL, (uint64_t)s_->workers);
    family(o, "quotatop_paused", "gauge", "1 while dispatch is paused.");
    sample_u(o, "quotatop_paused", NULL, (uint64_t)s_->paused);
}

/* Circuit states, limits and usage of models and providers. */
static void circuits_section(out_t *o, const qt_engine_snapshot *s_)
{
    family(o, "quotatop_circuit_state", "gauge",
           "Circuit breaker state per provider: 0 closed, 1 open, 2 half-open.");
    for (size_t i = 0; i < s_->n_rows; i++)
        if (s_->rows[i].is_provider) {
            const char *l[] = { "provider", s_->rows[i].name, NULL };
            sample_d(o, "quotatop_circuit_state", l, circuit_value(s_->rows[i].circuit));
        }
    family(o, "quotatop_model_circuit_state", "gauge",
           "Circuit breaker state per model: 0 closed, 1 open, 2 half-open.");
    for (size_t i = 0; i < s_->n_rows; i++)
        if (!s_->rows[i].is_provider) {
            const char *l[] = { "model", s_->rows[i].name, NULL };
            sample_d(o, "quotatop_model_circuit_state", l, circuit_value(s_->rows[i].circuit));
        }
    limit_families(o, s_, 0, "quotatop_limit", "quotatop_used",
                   "Effective per-minute limit of a model (after headroom and live changes); "
                   "kind rpm or tpm; unlimited ones are not listed.",
                   "Requests (kind rpm) and tokens (kind tpm) a model used over the last 60 seconds.");
    limit_families(o, s_, 1, "quotatop_provider_limit", "quotatop_provider_used",
                   "Effective per-minute limit of a provider; kind rpm or tpm; unlimited ones are not listed.",
                   "Requests (kind rpm) and tokens (kind tpm) a provider used over the last 60 seconds.");
}

/* Tokens, spend and budgets. */
static void spend_section(out_t *o, const qt_engine_snapshot *s_, const qt_metrics_snapshot *ms_)
{
    family(o, "quotatop_tokens_total", "counter", "Tokens by model; kind prompt or completion.");
    for (size_t i = 0; i < ms_->n_models; i++) {
        const char *lp[] = { "model", ms_->models[i].name, "kind", "prompt", NULL };
        const char *lc[] = { "model", ms_->models[i].name, "kind", "completion", NULL };
        sample_u(o, "quotatop_tokens_total", lp, ms_->models[i].prompt_tokens);
        sample_u(o, "quotatop_tokens_total", lc, ms_->models[i].completion_tokens);
    }
    family(o, "quotatop_prompt_cache_tokens_total", "counter",
           "Prompt tokens the provider's prompt cache served (kind read: OpenAI cached_tokens, "
           "Anthropic cache_read_input_tokens) or stored (kind write: Anthropic "
           "cache_creation_input_tokens), by model; parts of quotatop_tokens_total kind prompt.");
    for (size_t i = 0; i < ms_->n_models; i++) {
        const char *lr[] = { "model", ms_->models[i].name, "kind", "read", NULL };
        const char *lw[] = { "model", ms_->models[i].name, "kind", "write", NULL };
        sample_u(o, "quotatop_prompt_cache_tokens_total", lr, ms_->models[i].cached_tokens);
        sample_u(o, "quotatop_prompt_cache_tokens_total", lw, ms_->models[i].cache_write_tokens);
    }
    family(o, "quotatop_spend_usd_total", "counter", "Spend in US dollars by workflow.");
    for (size_t i = 0; i < ms_->n_workflows; i++) {
        const char *l[] = { "workflow", ms_->workflows[i].name, NULL };
        sample_d(o, "quotatop_spend_usd_total", l, ms_->workflows[i].cost_usd);
    }
    family(o, "quotatop_model_spend_usd_total", "counter", "Spend in US dollars by model.");
    for (size_t i = 0; i < ms_->n_models; i++) {
        const char *l[] = { "model", ms_->models[i].name, NULL };
        sample_d(o, "quotatop_model_spend_usd_total", l, ms_->models[i].cost_usd);
    }
    family(o, "quotatop_budget_spent_usd", "gauge", "Spend counted against a budget; scope run or day.");
    {
        const char *lr[] = { "scope", "run", NULL };
        const char *ld[] = { "scope", "day", NULL };
        sample_d(o, "quotatop_budget_spent_usd", lr, s_->run_spent_usd);
        sample_d(o, "quotatop_budget_spent_usd", ld, s_->day_spent_usd);
        family(o, "quotatop_budget_limit_usd", "gauge",
               "A budget's limit in US dollars; scope run or day; unlimited ones are not listed.");
        if (s_->run_limit_usd > 0)
            sample_d(o, "quotatop_budget_limit_usd", lr, s_->run_limit_usd);
        if (s_->day_limit_usd > 0)
            sample_d(o, "quotatop_budget_limit_usd", ld, s_->day_limit_usd);
    }
    if (s_->fleet_state) {   /* backend.kind "redis": the fleet beside this process */
        family(o, "quotatop_fleet_backend_state", "gauge",
               "Shared backend: 1 shared through Redis, 2 Redis down (this process's share), 3 Redis down (closed).");
        sample_u(o, "quotatop_fleet_backend_state", NULL, (uint64_t)s_->fleet_state);
        family(o, "quotatop_fleet_share_divisor", "gauge", "Each limit is divided by this while Redis is down.");
        sample_u(o, "quotatop_fleet_share_divisor", NULL, (uint64_t)s_->fleet_divisor);
        family(o, "quotatop_fleet_processes", "gauge", "Processes sharing the quota (this one included).");
        sample_u(o, "quotatop_fleet_processes", NULL, (uint64_t)s_->fleet_procs);
        family(o, "quotatop_fleet_in_flight", "gauge", "Requests in flight over the fleet.");
        sample_u(o, "quotatop_fleet_in_flight", NULL, (uint64_t)s_->fleet_in_flight);
        family(o, "quotatop_fleet_requests_60s", "gauge", "Requests admitted by the fleet in about the last minute (model keys).");
        sample_u(o, "quotatop_fleet_requests_60s", NULL, s_->fleet_requests_60s);
        family(o, "quotatop_fleet_tokens_60s", "gauge", "Tokens charged by the fleet in about the last minute (model keys).");
        sample_u(o, "quotatop_fleet_tokens_60s", NULL, s_->fleet_tokens_60s);
        family(o, "quotatop_fleet_day_spent_usd", "gauge", "Spend of the fleet today (UTC day of Redis's clock).");
        sample_d(o, "quotatop_fleet_day_spent_usd", NULL, s_->fleet_day_spent_usd);
    }
    family(o, "quotatop_budget_rejections_total", "counter", "Jobs the budget refused.");
    sample_u(o, "quotatop_budget_rejections_total", NULL,
             ms_->totals.counters[QT_COUNTER_BUDGET_REJECTIONS]);
}

/* Latency histograms by model and provider. */
static void latency_section(out_t *o, const qt_metrics_snapshot *ms_)
{
    family(o, "quotatop_request_duration_seconds", "histogram",
           "Latency of upstream requests (attempts) by model.");
    for (size_t i = 0; i < ms_->n_models; i++)
        histogram(o, "quotatop_request_duration_seconds", "model", ms_->models[i].name, &ms_->models[i]);
    family(o, "quotatop_provider_request_duration_seconds", "histogram",
           "Latency of upstream requests (attempts) by provider.");
    for (size_t i = 0; i < ms_->n_providers; i++)
        histogram(o, "quotatop_provider_request_duration_seconds", "provider", ms_->providers[i].name,
                  &ms_->providers[i]);
}

/* The HTTP front: statuses, 429s, disconnects, cuts, connections, streams. */
static void front_section(out_t *o, const qt_proxy_stats *ps)
{
    family(o, "quotatop_http_responses_total", "counter", "Answers of the proxy by HTTP status code.");
    for (int code = 100; code < 600; code++)
        if (ps->responses[code]) {
            char cs[12];
            snprintf(cs, sizeof cs, "%d", code);
            const char *l[] = { "code", cs, NULL };
            sample_u(o, "quotatop_http_responses_total", l, ps->responses[code]);
        }
    family(o, "quotatop_proxy_requests_total", "counter",
           "Requests received on the API paths, by endpoint (chat, messages, responses, embeddings).");
    for (int ep = 0; ep < QT_ENDPOINT_COUNT; ep++) {
        const char *l[] = { "endpoint", qt_endpoint_name((qt_endpoint)ep), NULL };
        sample_u(o, "quotatop_proxy_requests_total", l, ps->by_endpoint[ep]);
    }
    family(o, "quotatop_proxy_rejections_total", "counter",
           "Requests refused with 429 by backpressure; reason queue_full or wait.");
    const char *lq[] = { "reason", "queue_full", NULL };
    const char *lw[] = { "reason", "wait", NULL };
    sample_u(o, "quotatop_proxy_rejections_total", lq, ps->rejected_queue_full);
    sample_u(o, "quotatop_proxy_rejections_total", lw, ps->rejected_wait);
    family(o, "quotatop_proxy_disconnects_total", "counter",
           "Clients that hung up before their answer was complete; when queued or streaming.");
    const char *dq[] = { "when", "queued", NULL };
    const char *ds[] = { "when", "streaming", NULL };
    sample_u(o, "quotatop_proxy_disconnects_total", dq, ps->gone_queued);
    sample_u(o, "quotatop_proxy_disconnects_total", ds, ps->gone_streaming);
    family(o, "quotatop_proxy_slow_clients_cut_total", "counter",
           "Connections cut because headers, body or the next request exceeded its total "
           "time budget; phase headers, body or idle.");
    const char *ch[] = { "phase", "headers", NULL };
    const char *cb[] = { "phase", "body", NULL };
    const char *ci[] = { "phase", "idle", NULL };
    sample_u(o, "quotatop_proxy_slow_clients_cut_total", ch, ps->cut_headers);
    sample_u(o, "quotatop_proxy_slow_clients_cut_total", cb, ps->cut_body);
    sample_u(o, "quotatop_proxy_slow_clients_cut_total", ci, ps->cut_idle);
    family(o, "quotatop_http_connections", "gauge", "Client connections open now.");
    sample_u(o, "quotatop_http_connections", NULL, (uint64_t)(ps->connections > 0 ? ps->connections : 0));
    family(o, "quotatop_http_streams", "gauge", "Event streams being sent now.");
    sample_u(o, "quotatop_http_streams", NULL, (uint64_t)(ps->streams > 0 ? ps->streams : 0));
}

char *qt_proxy_metrics_text(qt_engine *e, const qt_config *cfg, const qt_proxy_stats *ps)
{
    qt_engine_snapshot s;
    if (qt_engine_snapshot_take(e, &s) != QT_OK)
        return NULL;
    qt_metrics_snapshot ms;
    if (qt_metrics_snapshot_take(qt_engine_metrics(e), qt_now_ms(), &ms) != QT_OK) {
        qt_engine_snapshot_free(&s);
        return NULL;
    }
    out_t o = { { 0 }, 0 };

    family(&o, "quotatop_uptime_seconds", "gauge", "Seconds since quotatop started.");
    sample_d(&o, "quotatop_uptime_seconds", NULL, (double)s.uptime_ms / 1000.0);

    attempts_section(&o, &ms, cfg);
    jobs_section(&o, &s, &ms);
    circuits_section(&o, &s);
    spend_section(&o, &s, &ms);
    latency_section(&o, &ms);
    if (ps)
        front_section(&o, ps);

    qt_metrics_snapshot_free(&ms);
    qt_engine_snapshot_free(&s);
    if (o.oom) {
        px_buf_free(&o.b);
        return NULL;
    }
    return o.b.s ? o.b.s : strdup("");
}
