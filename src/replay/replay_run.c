/* replay_run.c: one replay of a recording through the real engine on a
 * virtual clock (replay_run.h).
 *
 * DESIGN
 * A manual clock starts at the recording's first arrival (so day budgets
 * see the recorded days), and the engine runs in virtual time on one loop
 * (contract C: opts.virtual_time, opts.transport, qt_engine_loop,
 * qt_engine_run_virtual). One loop timer submits the recorded requests:
 * when it fires it submits every request due by then (built by rp_job_body
 * with the recorded size) and re-arms itself for the next arrival, so the
 * loop holds one arrival timer, not one per request.
 *
 * The transport's post() answers from the simulated provider at once
 * (qt_simprov_request at the current virtual time) and delivers the
 * provider-shaped response (rp_build_response) through a loop timer at now
 * + the drawn latency, or at the timeout when that comes first; abort()
 * cancels the timer and completes with QT_HTTP_ABORTED. So the engine's
 * own request building, parsing, classification, limiter feedback,
 * retries, fallbacks, circuits and budgets all run as they do live. A
 * request recorded as streamed (a serve client's) is submitted with a
 * stream sink that drops the chunks, and answered as an SSE stream of its
 * kind (rp_make_stream), so the engine runs its streaming path.
 *
 * Results arrive through on_result (on this thread, the loop's): each adds
 * to the outcome with its virtual end time. After the run the engine's
 * counters (requests, 429s, retries, fallbacks) and the simulated
 * provider's peaks complete it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quotatop/clock.h"
#include "quotatop/engine.h"
#include "quotatop/jobs.h"
#include "quotatop/loop.h"
#include "quotatop/transport.h"
#include "replay_int.h"
#include "replay_run.h"

typedef struct rp_run rp_run;

typedef struct rp_xfer {
    rp_run *run;
    struct rp_xfer *prev, *next; /* the run's transfers in flight */
    qt_timer *timer;
    qt_http_response resp;
    qt_http_on_data on_data;
    qt_http_on_done on_done;
    void *ud;
} rp_xfer;

struct rp_run {
    const qt_trace_data *d;
    const qt_config *cfg;
    qt_clock *clock;
    qt_engine *e;
    qt_loop *loop;
    qt_simprov *sim;
    rp_outcome *o;
    uint64_t t0;                 /* clock reading at the first arrival */
    size_t next;                 /* next request to submit */
    uint64_t seq;
    rp_xfer *flying;             /* transfers in flight (for close) */
    int oom;
};

static void unlink_xfer(rp_run *r, rp_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        r->flying = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static uint64_t rel_now(const rp_run *r)
{
    uint64_t now = qt_clock_now_ms(r->clock);
    return now > r->t0 ? now - r->t0 : 0;
}

/* The config provider a request went to: its base_url starts the url (the
 * longest such), its kind's path ends it, and, when several providers
 * share the address, it serves a model sent as `model`. */
static const qt_provider_cfg *provider_of(const qt_config *cfg, const char *url, const char *model)
{
    const qt_provider_cfg *best = NULL;
    size_t best_len = 0;
    int best_serves = 0;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const qt_provider_cfg *p = &cfg->providers[i];
        size_t n = strlen(p->base_url);
        if (strncmp(url, p->base_url, n))
            continue;
        int anth_path = strstr(url + n, "/messages") != NULL;
        if (anth_path != (p->kind == QT_KIND_ANTHROPIC))
            continue;
        int serves = 0;
        for (size_t m = 0; m < cfg->n_models && !serves; m++)
            for (size_t k = 0; k < cfg->models[m].n_providers; k++)
                serves |= cfg->models[m].provider_idx[k] == (int)i
                          && !strcmp(cfg->models[m].upstream_model, model);
        if (n > best_len || (n == best_len && serves && !best_serves)) {
            best = p;
            best_len = n;
            best_serves = serves;
        }
    }
    return best;
}

