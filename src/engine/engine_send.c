/* engine_send.c: one upstream request of a worker: build it with the
 * provider's table, send it with the worker's libcurl handle (streamed to the
 * job's sink for the proxy), parse the answer and classify it for the retry
 * policy. Runs without the engine lock; see engine.c for the loop around it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "quotatop/retry.h"


typedef struct {
    qt_engine *e;
    const qt_job *job;
    ejob *ej;
    qt_provider_stream *ps;
    int client_gone;
    uint64_t start_ms;
    size_t forwarded;     /* chunks handed to the client's sink */
    int parse_failed;     /* stream_data stopped the transfer: bad stream */
} stream_ctx;

static int stream_chunk(void *ud, const char *json, size_t len)
{
    stream_ctx *sc = ud;
    sc->forwarded++;   /* counted first: a sink that fails may have sent part */
    if (sc->job->stream->on_chunk(sc->job->stream->ud, json, len)) {
        sc->client_gone = 1;
        return 1;
    }
    return 0;
}

/* Polled by libcurl during a transfer: stop on shutdown or cancel. */
static int should_abort(void *ud)
{
    stream_ctx *sc = ud;
    return __atomic_load_n(&sc->e->aborting, __ATOMIC_RELAXED)
           || __atomic_load_n(&((qt_job *)sc->job)->cancel_requested, __ATOMIC_RELAXED);
}

/* Receives upstream bytes of a 2xx streamed answer. */
static int stream_data(void *ud, const char *buf, size_t n)
{
    stream_ctx *sc = ud;
    if (should_abort(sc))
        return 1;
    if (!__atomic_exchange_n(&sc->ej->streaming, 1, __ATOMIC_RELAXED)) {
        uint64_t now = now_of(sc->e);
        __atomic_store_n(&sc->ej->first_byte_ms, now > sc->start_ms ? now - sc->start_ms : 1,
                         __ATOMIC_RELAXED);
    }
    qt_err r = qt_provider_stream_feed(sc->ps, buf, n, stream_chunk, sc);
    if (r != QT_OK && !sc->client_gone)
        sc->parse_failed = 1;
    return r == QT_OK ? 0 : 1;
}

/* A translated answer has no time of its own: give it "created". */
static void stamp_created(qt_provider_result *r, int64_t created_s)
{
    cJSON *o = r->openai_json ? cJSON_Parse(r->openai_json) : NULL;
    char *text = NULL;
    if (o && cJSON_ReplaceItemInObjectCaseSensitive(o, "created", cJSON_CreateNumber((double)created_s))
        && (text = cJSON_PrintUnformatted(o)) != NULL) {
        free(r->openai_json);
        r->openai_json = text;
    }
    cJSON_Delete(o);
}

/* Builds and sends one request; classifies the answer. No lock held. For a
 * streamed job the 2xx body goes to the job's sink as it arrives; a->streamed
 * then says whether any byte reached the client (no retry after that). */
