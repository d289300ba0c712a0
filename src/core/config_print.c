/* config_print.c: what a loaded config means, and its printout.
 *
 * DESIGN
 * config.c reads, validates and frees a qt_config; this file only reads one
 * that is already valid: the limits after limits.headroom, a workflow's
 * budget, a model's fallback chain (breadth first, each model once, "@cache"
 * reported apart; the engine walks the same chain), and the human summary of
 * all of it that `quotatop check` prints (qt_config_print_effective). Nothing
 * here reports errors: references and cycles were checked at load.
 */
#include "quotatop/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double qt_model_cost_usd(const qt_model_cfg *m, long prompt_tokens, long cached_tokens,
                         long cache_write_tokens, long completion_tokens)
{
    double p = prompt_tokens > 0 ? (double)prompt_tokens : 0;
    double r = cached_tokens > 0 ? (double)cached_tokens : 0;
    double w = cache_write_tokens > 0 ? (double)cache_write_tokens : 0;
    double c = completion_tokens > 0 ? (double)completion_tokens : 0;
    if (r > p)
        r = p;
    if (w > p - r)
        w = p - r;
    double in = m->input_usd_per_mtok > 0 ? m->input_usd_per_mtok : 0;
    double rp = m->cached_input_usd_per_mtok >= 0 ? m->cached_input_usd_per_mtok : in;
    double wp = m->cache_write_usd_per_mtok >= 0 ? m->cache_write_usd_per_mtok : in;
    double out = m->output_usd_per_mtok > 0 ? m->output_usd_per_mtok : 0;
    return ((p - r - w) * in + r * rp + w * wp + c * out) / 1e6;
}

double qt_model_worst_cost_usd(const qt_model_cfg *m, long prompt_tokens, long completion_tokens)
{
    long write = m->cache_write_usd_per_mtok > m->input_usd_per_mtok ? prompt_tokens : 0;
    return qt_model_cost_usd(m, prompt_tokens, 0, write, completion_tokens);
}

double qt_config_effective(const qt_config *cfg, double configured)
{
    return configured * cfg->limits.headroom;
}

double qt_config_workflow_budget(const qt_config *cfg, const char *workflow)
{
    for (size_t i = 0; workflow && i < cfg->budget.n_workflows; i++)
        if (!strcmp(cfg->budget.workflows[i].name, workflow))
            return cfg->budget.workflows[i].usd;
    return 0;
}

size_t qt_config_chain(const qt_config *cfg, int model_idx, int *out, size_t max,
                       int *has_cache)
{
    *has_cache = 0;
    if (model_idx < 0 || (size_t)model_idx >= cfg->n_models || max == 0)
        return 0;
    size_t n = 1, head = 0;
    out[0] = model_idx;
    while (head < n) {
        const qt_model_cfg *cur = &cfg->models[out[head++]];
        for (size_t k = 0; k < cur->n_fallback; k++) {
            if (!strcmp(cur->fallback[k], QT_CACHE_MODEL)) {
                *has_cache = 1;
                continue;
            }
            int w = qt_config_model_index(cfg, cur->fallback[k]);
            int seen = w < 0;
            for (size_t j = 0; j < n && !seen; j++)
                seen = out[j] == w;
            if (!seen && n < max)
                out[n++] = w;
        }
    }
    return n;
}

static void print_limit(FILE *out, const char *label, double configured, double eff)
{
    if (configured <= 0)
        fprintf(out, " %s unlimited", label);
    else if (eff == configured)
        fprintf(out, " %s %.0f", label, eff);
    else
        fprintf(out, " %s %.0f (of %.0f)", label, eff, configured);
}

static void print_usd(FILE *out, const char *label, double usd)
{
    if (usd <= 0)
        fprintf(out, "  %-10s unlimited\n", label);
    else
        fprintf(out, "  %-10s $%.2f\n", label, usd);
}

