/* config.c: load and validate the JSON config of DESIGN.md.
 *
 * DESIGN
 * The text is parsed with cJSON_ParseWithLengthOpts (never the global
 * cJSON_GetErrorPtr), so a syntax error is reported with its line and column.
 * The tree is then walked section by section by small readers (get_num,
 * get_str, ...) that know the JSON path of what they read and append errors
 * ("models.gpt-4o.rpm: must be a number >= 0") to a qt_diag. Unknown keys
 * are warnings with the closest known name suggested. Walking continues after
 * an error so the user sees every problem at once. Cross references
 * (providers of a model, fallback names, cycles) are checked after all
 * sections are read. Only a config without errors is returned.
 *
 * The readers and the diagnostics list live in config_read.c.
 * config_print.c reads a loaded config (effective limits, workflow budgets,
 * fallback chains) and prints its effective form for `quotatop check`.
 */
#include "quotatop/config.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "config_int.h"

/* ------------------------------------------------------------ validation */

/* Checks that url looks like http(s)://host[:port][/path]. */
static int url_ok(const char *url)
{
    const char *p;
    if (!strncmp(url, "http://", 7))
        p = url + 7;
    else if (!strncmp(url, "https://", 8))
        p = url + 8;
    else
        return 0;
    size_t host = strcspn(p, ":/?#");
    if (host == 0)
        return 0;
    for (size_t i = 0; i < host; i++)
        if (!isalnum((unsigned char)p[i]) && !strchr(".-_[]", p[i]))
            return 0;
    p += host;
    if (*p == ':') {
        p++;
        size_t digits = strspn(p, "0123456789");
        if (digits == 0 || digits > 5 || atol(p) > 65535)
            return 0;
        p += digits;
    }
    for (; *p; p++)
        if (isspace((unsigned char)*p) || !isprint((unsigned char)*p))
            return 0;
    return 1;
}

/* Checks HOST:PORT with a numeric port. */
static int listen_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return *end == '\0' && colon[1] && port >= 0 && port <= 65535;
}

static const char *provider_keys[] = {
    "kind", "base_url", "api_key_env", "rpm", "tpm", "max_concurrent", "timeout_ms", "weight",
};
static const char *model_keys[] = {
    "providers", "upstream_model", "rpm", "tpm", "input_usd_per_mtok", "output_usd_per_mtok",
    "cached_input_usd_per_mtok", "cache_write_usd_per_mtok", "context_window", "fallback", "default_max_tokens",
};
static const char *top_keys[] = {
    "workers", "providers", "models", "limits", "retry", "circuit", "budget", "queue",
    "backend", "state_dir", "proxy", "trace",
};