static void xfer_fire(void *ud)
{
    rp_xfer *x = ud;
    x->timer = NULL;
    unlink_xfer(x->run, x);
    if (x->on_data && x->resp.transport == QT_HTTP_OK && x->resp.status >= 200 && x->resp.status < 300
        && x->resp.body_len) {
        if (x->on_data(x->ud, x->resp.body, x->resp.body_len)) {
            x->resp.transport = QT_HTTP_ABORTED;
            snprintf(x->resp.error, sizeof x->resp.error, "aborted by the receiver");
        } else {
            x->resp.body[0] = '\0';   /* delivered: a streamed 2xx keeps no body */
            x->resp.body_len = 0;
        }
    }
    x->on_done(x->ud, &x->resp);   /* the callee frees the contents */
    free(x);
}

static void *sim_post(void *tud, const char *url, const char *const *header_lines,
                              size_t n_headers, const char *body, size_t len, int timeout_ms,
                              qt_http_on_data on_data, qt_http_on_done on_done, void *ud)
{
    rp_run *r = tud;
    (void)header_lines;
    (void)n_headers;
    rp_xfer *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->run = r;
    x->on_data = on_data;
    x->on_done = on_done;
    x->ud = ud;
    rp_req_info info;
    int parsed = rp_parse_request(body, len, &info) == 0;
    const qt_provider_cfg *p = parsed ? provider_of(r->cfg, url, info.model) : NULL;
    uint64_t now = qt_clock_now_ms(r->clock);
    qt_sim_answer a = { .status = 404 };
    if (p) {
        qt_sim_req q = { .provider = p->name, .model = info.model, .prompt_tokens = -1,
                         .max_tokens = info.max_tokens, .job = info.job, .chars = (uint32_t)info.chars };
        qt_simprov_request(r->sim, &q, rel_now(r), &a);
    }
    qt_provider_kind kind = p ? p->kind : QT_KIND_OPENAI;
    if (rp_build_response(kind, p ? info.model : "", &a, qt_clock_wall_ms(r->clock), ++r->seq, &x->resp) != QT_OK
        || (info.stream && on_data && rp_make_stream(&x->resp, kind, info.model, &a, r->seq) != QT_OK)) {
        qt_http_response_free(&x->resp);
        free(x);
        return NULL;
    }
    uint64_t after = a.total_ms;
    if (timeout_ms > 0 && after > (uint64_t)timeout_ms) {
        qt_http_response_free(&x->resp);
        x->resp.transport = QT_HTTP_TIMEOUT;
        x->resp.body = strdup("");
        snprintf(x->resp.error, sizeof x->resp.error, "timed out after %d ms (replay)", timeout_ms);
        after = (uint64_t)timeout_ms;
    }
    x->resp.elapsed_ms = (int64_t)after;
    x->timer = qt_loop_timer_add(r->loop, now + after, xfer_fire, x);
    if (!x->timer) {
        qt_http_response_free(&x->resp);
        free(x);
        return NULL;
    }
    x->next = r->flying;
    if (r->flying)
        r->flying->prev = x;
    r->flying = x;
    return x;
}

static void sim_abort(void *tud, void *h)
{
    rp_run *r = tud;
    rp_xfer *x = h;
    if (!x)
        return;
    if (x->timer)
        qt_loop_timer_cancel(r->loop, x->timer);
    x->timer = NULL;
    unlink_xfer(r, x);
    qt_http_response_free(&x->resp);
    x->resp.transport = QT_HTTP_ABORTED;
    snprintf(x->resp.error, sizeof x->resp.error, "aborted");
    x->on_done(x->ud, &x->resp);
    free(x);
}

/* The transport's connection is the run itself (one loop in virtual time). */
static void *sim_open(const qt_transport *t, qt_loop *loop)
{
    rp_run *r = t->ctx;
    r->loop = loop;
    return r;
}

static void sim_close(void *conn)
{
    rp_run *r = conn;
    while (r && r->flying)
        sim_abort(r, r->flying);
}

/* Where the chunks of a replayed stream go: nowhere (the engine still
 * parses the stream and reads its usage, as it does for a live client). */