void qt_config_print_effective(const qt_config *cfg, FILE *out)
{
    fprintf(out, "workers %d, headroom %.2f (limits below are after headroom)\n",
            cfg->workers, cfg->limits.headroom);
    fprintf(out, "\nproviders:\n");
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const qt_provider_cfg *p = &cfg->providers[i];
        fprintf(out, "  %-14s %-9s %s\n", p->name,
                p->kind == QT_KIND_ANTHROPIC ? "anthropic" : "openai", p->base_url);
        fprintf(out, "  %-14s", "");
        print_limit(out, "rpm", p->rpm, qt_config_effective(cfg, p->rpm));
        print_limit(out, "tpm", p->tpm, qt_config_effective(cfg, p->tpm));
        if (p->max_concurrent > 0)
            fprintf(out, " concurrent %d", p->max_concurrent);
        else
            fprintf(out, " concurrent unlimited");
        fprintf(out, " timeout %dms weight %g\n", p->timeout_ms, p->weight);
        if (!p->api_key_env)
            fprintf(out, "  %-14s api key: none configured (no api_key_env)\n", "");
        else
            fprintf(out, "  %-14s api key: $%s is %s\n", "", p->api_key_env,
                    getenv(p->api_key_env) && *getenv(p->api_key_env) ? "set" : "NOT set");
    }
    fprintf(out, "\nmodels:\n");
    for (size_t i = 0; i < cfg->n_models; i++) {
        const qt_model_cfg *m = &cfg->models[i];
        fprintf(out, "  %-14s upstream %s via", m->name, m->upstream_model);
        for (size_t k = 0; k < m->n_providers; k++)
            fprintf(out, "%s %s", k ? "," : "", m->providers[k]);
        fprintf(out, "\n  %-14s", "");
        print_limit(out, "rpm", m->rpm, qt_config_effective(cfg, m->rpm));
        print_limit(out, "tpm", m->tpm, qt_config_effective(cfg, m->tpm));
        if (m->context_window > 0)
            fprintf(out, " context %ld", m->context_window);
        fprintf(out, " $%.2f/$%.2f per Mtok in/out", m->input_usd_per_mtok,
                m->output_usd_per_mtok);
        if (m->cached_input_usd_per_mtok >= 0)
            fprintf(out, ", $%.3f cached input", m->cached_input_usd_per_mtok);
        if (m->cache_write_usd_per_mtok >= 0)
            fprintf(out, ", $%.3f cache write", m->cache_write_usd_per_mtok);
        fputc('\n', out);
        int chain[64], cache = 0;
        size_t n = qt_config_chain(cfg, (int)i, chain, 64, &cache);
        fprintf(out, "  %-14s chain: %s", "", m->name);
        for (size_t k = 1; k < n; k++)
            fprintf(out, " -> %s", cfg->models[chain[k]].name);
        if (cache)
            fprintf(out, " -> @cache");
        fputc('\n', out);
    }
    fprintf(out, "\nretry: max_attempts %d, backoff %ld..%ldms full jitter, "
                 "max_retry_after %ldms, retry budget %.0f%% of requests\n",
            cfg->retry.max_attempts, cfg->retry.base_ms, cfg->retry.cap_ms,
            cfg->retry.max_retry_after_ms, cfg->retry.budget_ratio * 100);
    fprintf(out, "circuit: opens at %d failures and %.0f%% failing in %ldms, "
                 "cooldown %ld..%ldms, %d half-open probe(s)\n",
            cfg->circuit.failure_threshold, cfg->circuit.failure_ratio * 100,
            cfg->circuit.window_ms, cfg->circuit.cooldown_ms, cfg->circuit.cooldown_max_ms,
            cfg->circuit.half_open_max);
    fprintf(out, "budget (warn at %.0f%%, on exhaustion %s):\n", cfg->budget.warn_ratio * 100,
            cfg->budget.on_exhausted == QT_EXHAUSTED_DOWNGRADE ? "downgrade" : "reject");
    print_usd(out, "run", cfg->budget.run_usd);
    print_usd(out, "day", cfg->budget.day_usd);
    for (size_t i = 0; i < cfg->budget.n_workflows; i++) {
        char label[80];
        snprintf(label, sizeof label, "workflow %s", cfg->budget.workflows[i].name);
        print_usd(out, label, cfg->budget.workflows[i].usd);
    }
    fprintf(out, "queue: aging %ldms per priority level\n", cfg->queue.aging_ms);
    if (cfg->backend.kind == QT_BACKEND_REDIS)
        fprintf(out, "backend: redis %s prefix %s (limits, budgets and pauses shared by every process using it); "
                     "on_error %s (expected_processes %d), lease %ldms, timeout %ldms\n",
                cfg->backend.url, cfg->backend.prefix ? cfg->backend.prefix : "quotatop",
                cfg->backend.on_error == QT_BACKEND_ON_ERROR_CLOSED ? "closed" : "local",
                cfg->backend.expected_processes, cfg->backend.lease_ms, cfg->backend.timeout_ms);
    else
        fprintf(out, "backend: local (this process only)\n");
    if (cfg->state_dir && *cfg->state_dir)
        fprintf(out, "state_dir: %s (trace %s)\n", cfg->state_dir, cfg->trace ? "on" : "off");
    else
        fprintf(out, "state_dir: none (no ledger); no trace\n");
    fprintf(out, "proxy: listen %s, max_queue %ld, max_wait %ldms, ", cfg->proxy.listen,
            cfg->proxy.max_queue, cfg->proxy.max_wait_ms);
    if (!cfg->proxy.token_env)
        fprintf(out, "no token (loopback only)\n");
    else
        fprintf(out, "token required: $%s is %s\n", cfg->proxy.token_env,
                getenv(cfg->proxy.token_env) && *getenv(cfg->proxy.token_env) ? "set" : "NOT set");
}