static void read_provider(qt_diag *d, const cJSON *j, qt_provider_cfg *p)
{
    char path[320];
    snprintf(path, sizeof path, "providers.%s", j->string);
    p->name = strdup(j->string);
    p->timeout_ms = 60000;
    p->weight = 1;
    if (!cJSON_IsObject(j)) {
        cfg_err(d, "%s: must be an object", path);
        return;
    }
    cfg_check_keys(d, j, path, provider_keys, QT_ARRAY_LEN(provider_keys));

    char *kind = NULL;
    cfg_get_str(d, j, path, "kind", &kind);
    if (!kind) {
        if (!cJSON_GetObjectItemCaseSensitive(j, "kind"))
            cfg_err(d, "%s.kind: missing (\"openai\" or \"anthropic\")", path);
    } else if (!strcmp(kind, "openai")) {
        p->kind = QT_KIND_OPENAI;
    } else if (!strcmp(kind, "anthropic")) {
        p->kind = QT_KIND_ANTHROPIC;
    } else {
        static const char *kinds[] = { "openai", "anthropic" };
        char h[96];
        cfg_err(d, "%s.kind: unknown provider kind \"%s\" (known: openai, anthropic)%s", path, kind,
            cfg_hint(h, sizeof h, kind, kinds, 2));
    }
    free(kind);

    cfg_get_str(d, j, path, "base_url", &p->base_url);
    if (!p->base_url) {
        if (!cJSON_GetObjectItemCaseSensitive(j, "base_url"))
            p->base_url = strdup(p->kind == QT_KIND_ANTHROPIC ? "https://api.anthropic.com/v1"
                                                              : "https://api.openai.com/v1");
    } else if (!url_ok(p->base_url)) {
        cfg_err(d, "%s.base_url: \"%s\" is not a well-formed http:// or https:// URL", path, p->base_url);
    } else {
        size_t n = strlen(p->base_url);
        while (n > 0 && p->base_url[n - 1] == '/')
            p->base_url[--n] = '\0';
    }
    cfg_get_str(d, j, path, "api_key_env", &p->api_key_env);
    cfg_get_num(d, j, path, "rpm", 0, 1e9, &p->rpm);
    cfg_get_num(d, j, path, "tpm", 0, 1e12, &p->tpm);
    cfg_get_int(d, j, path, "max_concurrent", 0, 100000, &p->max_concurrent);
    cfg_get_int(d, j, path, "timeout_ms", 1, 3600000, &p->timeout_ms);
    cfg_get_num(d, j, path, "weight", 0, 1e6, &p->weight);
}

static void read_model(qt_diag *d, const cJSON *j, qt_model_cfg *m)
{
    char path[320];
    snprintf(path, sizeof path, "models.%s", j->string);
    m->name = strdup(j->string);
    m->default_max_tokens = 1024;
    if (!cJSON_IsObject(j)) {
        cfg_err(d, "%s: must be an object", path);
        return;
    }
    cfg_check_keys(d, j, path, model_keys, QT_ARRAY_LEN(model_keys));
    m->providers = cfg_get_str_array(d, j, path, "providers", &m->n_providers);
    if (m->n_providers == 0 && !cJSON_GetObjectItemCaseSensitive(j, "providers"))
        cfg_err(d, "%s.providers: missing (a list of provider names)", path);
    else if (m->n_providers == 0)
        cfg_err(d, "%s.providers: must name at least one provider", path);
    cfg_get_str(d, j, path, "upstream_model", &m->upstream_model);
    if (!m->upstream_model)
        m->upstream_model = strdup(m->name);
    cfg_get_num(d, j, path, "rpm", 0, 1e9, &m->rpm);
    cfg_get_num(d, j, path, "tpm", 0, 1e12, &m->tpm);
    cfg_get_num(d, j, path, "input_usd_per_mtok", 0, 1e6, &m->input_usd_per_mtok);
    cfg_get_num(d, j, path, "output_usd_per_mtok", 0, 1e6, &m->output_usd_per_mtok);
    m->cached_input_usd_per_mtok = m->cache_write_usd_per_mtok = -1;
    cfg_get_num(d, j, path, "cached_input_usd_per_mtok", 0, 1e6, &m->cached_input_usd_per_mtok);
    cfg_get_num(d, j, path, "cache_write_usd_per_mtok", 0, 1e6, &m->cache_write_usd_per_mtok);
    cfg_get_long(d, j, path, "context_window", 0, 100000000, &m->context_window);
    cfg_get_int(d, j, path, "default_max_tokens", 1, 10000000, &m->default_max_tokens);
    m->fallback = cfg_get_str_array(d, j, path, "fallback", &m->n_fallback);
}