static int discard_chunk(void *ud, const char *json, size_t len)
{
    (void)ud;
    (void)json;
    (void)len;
    return 0;
}
static const qt_stream_sink discard_sink = { discard_chunk, NULL };

/* Submits every request due by now; re-arms for the next arrival. */
static void arrivals(void *ud)
{
    rp_run *r = ud;
    uint64_t now = rel_now(r);
    while (r->next < r->d->n_reqs && r->d->reqs[r->next].t_ms <= now) {
        size_t i = r->next++;
        cJSON *body = rp_job_body(r->d, i);
        if (!body) {
            r->oom = 1;
            continue;
        }
        qt_job *job = NULL;
        char *id = NULL, *wf = NULL, err[300];
        if (qt_job_from_json(body, (long)i + 1, r->cfg, &job, &id, &wf, err, sizeof err) != QT_OK) {
            qt_engine_submit_invalid(r->e, id, wf, err);
        } else {
            if (r->d->reqs[i].stream)   /* a streamed serve request streams again */
                job->stream = &discard_sink;
            qt_engine_submit(r->e, job);
        }
        free(id);
        free(wf);
    }
    if (r->next < r->d->n_reqs) {
        if (!qt_loop_timer_add(r->loop, r->t0 + r->d->reqs[r->next].t_ms, arrivals, r))
            r->oom = 1;
    } else {
        qt_engine_close_intake(r->e);
    }
}

static void on_result(void *ud, const qt_job *job, const qt_result *res, const qt_result_extra *x)
{
    rp_run *r = ud;
    uint64_t arrival = x && x->enqueued_wall_ms > r->t0 ? x->enqueued_wall_ms - r->t0 : 0;
    uint64_t wait = x ? x->queue_wait_ms : (uint64_t)(res->queued_ms > 0 ? res->queued_ms : 0);
    rp_outcome_add(r->o, res->workflow, job ? job->priority : 5, res->status, res->model,
                   res->model_used, res->cost_usd, wait, arrival, rel_now(r));
}

/* The config's effective limits on key "provider/upstream" (or "provider"). */
static void config_limits(const qt_config *cfg, const char *key, uint64_t *rpm, uint64_t *tpm)
{
    *rpm = *tpm = 0;
    const char *slash = strchr(key, '/');
    size_t plen = slash ? (size_t)(slash - key) : strlen(key);
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const qt_provider_cfg *p = &cfg->providers[i];
        if (strlen(p->name) != plen || strncmp(p->name, key, plen))
            continue;
        if (!slash) {
            *rpm = (uint64_t)qt_config_effective(cfg, p->rpm);
            *tpm = (uint64_t)qt_config_effective(cfg, p->tpm);
            return;
        }
        for (size_t m = 0; m < cfg->n_models; m++) {
            const qt_model_cfg *md = &cfg->models[m];
            int has = 0;
            for (size_t k = 0; k < md->n_providers; k++)
                has |= md->provider_idx[k] == (int)i;
            if (has && !strcmp(md->upstream_model, slash + 1)) {
                *rpm = (uint64_t)qt_config_effective(cfg, md->rpm);
                *tpm = (uint64_t)qt_config_effective(cfg, md->tpm);
                return;
            }
        }
    }
}

static void gather(rp_run *r)
{
    qt_engine_snapshot s;
    if (qt_engine_snapshot_take(r->e, &s) == QT_OK) {
        r->o->requests = s.requests;
        r->o->upstream_429 = s.upstream_429;
        r->o->retries = s.retries;
        r->o->fallbacks = s.fallbacks;
        qt_engine_snapshot_free(&s);
    }
    qt_sim_key_stats st[64];
    size_t n = qt_simprov_stats(r->sim, st, 64);
    for (size_t i = 0; i < n && i < 64; i++) {
        rp_limit l = { .up_rpm = st[i].rpm, .up_tpm = st[i].tpm, .up_source = st[i].source,
                       .peak_rpm = st[i].peak_rpm,
                       .peak_tpm = st[i].peak_tpm, .rate_limited = st[i].rate_limited };
        snprintf(l.name, sizeof l.name, "%.139s", st[i].name);
        config_limits(r->cfg, st[i].name, &l.cfg_rpm, &l.cfg_tpm);
        rp_outcome_limit(r->o, &l);
    }
    size_t secs = qt_simprov_sent_series(r->sim, NULL, 0);
    r->o->sent = secs ? calloc(secs, sizeof *r->o->sent) : NULL;
    if (r->o->sent)
        r->o->n_sent = qt_simprov_sent_series(r->sim, r->o->sent, secs);
}

