/* engine_send.c: one upstream request: build it with the provider's table
 * (engine_xfer_build), receive a streamed 2xx body into the job's sink
 * (engine_xfer_on_data), parse the answer and classify it for the retry
 * policy (engine_xfer_classify). The event runtime (engine_loop.c) posts
 * the request through the transport. Runs without the engine lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "quotatop/retry.h"


typedef engine_xfer stream_ctx;

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

/* Checked for every chunk of a streamed body: stop on shutdown or cancel. */
static int should_abort(void *ud)
{
    stream_ctx *sc = ud;
    return __atomic_load_n(&sc->e->aborting, __ATOMIC_RELAXED)
           || __atomic_load_n(&((qt_job *)sc->job)->cancel_requested, __ATOMIC_RELAXED);
}

int engine_xfer_on_data(void *ud, const char *buf, size_t n)
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

int engine_xfer_build(qt_engine *e, ejob *ej, int mi, int pi, engine_xfer *x)
{
    const qt_job *job = ej->job;
    const qt_model_cfg *m = &e->cfg->models[mi];
    provider_rt *p = &e->providers[pi];
    memset(x, 0, sizeof *x);
    x->e = e;
    x->job = job;
    x->ej = ej;
    x->mi = mi;
    x->pi = pi;
    x->start_ms = now_of(e);
    x->stream = job->stream != NULL;
    char err[sizeof ((fsm_attempt *)0)->err] = "";
    if (p->ops->build_request(job->body, m, p->api_key, x->stream, &x->req, err, sizeof err)
        != QT_OK) {
        x->build_err = strdup(err);
        return 0;
    }
    if (asprintf(&x->url, "%s%s", p->cfg->base_url, x->req.path) < 0) {
        x->url = NULL;
        qt_provider_request_free(&x->req);
        x->build_err = strdup("out of memory");
        return 0;
    }
    x->built = 1;
    if (x->stream)   /* chunks keep the model the upstream named (the one that answered) */
        x->ps = qt_provider_stream_new(p->cfg->kind, NULL, (int64_t)(wall_of(e) / 1000));
    return 1;
}

static void classify(engine_xfer *x, fsm_attempt *a);
static void redact_attempt(qt_engine *e, fsm_attempt *a);

void engine_xfer_classify(engine_xfer *x, fsm_attempt *a)
{
    memset(a, 0, sizeof *a);
    a->resp = x->resp;   /* the attempt owns the answer now */
    memset(&x->resp, 0, sizeof x->resp);
    qt_provider_request_free(&x->req);
    free(x->url);
    x->url = NULL;
    if (x->built) {
        a->built = 1;
        classify(x, a);
    } else {
        a->verdict.cls = QT_RETRY_FALLBACK;
        a->verdict.reason = "request cannot be expressed for this provider";
        snprintf(a->err, sizeof a->err, "%s", x->build_err ? x->build_err : "out of memory");
    }
    free(x->build_err);
    x->build_err = NULL;
    qt_provider_stream_free(x->ps);
    x->ps = NULL;
    redact_attempt(x->e, a);
}

/* Classifies a response (a->resp) for the retry policy. */
static void classify(engine_xfer *x, fsm_attempt *a)
{
    qt_engine *e = x->e;
    const qt_job *job = x->job;
    const qt_model_cfg *m = &e->cfg->models[x->mi];
    provider_rt *p = &e->providers[x->pi];
    bool stream = x->stream;
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
        a->client_gone = x->client_gone;
        qt_err r = x->ps ? qt_provider_stream_result(x->ps, &a->res, a->err, sizeof a->err)
                         : QT_ERR_NOMEM;
        const qt_provider_error *se = x->ps ? qt_provider_stream_error(x->ps) : NULL;
        if (a->res.prompt_tokens < 0)
            a->res.prompt_tokens = qt_estimator_estimate(e->est, m->name, job->prompt_chars);
        if (a->res.completion_tokens < 0)
            a->res.completion_tokens = a->res.content ? (long)(strlen(a->res.content) + 3) / 4 : 0;
        int broke = x->client_gone || tr != QT_RETRY_TRANSPORT_NONE || se || x->parse_failed
                    || (r != QT_OK && r != QT_ERR_INVALID) || !qt_provider_stream_done(x->ps);
        if (broke && !x->client_gone && x->forwarded == 0) {
            /* Nothing reached the client (an empty stream, a garbage first
             * event, an over-long line, a plain JSON body, a timeout before
             * the first event): as good as no answer, so retry and fall
             * back like any failed attempt. */
            a->streamed = 0;
            if (x->parse_failed && a->resp.transport == QT_HTTP_ABORTED)
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
            a->verdict.reason = x->client_gone ? "client disconnected during the stream"
                                               : "stream broke after the first byte";
            snprintf(a->err, sizeof a->err, "%s%s%.200s", a->verdict.reason, se ? ": " : "",
                     se ? se->message : "");
        } else {
            a->parsed_ok = 1;
            a->verdict = qt_retry_classify(st, NULL, NULL, NULL, QT_RETRY_TRANSPORT_NONE);
        }
        return;
    }
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