/* Resolves references and looks for fallback cycles. */
static void check_references(qt_diag *d, qt_config *cfg)
{
    const char **pnames = calloc(cfg->n_providers + 1, sizeof *pnames);
    const char **mnames = calloc(cfg->n_models + 2, sizeof *mnames);
    if (!pnames || !mnames) {
        free(pnames);
        free(mnames);
        return;
    }
    for (size_t i = 0; i < cfg->n_providers; i++)
        pnames[i] = cfg->providers[i].name;
    for (size_t i = 0; i < cfg->n_models; i++)
        mnames[i] = cfg->models[i].name;
    mnames[cfg->n_models] = QT_CACHE_MODEL;

    char h[96];
    for (size_t i = 0; i < cfg->n_models; i++) {
        qt_model_cfg *m = &cfg->models[i];
        m->provider_idx = calloc(m->n_providers + 1, sizeof *m->provider_idx);
        for (size_t k = 0; k < m->n_providers; k++) {
            int idx = qt_config_provider_index(cfg, m->providers[k]);
            if (m->provider_idx)
                m->provider_idx[k] = idx;
            if (idx < 0)
                cfg_err(d, "models.%s.providers[%zu]: unknown provider \"%s\"%s", m->name, k,
                    m->providers[k], cfg_hint(h, sizeof h, m->providers[k], pnames, cfg->n_providers));
        }
        for (size_t k = 0; k < m->n_fallback; k++) {
            const char *f = m->fallback[k];
            if (!strcmp(f, QT_CACHE_MODEL)) {
                if (k + 1 != m->n_fallback)
                    cfg_warn(d, "models.%s.fallback[%zu]: \"@cache\" is only consulted at the end of "
                            "the chain", m->name, k);
                continue;
            }
            if (!strcmp(f, m->name))
                cfg_err(d, "models.%s.fallback[%zu]: a model cannot fall back to itself", m->name, k);
            else if (qt_config_model_index(cfg, f) < 0)
                cfg_err(d, "models.%s.fallback[%zu]: unknown model \"%s\"%s", m->name, k, f,
                    cfg_hint(h, sizeof h, f, mnames, cfg->n_models + 1));
        }
    }

    /* Cycle detection over the fallback graph: iterative DFS with colours
     * (0 unvisited, 1 on the stack, 2 done). A cycle would make a chain's
     * expansion loop forever, so each is an error naming its path. */
    int *colour = calloc(cfg->n_models + 1, sizeof *colour);
    size_t *stack = calloc(cfg->n_models + 1, sizeof *stack);
    size_t *next = calloc(cfg->n_models + 1, sizeof *next);
    for (size_t s = 0; colour && stack && next && s < cfg->n_models; s++) {
        if (colour[s])
            continue;
        size_t top = 0;
        stack[top] = s;
        next[top] = 0;
        colour[s] = 1;
        while (1) {
            size_t v = stack[top];
            const qt_model_cfg *m = &cfg->models[v];
            if (next[top] < m->n_fallback) {
                int w = qt_config_model_index(cfg, m->fallback[next[top]++]);
                if (w < 0 || (size_t)w == v)
                    continue;
                if (colour[w] == 1) {
                    char cyc[1024] = "";
                    size_t at = 0;
                    while (stack[at] != (size_t)w)
                        at++;
                    for (size_t k = at; k <= top; k++) {
                        strncat(cyc, cfg->models[stack[k]].name, sizeof cyc - strlen(cyc) - 1);
                        strncat(cyc, " -> ", sizeof cyc - strlen(cyc) - 1);
                    }
                    strncat(cyc, cfg->models[w].name, sizeof cyc - strlen(cyc) - 1);
                    cfg_err(d, "models.%s.fallback: fallback cycle %s", m->name, cyc);
                } else if (colour[w] == 0) {
                    colour[w] = 1;
                    stack[++top] = (size_t)w;
                    next[top] = 0;
                }
            } else {
                colour[v] = 2;
                if (top == 0)
                    break;
                top--;
            }
        }
    }
    free(colour);
    free(stack);
    free(next);
    free(pnames);
    free(mnames);
}

static char *expand_home(const char *p)
{
    if (p[0] != '~' || (p[1] && p[1] != '/'))
        return strdup(p);
    const char *home = getenv("HOME");
    char *out = NULL;
    if (asprintf(&out, "%s%s", home ? home : "", p + 1) < 0)
        return NULL;
    return out;
}