static void send_once(qt_engine *e, qt_http *http, ejob *ej, int mi, int pi, fsm_attempt *a)
{
    const qt_job *job = ej->job;
    const qt_model_cfg *m = &e->cfg->models[mi];
    provider_rt *p = &e->providers[pi];
    qt_provider_request req = { 0 };
    memset(a, 0, sizeof *a);
    bool stream = job->stream != NULL;
    if (p->ops->build_request(job->body, m, p->api_key, stream, &req, a->err, sizeof a->err) != QT_OK) {
        a->verdict.cls = QT_RETRY_FALLBACK;
        a->verdict.reason = "request cannot be expressed for this provider";
        return;
    }
    a->built = 1;
    char url[600];
    snprintf(url, sizeof url, "%s%s", p->cfg->base_url, req.path);
    stream_ctx sc = { e, job, ej, NULL, 0, now_of(e), 0, 0 };
    qt_http_set_abort(http, should_abort, &sc);
    if (stream) {
        /* Chunks keep the model the upstream named (the one that answered). */
        sc.ps = qt_provider_stream_new(p->cfg->kind, NULL, (int64_t)(wall_of(e) / 1000));
        qt_http_post_stream(http, url, (const char *const *)req.headers, req.n_headers, req.body,
                            req.body_len, p->cfg->timeout_ms, stream_data, &sc, &a->resp);
    } else {
        qt_http_post(http, url, (const char *const *)req.headers, req.n_headers, req.body,
                     req.body_len, p->cfg->timeout_ms, &a->resp);
    }
    qt_http_set_abort(http, NULL, NULL);
    qt_provider_request_free(&req);

    qt_retry_transport tr = QT_RETRY_TRANSPORT_NONE;
    switch (a->resp.transport) {
    case QT_HTTP_OK:      break;
    case QT_HTTP_TIMEOUT: tr = QT_RETRY_TRANSPORT_TIMEOUT; break;
    case QT_HTTP_CONNECT: tr = QT_RETRY_TRANSPORT_CONNECT; break;
    default:              tr = QT_RETRY_TRANSPORT_OTHER; break;
    }
    p->ops->parse_limit_headers(a->resp.headers, a->resp.n_headers, (int64_t)wall_of(e), &a->limits);
    int st = a->resp.status;
    if (stream && st >= 200 && st < 300) {
        /* Whatever happened, the client may already have bytes: this attempt
         * is final. Usage comes from the last chunk, else it is estimated. */
        a->streamed = 1;
        a->client_gone = sc.client_gone;
        qt_err r = sc.ps ? qt_provider_stream_result(sc.ps, &a->res, a->err, sizeof a->err)
                         : QT_ERR_NOMEM;
        const qt_provider_error *se = sc.ps ? qt_provider_stream_error(sc.ps) : NULL;
        if (a->res.prompt_tokens < 0)
            a->res.prompt_tokens = qt_estimator_estimate(e->est, m->name, job->prompt_chars);
        if (a->res.completion_tokens < 0)
            a->res.completion_tokens = a->res.content ? (long)(strlen(a->res.content) + 3) / 4 : 0;
        int broke = sc.client_gone || tr != QT_RETRY_TRANSPORT_NONE || se || sc.parse_failed
                    || (r != QT_OK && r != QT_ERR_INVALID) || !qt_provider_stream_done(sc.ps);
        if (broke && !sc.client_gone && sc.forwarded == 0) {
            /* Nothing reached the client (an empty stream, a garbage first
             * event, an over-long line, a plain JSON body, a timeout before
             * the first event): as good as no answer, so retry and fall
             * back like any failed attempt. */
            a->streamed = 0;
            if (sc.parse_failed && a->resp.transport == QT_HTTP_ABORTED)
                a->resp.transport = QT_HTTP_OK;   /* an answer we stopped reading, not a cancel */
            a->verdict.cls = QT_RETRY_RETRYABLE;
            a->verdict.reason = "stream failed before the first byte";
            a->verdict.upstream_failure = 1;
            a->verdict.rate_limited = 0;
            snprintf(a->err, sizeof a->err, "%s%s%.200s", a->verdict.reason,
                     se ? ": " : tr != QT_RETRY_TRANSPORT_NONE ? ": " : "",
                     se ? se->message : tr != QT_RETRY_TRANSPORT_NONE ? a->resp.error : "");
            qt_provider_result_free(&a->res);
        } else if (broke) {
            a->verdict.cls = QT_RETRY_FATAL;
            a->verdict.reason = sc.client_gone ? "client disconnected during the stream"
                                               : "stream broke after the first byte";
            snprintf(a->err, sizeof a->err, "%s%s%.200s", a->verdict.reason, se ? ": " : "",
                     se ? se->message : "");
        } else {
            a->parsed_ok = 1;
            a->verdict = qt_retry_classify(st, NULL, NULL, NULL, QT_RETRY_TRANSPORT_NONE);
        }
        qt_provider_stream_free(sc.ps);
        return;
    }
    qt_provider_stream_free(sc.ps);
    if (tr != QT_RETRY_TRANSPORT_NONE) {
        a->verdict = qt_retry_classify(0, NULL, NULL, NULL, tr);
        snprintf(a->err, sizeof a->err, "%.100s: %.256s", p->cfg->name, a->resp.error);
        return;
    }
    if (st >= 200 && st < 300) {
        if (p->ops->parse_response(a->resp.body, a->resp.body_len, &a->res, a->err,
                                   sizeof a->err) == QT_OK) {
            a->parsed_ok = 1;
            if (p->cfg->kind != QT_KIND_OPENAI)
                stamp_created(&a->res, (int64_t)(wall_of(e) / 1000));
            a->verdict = qt_retry_classify(st, NULL, NULL, NULL, tr);
        } else {
            /* A 2xx we cannot read: the upstream misbehaved; try again. */
            a->verdict.cls = QT_RETRY_RETRYABLE;
            a->verdict.reason = "malformed upstream response";
            a->verdict.upstream_failure = 1;
        }
        return;
    }
    p->ops->parse_error(st, a->resp.body, a->resp.body_len, &a->perr);
    a->verdict = qt_retry_classify(st, a->perr.type, a->perr.code, a->perr.message, tr);
    snprintf(a->err, sizeof a->err, "%d %.64s%s%.256s", st, a->perr.type[0] ? a->perr.type : "error",
             a->perr.message[0] ? ": " : "", a->perr.message);
}

/* Every configured key out of the upstream's text (an error that echoes the
 * key must not reach results, clients or the dashboard). */
static void redact_attempt(qt_engine *e, fsm_attempt *a)
{
    const char *keys[32];
    size_t n = 0;
    for (size_t i = 0; i < e->cfg->n_providers && n < QT_ARRAY_LEN(keys); i++)
        if (e->providers[i].api_key)
            keys[n++] = e->providers[i].api_key;
    if (!n)
        return;
    qt_redact(a->err, keys, n);
    qt_redact(a->perr.message, keys, n);
    qt_redact(a->resp.error, keys, n);
    char *texts[] = { a->res.content, a->res.openai_json, a->res.native_json, a->res.tool_calls,
                      a->res.choices };
    for (size_t i = 0; i < QT_ARRAY_LEN(texts); i++)
        if (texts[i])
            qt_redact(texts[i], keys, n);
}

void engine_send(qt_engine *e, qt_http *http, ejob *ej, int mi, int pi, fsm_attempt *a)
{
    send_once(e, http, ej, mi, pi, a);
    redact_attempt(e, a);
}

void engine_result_details(qt_result *r, const qt_provider_result *res)
{
    if (res == NULL)
        return;
    r->finish_reason = res->finish_reason && res->finish_reason[0] ? res->finish_reason : NULL;
    r->tool_calls = res->tool_calls;
    r->choices = res->choices;
    r->cached_tokens = res->cached_tokens;
    r->cache_write_tokens = res->cache_write_tokens;
    r->reasoning_tokens = res->reasoning_tokens;
    r->upstream_id = res->id;
    r->embeddings = res->embeddings;
}