/* --upstream config: the simulated upstream enforces cfg's configured limits. */
static qt_err upstream_from(qt_simprov *sim, const qt_config *cfg)
{
    for (size_t i = 0; i < cfg->n_providers; i++)
        if (qt_simprov_set_limits(sim, cfg->providers[i].name, NULL, (uint64_t)cfg->providers[i].rpm,
                                  (uint64_t)cfg->providers[i].tpm) != QT_OK)
            return QT_ERR_NOMEM;
    for (size_t m = 0; m < cfg->n_models; m++)
        for (size_t k = 0; k < cfg->models[m].n_providers; k++)
            if (qt_simprov_set_limits(sim, cfg->models[m].providers[k], cfg->models[m].upstream_model,
                                      (uint64_t)cfg->models[m].rpm, (uint64_t)cfg->models[m].tpm) != QT_OK)
                return QT_ERR_NOMEM;
    return QT_OK;
}

qt_err rp_run_config(const qt_trace_data *d, qt_config *cfg, const rp_run_opts *ro, rp_outcome *o,
                     char *err, size_t errlen)
{
    uint64_t seed = ro->seed;
    free(cfg->state_dir);              /* a replay never touches the ledger */
    cfg->state_dir = strdup("");
    cfg->trace = 0;
    rp_run r = { .d = d, .cfg = cfg, .o = o, .t0 = d->t0_wall_ms };
    r.clock = qt_clock_manual_new(d->t0_wall_ms);
    r.sim = qt_simprov_new(d, seed);
    if (r.sim && ro->upstream_from_config && upstream_from(r.sim, cfg) != QT_OK) {
        qt_simprov_free(r.sim);
        r.sim = NULL;
    }
    qt_transport tr = { .open = sim_open, .close = sim_close, .post = sim_post, .abort = sim_abort,
                        .ctx = &r };
    qt_engine_opts eo = { .cfg = cfg, .clock = r.clock, .on_result = on_result, .on_result_ud = &r,
                          .seed = seed, .transport = &tr, .virtual_time = 1 };
    if (!r.clock || !r.sim || !cfg->state_dir) {
        snprintf(err, errlen, "out of memory");
        qt_simprov_free(r.sim);
        qt_clock_free(r.clock);
        return QT_ERR_NOMEM;
    }
    r.e = qt_engine_new(&eo, err, errlen);
    if (!r.e) {
        qt_simprov_free(r.sim);
        qt_clock_free(r.clock);
        return QT_ERR_INVALID;
    }
    qt_err rc = QT_OK;
    if (qt_engine_start(r.e) != QT_OK || !(r.loop = qt_engine_loop(r.e))) {
        snprintf(err, errlen, "the engine could not start in virtual time");
        rc = QT_ERR_INVALID;
    } else if (!qt_loop_timer_add(r.loop, r.t0 + d->reqs[0].t_ms, arrivals, &r)) {
        snprintf(err, errlen, "out of memory");
        rc = QT_ERR_NOMEM;
    } else if (qt_engine_run_virtual(r.e) != QT_OK) {
        snprintf(err, errlen, "the engine could not run in virtual time");
        rc = QT_ERR_INVALID;
    }
    if (rc == QT_OK && r.oom) {
        snprintf(err, errlen, "out of memory while submitting the recorded requests");
        rc = QT_ERR_NOMEM;
    }
    if (rc == QT_OK)
        gather(&r);
    qt_engine_free(r.e);
    qt_simprov_free(r.sim);
    qt_clock_free(r.clock);
    return rc;
}