/* The default state directory: $XDG_STATE_HOME/quotatop when that is set,
 * else ~/.local/state/quotatop (the rule of qt_ledger_default_dir, kept here
 * too so config does not depend on the ledger). */
static char *default_state_dir(void)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    char *out = NULL;
    if (!xdg || !*xdg)
        return expand_home("~/.local/state/quotatop");
    if (asprintf(&out, "%s/quotatop", xdg) < 0)
        return NULL;
    return out;
}

static void set_defaults(qt_config *c)
{
    c->workers = QT_DEFAULT_WORKERS;
    c->limits.headroom = 1.0;
    c->limits.burst_ms = 0;
    c->retry.max_attempts = 5;
    c->retry.base_ms = 1000;
    c->retry.cap_ms = 60000;
    c->retry.max_retry_after_ms = 120000;
    c->retry.budget_ratio = 0.5;
    c->circuit.failure_threshold = 5;
    c->circuit.failure_ratio = 0.5;
    c->circuit.window_ms = 10000;
    c->circuit.cooldown_ms = 30000;
    c->circuit.cooldown_max_ms = 300000;
    c->circuit.half_open_max = 1;
    c->budget.warn_ratio = 0.8;
    c->budget.on_exhausted = QT_EXHAUSTED_REJECT;
    c->queue.aging_ms = 30000;
    c->backend.kind = QT_BACKEND_LOCAL;
    c->backend.on_error = QT_BACKEND_ON_ERROR_LOCAL;
    c->backend.expected_processes = 1;
    c->backend.lease_ms = 10000;
    c->backend.timeout_ms = 500;
    c->proxy.listen = strdup("127.0.0.1:8787");
    c->proxy.max_queue = 1000;
    c->proxy.max_wait_ms = 30000;
    c->proxy.max_body_bytes = 1 << 20;
    c->proxy.default_workflow = strdup("default");
    c->proxy.default_priority = 5;
}

static void read_sections(qt_diag *d, const cJSON *root, qt_config *c)
{
    cfg_check_keys(d, root, "", top_keys, QT_ARRAY_LEN(top_keys));
    cfg_get_int(d, root, "", "workers", 1, QT_MAX_WORKERS, &c->workers);

    const cJSON *s = cfg_get_obj(d, root, "", "providers");
    if (!s) {
        if (!cJSON_GetObjectItemCaseSensitive(root, "providers"))
            cfg_err(d, "providers: missing (at least one provider is needed)");
    } else {
        c->n_providers = (size_t)cJSON_GetArraySize(s);
        c->providers = calloc(c->n_providers + 1, sizeof *c->providers);
        size_t i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, s) read_provider(d, it, &c->providers[i++]);
        if (c->n_providers == 0)
            cfg_err(d, "providers: at least one provider is needed");
    }

    s = cfg_get_obj(d, root, "", "models");
    if (!s) {
        if (!cJSON_GetObjectItemCaseSensitive(root, "models"))
            cfg_err(d, "models: missing (at least one model is needed)");
    } else {
        c->n_models = (size_t)cJSON_GetArraySize(s);
        c->models = calloc(c->n_models + 1, sizeof *c->models);
        size_t i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, s) read_model(d, it, &c->models[i++]);
        if (c->n_models == 0)
            cfg_err(d, "models: at least one model is needed");
    }

    if ((s = cfg_get_obj(d, root, "", "limits"))) {
        static const char *k[] = { "headroom", "burst_ms" };
        cfg_check_keys(d, s, "limits", k, QT_ARRAY_LEN(k));
        cfg_get_num(d, s, "limits", "headroom", 0.01, 1.0, &c->limits.headroom);
        cfg_get_num(d, s, "limits", "burst_ms", 0, 60000, &c->limits.burst_ms);
    }
    if ((s = cfg_get_obj(d, root, "", "retry"))) {
        static const char *k[] = { "max_attempts", "base_ms", "cap_ms", "max_retry_after_ms",
                                   "budget_ratio" };
        cfg_check_keys(d, s, "retry", k, QT_ARRAY_LEN(k));
        cfg_get_int(d, s, "retry", "max_attempts", 1, 100, &c->retry.max_attempts);
        cfg_get_long(d, s, "retry", "base_ms", 0, 3600000, &c->retry.base_ms);
        cfg_get_long(d, s, "retry", "cap_ms", 0, 86400000, &c->retry.cap_ms);
        cfg_get_long(d, s, "retry", "max_retry_after_ms", 0, 86400000, &c->retry.max_retry_after_ms);
        cfg_get_num(d, s, "retry", "budget_ratio", 0, 10, &c->retry.budget_ratio);
        if (c->retry.cap_ms < c->retry.base_ms)
            cfg_err(d, "retry.cap_ms: %ld is below retry.base_ms %ld", c->retry.cap_ms, c->retry.base_ms);
    }
    if ((s = cfg_get_obj(d, root, "", "circuit"))) {
        static const char *k[] = { "failure_threshold", "failure_ratio", "window_ms",
                                   "cooldown_ms", "cooldown_max_ms", "half_open_max" };
        cfg_check_keys(d, s, "circuit", k, QT_ARRAY_LEN(k));
        cfg_get_int(d, s, "circuit", "failure_threshold", 1, 1000000, &c->circuit.failure_threshold);
        cfg_get_num(d, s, "circuit", "failure_ratio", 0, 1, &c->circuit.failure_ratio);
        cfg_get_long(d, s, "circuit", "window_ms", 100, 86400000, &c->circuit.window_ms);
        cfg_get_long(d, s, "circuit", "cooldown_ms", 0, 86400000, &c->circuit.cooldown_ms);
        if (!cJSON_GetObjectItemCaseSensitive(s, "cooldown_max_ms")
            && c->circuit.cooldown_ms * 8 > c->circuit.cooldown_max_ms)
            c->circuit.cooldown_max_ms = c->circuit.cooldown_ms * 8;
        cfg_get_long(d, s, "circuit", "cooldown_max_ms", 0, 86400000, &c->circuit.cooldown_max_ms);
        cfg_get_int(d, s, "circuit", "half_open_max", 1, 1000, &c->circuit.half_open_max);
        if (c->circuit.cooldown_max_ms < c->circuit.cooldown_ms)
            cfg_err(d, "circuit.cooldown_max_ms: %ld is below circuit.cooldown_ms %ld",
                c->circuit.cooldown_max_ms, c->circuit.cooldown_ms);
    }
    if ((s = cfg_get_obj(d, root, "", "budget"))) {
        static const char *k[] = { "run_usd", "day_usd", "warn_ratio", "workflows", "on_exhausted" };
        cfg_check_keys(d, s, "budget", k, QT_ARRAY_LEN(k));
        cfg_get_num(d, s, "budget", "run_usd", 0, 1e9, &c->budget.run_usd);
        cfg_get_num(d, s, "budget", "day_usd", 0, 1e9, &c->budget.day_usd);
        cfg_get_num(d, s, "budget", "warn_ratio", 0, 1, &c->budget.warn_ratio);
        const cJSON *w = cfg_get_obj(d, s, "budget", "workflows");
        if (w) {
            c->budget.workflows = calloc((size_t)cJSON_GetArraySize(w) + 1,
                                         sizeof *c->budget.workflows);
            const cJSON *it;
            cJSON_ArrayForEach(it, w) {
                if (!cJSON_IsNumber(it) || it->valuedouble < 0) {
                    cfg_err(d, "budget.workflows.%s: must be a number >= 0 (USD)", it->string);
                    continue;
                }
                qt_workflow_budget *wb = &c->budget.workflows[c->budget.n_workflows++];
                wb->name = strdup(it->string);
                wb->usd = it->valuedouble;
            }
        }
        char *mode = NULL;
        cfg_get_str(d, s, "budget", "on_exhausted", &mode);
        if (mode) {
            if (!strcmp(mode, "reject"))
                c->budget.on_exhausted = QT_EXHAUSTED_REJECT;
            else if (!strcmp(mode, "downgrade"))
                c->budget.on_exhausted = QT_EXHAUSTED_DOWNGRADE;
            else
                cfg_err(d, "budget.on_exhausted: \"%s\" is not \"reject\" or \"downgrade\"", mode);
            free(mode);
        }
    }
    if ((s = cfg_get_obj(d, root, "", "queue"))) {
        static const char *k[] = { "aging_ms" };
        cfg_check_keys(d, s, "queue", k, QT_ARRAY_LEN(k));
        cfg_get_long(d, s, "queue", "aging_ms", 0, 86400000, &c->queue.aging_ms);
    }
    if ((s = cfg_get_obj(d, root, "", "backend"))) {
        static const char *k[] = { "kind", "url", "prefix", "on_error", "expected_processes",
                                   "lease_ms", "timeout_ms" };
        cfg_check_keys(d, s, "backend", k, QT_ARRAY_LEN(k));
        char *kind = NULL;
        cfg_get_str(d, s, "backend", "kind", &kind);
        if (kind && !strcmp(kind, "redis"))
            c->backend.kind = QT_BACKEND_REDIS;
        else if (kind && strcmp(kind, "local"))
            cfg_err(d, "backend.kind: \"%s\" is not \"local\" or \"redis\"", kind);
        free(kind);
        cfg_get_str(d, s, "backend", "url", &c->backend.url);
        cfg_get_str(d, s, "backend", "prefix", &c->backend.prefix);
        if (c->backend.prefix && (!*c->backend.prefix || strpbrk(c->backend.prefix, "{} \t\r\n")
                                  || strlen(c->backend.prefix) > 64))
            cfg_err(d, "backend.prefix: \"%s\" must be 1-64 characters without braces or spaces",
                    c->backend.prefix);
        char *onerr = NULL;
        cfg_get_str(d, s, "backend", "on_error", &onerr);
        if (onerr && !strcmp(onerr, "closed"))
            c->backend.on_error = QT_BACKEND_ON_ERROR_CLOSED;
        else if (onerr && strcmp(onerr, "local"))
            cfg_err(d, "backend.on_error: \"%s\" is not \"local\" or \"closed\"", onerr);
        free(onerr);
        cfg_get_int(d, s, "backend", "expected_processes", 1, 10000, &c->backend.expected_processes);
        cfg_get_long(d, s, "backend", "lease_ms", 1000, 3600000, &c->backend.lease_ms);
        cfg_get_long(d, s, "backend", "timeout_ms", 10, 60000, &c->backend.timeout_ms);
        if (c->backend.kind == QT_BACKEND_REDIS) {
            if (!c->backend.url)
                cfg_err(d, "backend.url: required when backend.kind is \"redis\" (redis://host:port)");
            else if (strncmp(c->backend.url, "redis://", 8) || !c->backend.url[8])
                cfg_err(d, "backend.url: \"%s\" is not a redis://host:port URL", c->backend.url);
        }
    }
    char *state = NULL;
    cfg_get_str(d, root, "", "state_dir", &state);
    /* "" is kept as "": no ledger (nothing is written to disk). */
    c->state_dir = state ? expand_home(state) : default_state_dir();
    free(state);
    /* "trace": the request trace `replay` reads (in state_dir), on by default. */
    c->trace = 1;
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "trace");
    if (tr && !cJSON_IsBool(tr))
        cfg_err(d, "trace: must be true or false");
    else if (tr)
        c->trace = cJSON_IsTrue(tr);
    if ((s = cfg_get_obj(d, root, "", "proxy"))) {
        static const char *k[] = { "listen", "token_env", "max_queue", "max_wait_ms",
                                   "max_body_bytes", "default_workflow", "default_priority" };
        cfg_check_keys(d, s, "proxy", k, QT_ARRAY_LEN(k));
        cfg_get_str(d, s, "proxy", "listen", &c->proxy.listen);
        if (c->proxy.listen && !listen_ok(c->proxy.listen))
            cfg_err(d, "proxy.listen: \"%s\" is not HOST:PORT", c->proxy.listen);
        cfg_get_str(d, s, "proxy", "token_env", &c->proxy.token_env);
        cfg_get_long(d, s, "proxy", "max_queue", 1, 100000000, &c->proxy.max_queue);
        cfg_get_long(d, s, "proxy", "max_wait_ms", 0, 86400000, &c->proxy.max_wait_ms);
        cfg_get_long(d, s, "proxy", "max_body_bytes", 1024, 1L << 30, &c->proxy.max_body_bytes);
        cfg_get_str(d, s, "proxy", "default_workflow", &c->proxy.default_workflow);
        cfg_get_int(d, s, "proxy", "default_priority", 1, 10, &c->proxy.default_priority);
    }
}

/* Converts a byte offset into 1-based line and column. */
static void line_col(const char *text, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

qt_config *qt_config_parse(const char *text, size_t len, qt_diag *diag)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        int line, col;
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        line_col(text, off, &line, &col);
        cfg_err(diag, "(json): syntax error at line %d, column %d", line, col);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        cfg_err(diag, "(top): the config must be a JSON object");
        cJSON_Delete(root);
        return NULL;
    }
    qt_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        cJSON_Delete(root);
        cfg_err(diag, "(top): out of memory");
        return NULL;
    }
    size_t errors_before = diag->n_errors;
    set_defaults(cfg);
    read_sections(diag, root, cfg);
    check_references(diag, cfg);
    cJSON_Delete(root);
    if (diag->n_errors > errors_before) {
        qt_config_free(cfg);
        return NULL;
    }
    return cfg;
}

qt_config *qt_config_load(const char *path, qt_diag *diag)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cfg_err(diag, "(file): cannot open %s: %m", path);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    while (1) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *g = realloc(buf, cap);
            if (!g) {
                free(buf);
                fclose(f);
                cfg_err(diag, "(file): out of memory reading %s", path);
                return NULL;
            }
            buf = g;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        cfg_err(diag, "(file): cannot read %s", path);
        return NULL;
    }
    buf[len] = '\0';
    qt_config *cfg = qt_config_parse(buf, len, diag);
    free(buf);
    return cfg;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void qt_config_free(qt_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        free(cfg->providers[i].name);
        free(cfg->providers[i].base_url);
        free(cfg->providers[i].api_key_env);
    }
    free(cfg->providers);
    for (size_t i = 0; i < cfg->n_models; i++) {
        qt_model_cfg *m = &cfg->models[i];
        free(m->name);
        free_strv(m->providers, m->n_providers);
        free(m->provider_idx);
        free(m->upstream_model);
        free_strv(m->fallback, m->n_fallback);
    }
    free(cfg->models);
    for (size_t i = 0; i < cfg->budget.n_workflows; i++)
        free(cfg->budget.workflows[i].name);
    free(cfg->budget.workflows);
    free(cfg->backend.url);
    free(cfg->backend.prefix);
    free(cfg->state_dir);
    free(cfg->proxy.listen);
    free(cfg->proxy.token_env);
    free(cfg->proxy.default_workflow);
    free(cfg);
}

int qt_config_model_index(const qt_config *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->n_models; i++)
        if (cfg->models[i].name && !strcmp(cfg->models[i].name, name))
            return (int)i;
    return -1;
}

int qt_config_provider_index(const qt_config *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->n_providers; i++)
        if (cfg->providers[i].name && !strcmp(cfg->providers[i].name, name))
            return (int)i;
    return -1;
}
