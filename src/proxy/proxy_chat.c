/* proxy_chat.c: the API paths that become jobs (POST /v1/chat/completions,
 * /v1/messages, /v1/responses, /v1/embeddings): they wait for the engine.
 *
 * DESIGN
 * proxy.c routes a chat request here at its last handler call, with the
 * body read. px_chat validates the headers and body, builds the job,
 * applies backpressure (a bounded queue, a bounded estimated wait: 429 with
 * retry-after otherwise), submits it and suspends the connection (no
 * thread waits). The engine's thread calls back here: on_chunk appends SSE
 * bytes to r->out, qt_proxy_on_result stores the result (and, for a
 * stream, the closing events); both resume the connection under r->mu.
 * MHD then calls the handler again (px_chat_resume), which answers: JSON,
 * an OpenAI error (answer_failure maps a failed job to its status), or an
 * SSE response whose reader (sse_reader) suspends again whenever it has
 * sent everything and the stream is not over. Reference counting, the lock
 * order and disconnects are described in proxy.c and proxy_conn.c; the
 * request struct is in proxy_int.h.
 */
#include "quotatop/proxy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <microhttpd.h>

#include "proxy_int.h"
#include "quotatop/translate.h"
#include "quotatop/clock.h"

#define PX_STREAM_BUF_MAX (8u << 20)   /* SSE bytes a slow client may leave unread */

/* ------------------------------------------------------------ engine side */

int px_put_event(px_req *r, const char *name, const char *json, size_t len)
{
    if (name && (px_buf_adds(&r->out, "event: ") || px_buf_adds(&r->out, name)
                 || px_buf_add(&r->out, "\n", 1)))
        return -1;
    return px_buf_add(&r->out, "data: ", 6) || px_buf_add(&r->out, json, len)
           || px_buf_add(&r->out, "\n\n", 2) ? -1 : 0;
}

/* qt_tr_emit of a messages stream: one Anthropic event, and a ping after
 * message_start as Anthropic sends. Caller holds r->mu. */
static int emit_anthropic(void *ud, const char *event, const cJSON *data)
{
    px_req *r = ud;
    char *json = cJSON_PrintUnformatted(data);
    int bad = !json || px_put_event(r, event, json, strlen(json));
    free(json);
    if (!bad && !strcmp(event, "message_start"))
        bad = px_put_event(r, "ping", "{\"type\": \"ping\"}", 16);
    return bad;
}

/* Writes one chunk of the engine's stream in the shape of r's endpoint:
 * chat chunks as they are, Responses events with their event names,
 * messages translated into Anthropic events. Caller holds r->mu. */
static int put_chunk(px_req *r, const char *json, size_t len)
{
    if (r->route == RT_MESSAGES) {
        cJSON *chunk = cJSON_ParseWithLength(json, len);
        int bad = !chunk || qt_tr_stream_event(r->tr, "", chunk, emit_anthropic, r) == QT_ERR_NOMEM;
        cJSON_Delete(chunk);
        return bad ? -1 : 0;
    }
    if (r->route == RT_RESPONSES)
        return px_responses_chunk(r, json, len);
    return px_put_event(r, NULL, json, len);
}

/* The sink of a streamed job (an engine loop thread). */
static int on_chunk(void *ud, const char *json, size_t len)
{
    px_req *r = ud;
    int stop = 0;
    pthread_mutex_lock(&r->mu);
    if (r->client_gone) {
        stop = 1;
    } else if (r->route == RT_CHAT && !r->include_usage && px_chunk_is_usage_only(json, len)) {
        /* quotatop asked the upstream for usage; this client did not */
    } else if (r->out.len - r->out_off > PX_STREAM_BUF_MAX) {
        r->client_gone = 1;   /* it stopped reading: treat it as gone */
        stop = 1;
    } else {
        if (r->out_off == r->out.len)
            r->out.len = r->out_off = 0;
        if (r->chunks == 0 && r->job)
            r->first_queued_ms = r->job->dispatched_ms > r->job->enqueued_ms
                                     ? (long)(r->job->dispatched_ms - r->job->enqueued_ms) : 0;
        if (put_chunk(r, json, len)) {
            r->client_gone = 1;
            stop = 1;
        }
        r->chunks++;
        px_resume_locked(r);
    }
    pthread_mutex_unlock(&r->mu);
    return stop;
}

/* The end of a stream that went well, in r's endpoint's shape; an answer
 * that came whole (the response cache) is sent as chunks first. Caller
 * holds r->mu. */
static void put_stream_end(px_req *r, const qt_job *job, const qt_result *res)
{
    const char *model = res->model_used ? res->model_used : job->model;
    if (r->chunks == 0) {
        px_buf tmp = { 0 };
        px_sse_from_answer(&tmp, r->id, model, qt_wall_ms() / 1000, res->content, res->finish_reason,
                           res->tool_calls, res->prompt_tokens, res->completion_tokens,
                           r->route != RT_CHAT || r->include_usage);
        for (char *p = tmp.s; p && (p = strstr(p, "data: ")) != NULL;) {
            p += 6;
            char *e = strstr(p, "\n\n");
            size_t n = e ? (size_t)(e - p) : strlen(p);
            put_chunk(r, p, n);
            p += n;
        }
        px_buf_free(&tmp);
    }
    if (r->route == RT_MESSAGES) {
        qt_tr_stream_end(r->tr, emit_anthropic, r);
        return;
    }
    if (r->route == RT_RESPONSES)
        px_responses_end(r);
    /* SSE comments are ignored by clients; this one tells humans. */
    px_buf_addf(&r->out, ": quotatop model_used=%s attempts=%d queued_ms=%ld\n\n",
                res->model_used ? res->model_used : "-", res->attempts, res->queued_ms);
    if (r->route == RT_CHAT)
        px_buf_adds(&r->out, "data: [DONE]\n\n");
}

/* The answer broke after the first byte: no retry is possible any more, so
 * the client gets its API's in-stream error event. Caller holds r->mu. */
static void put_stream_error(px_req *r, const char *why)
{
    char msg[600];
    snprintf(msg, sizeof msg, "quotatop: the stream broke: %.500s", why ? why : "unknown error");
    char *ej = r->route == RT_MESSAGES ? px_anthropic_error_json(502, msg)
                                       : px_error_json(msg, "server_error", NULL, "stream_broken");
    if (ej && r->route == RT_RESPONSES) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "error");
        cJSON_AddStringToObject(o, "code", "stream_broken");
        cJSON_AddStringToObject(o, "message", msg);
        free(ej);
        ej = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    if (ej)
        px_put_event(r, r->route == RT_CHAT ? NULL : "error", ej, strlen(ej));
    free(ej);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void qt_proxy_on_result(void *ud, const qt_job *job, const qt_result *res, const qt_result_extra *x)
{
    (void)ud;
    px_req *r = job->user;
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->job = NULL;
    r->status = res->status;
    r->error = dup_or_null(res->error);
    r->model_used = dup_or_null(res->model_used);
    r->openai_json = dup_or_null(x ? x->openai_json : NULL);
    r->content = dup_or_null(res->content);
    r->attempts = res->attempts;
    r->cached = res->cached;
    r->http_status = x ? x->http_status : 0;
    r->queued_ms = res->queued_ms;
    r->prompt_tokens = res->prompt_tokens;
    r->completion_tokens = res->completion_tokens;
    if (res->cached) {   /* the answer is rebuilt from these */
        r->finish_reason = dup_or_null(res->finish_reason);
        r->tool_calls = dup_or_null(res->tool_calls);
    }
    if (r->stream && !r->client_gone) {
        if (r->out_off == r->out.len)
            r->out.len = r->out_off = 0;
        if (res->status == QT_STATUS_OK)
            put_stream_end(r, job, res);
        else if (r->chunks > 0)
            put_stream_error(r, res->error);
    }
    r->have_result = 1;
    px_resume_locked(r);
    pthread_mutex_unlock(&r->mu);
    px_req_unref(r);
}

/* ------------------------------------------------------------ streamed answers */

/* MHD's content reader (the connection's thread): hands out what is
 * buffered; with nothing buffered and the stream not over it suspends the
 * connection (returning 0 then is how MHD expects it) until on_chunk or
 * qt_proxy_on_result resumes it. */
static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    px_req *r = cls;
    px_unwatch(r);
    pthread_mutex_lock(&r->mu);
    ssize_t n;
    if (r->client_gone) {
        px_count(&r->px->st.gone_streaming, 1);
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (r->out.len > r->out_off) {
        size_t k = r->out.len - r->out_off;
        if (k > max)
            k = max;
        memcpy(buf, r->out.s + r->out_off, k);
        r->out_off += k;
        n = (ssize_t)k;
    } else if (r->have_result) {
        n = MHD_CONTENT_READER_END_OF_STREAM;   /* all sent */
    } else {
        px_suspend_locked(r);
        n = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void sse_free(void *cls)
{
    px_req *r = cls;
    px_gauge(&r->px->st.streams, -1);
    px_req_unref(r);
}

static enum MHD_Result answer_stream(px_req *r, struct MHD_Connection *c)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                                  sse_reader, r, sse_free);
    if (!resp)
        return MHD_NO;
    pthread_mutex_lock(&r->mu);
    px_req_ref(r);                /* the response's reference, dropped by sse_free */
    r->stream_started = 1;
    long q = r->have_result ? r->queued_ms : r->first_queued_ms;
    pthread_mutex_unlock(&r->mu);
    px_gauge(&r->px->st.streams, 1);
    char qs[32];
    snprintf(qs, sizeof qs, "%ld", q);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, "X-Quotatop-Queued-Ms", qs);
    MHD_add_response_header(resp, "X-Quotatop-Request-Id", r->id);
    enum MHD_Result ok = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);   /* sse_free runs when MHD lets go of it */
    if (ok == MHD_YES)
        px_count(&r->px->st.responses[200], 1);
    r->status_sent = 200;
    return ok;
}

/* ------------------------------------------------------------ chat completions */

/* Copies the name, value pairs of h (NULL-terminated, may be NULL) into hh
 * (room for max entries) and adds x-should-retry: false, which tells the
 * SDKs an answer is final. */
static void final_headers(const char *const *h, const char **hh, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; h && h[i] && h[i + 1] && n + 4 < max; i += 2) {
        hh[n++] = h[i];
        hh[n++] = h[i + 1];
    }
    hh[n++] = "x-should-retry";
    hh[n++] = "false";
    hh[n] = hh[n + 1] = NULL;
}

/* Maps a finished non-ok job to its HTTP answer. */
static enum MHD_Result answer_failure(px_req *r, struct MHD_Connection *c, const char *const *h)
{
    const char *why = r->error ? r->error : "unknown error";
    switch (r->status) {
    case QT_STATUS_REJECTED: {
        /* Not a 429: SDKs would retry it, and waiting does not refill a
         * budget. x-should-retry: false tells the OpenAI SDKs so. */
        const char *hh[16];
        final_headers(h, hh, QT_ARRAY_LEN(hh));
        return px_answer_error(r, c, 402, "insufficient_quota", "budget_exhausted", NULL, hh,
                               "quotatop: budget exhausted: %s", why);
    }
    case QT_STATUS_CANCELLED:
        if (strstr(why, QT_CANCELLED_BY_OPERATOR)) {
            /* Cancelled on purpose (dashboard, control socket): SDKs retry
             * 408, 409, 429 and 5xx, which would send the job again. 410
             * with x-should-retry: false is final for every SDK. */
            const char *hh[16];
            final_headers(h, hh, QT_ARRAY_LEN(hh));
            return px_answer_error(r, c, 410, "invalid_request_error", "cancelled_by_operator", NULL, hh,
                                   "quotatop: the request was cancelled by the operator; it will not be "
                                   "sent (do not retry)");
        }
        return px_answer_error(r, c, 503, "server_error", "cancelled", NULL, h,
                               "quotatop: the request was cancelled before it was answered: %s", why);
    case QT_STATUS_INVALID:
        return px_answer_error(r, c, 400, "invalid_request_error", NULL, NULL, h, "%s", why);
    default: {
        /* Failed. An upstream 4xx about the request itself is the client's
         * to fix (same status, so SDKs raise BadRequestError and do not
         * retry); anything else is the upstream's or quotatop's: 502 when
         * an upstream answered, 503 when none could be reached. */
        int us = r->http_status >= 400 ? r->http_status : px_upstream_status_of(r->error);
        if (us == 400 && r->attempts == 0)   /* no model of the chain can carry it (engine route) */
            return px_answer_error(r, c, 400, "invalid_request_error", "unsupported_by_chain", NULL, h,
                                   "quotatop: no model of the chain can carry this request: %s", why);
        if (us == 400 || us == 404 || us == 413 || us == 422)
            return px_answer_error(r, c, (unsigned)us, "invalid_request_error", "upstream_rejected", NULL,
                                   h, "upstream rejected the request: %s", why);
        if (us > 0)
            return px_answer_error(r, c, 502, "upstream_error", "upstream_failed", NULL, h,
                                   "quotatop: upstream failed: %s", why);
        return px_answer_error(r, c, 503, "server_error", "no_upstream_available", NULL, h,
                               "quotatop: no upstream could answer: %s", why);
    }
    }
}

/* 1 when r can be answered: its result is there, or a stream's first
 * chunk. Caller holds r->mu. */
static int answer_ready(const px_req *r)
{
    return r->have_result || (r->stream && r->chunks > 0);
}

/* Answers a request that is ready (answer_ready): the stream, the JSON
 * answer or the error. */
static enum MHD_Result answer(px_req *r, struct MHD_Connection *c)
{
    pthread_mutex_lock(&r->mu);
    int stream_now = r->stream && (r->chunks > 0 || (r->have_result && r->status == QT_STATUS_OK));
    pthread_mutex_unlock(&r->mu);
    if (stream_now)
        return answer_stream(r, c);

    /* have_result: the worker is done with r's result fields. */
    char att[16], q[32];
    snprintf(att, sizeof att, "%d", r->attempts);
    snprintf(q, sizeof q, "%ld", r->queued_ms);
    const char *h[] = { "X-Quotatop-Model-Used", r->model_used ? r->model_used : "",
                        "X-Quotatop-Attempts", att, "X-Quotatop-Queued-Ms", q,
                        "X-Quotatop-Request-Id", r->id,
                        r->cached ? "X-Quotatop-Cached" : NULL, "true", NULL, NULL };
    if (r->status != QT_STATUS_OK)
        return answer_failure(r, c, r->model_used ? h : h + 6);
    char *out = r->openai_json ? strdup(r->openai_json)
                               : px_answer_completion_json(r->id, r->model_used, qt_wall_ms() / 1000, r->content,
                                                           r->finish_reason, r->tool_calls, r->prompt_tokens,
                                                           r->completion_tokens);
    if (!r->openai_json && out && r->route == RT_RESPONSES)   /* a cache hit, as a response */
        out = px_responses_from_completion(out);
    if (!r->openai_json && out && r->route == RT_MESSAGES) {   /* a cache hit, as a message */
        cJSON *cc = cJSON_Parse(out), *msg = NULL;
        free(out);
        out = cc && qt_tr_resp_openai_to_anthropic(cc, &msg, NULL, 0) == QT_OK ? cJSON_PrintUnformatted(msg)
                                                                               : NULL;
        cJSON_Delete(msg);
        cJSON_Delete(cc);
    }
    return px_answer_json(r, c, 200, out, h);
}

/* A workflow name from a header: 1..63 printable characters, no spaces. */
static int workflow_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

/* Parses the body: a JSON object with a known model and a boolean
 * "stream" (sets r->stream, r->include_usage, *max_tokens). Returns
 * MHD_YES with *out set (the caller owns it), or the result of queueing a
 * 400/404 with *out NULL. */
static enum MHD_Result parse_body(px_req *r, struct MHD_Connection *c, cJSON **out, int *max_tokens)
{
    const qt_config *cfg = r->px->cfg;
    const char *end = NULL;
    cJSON *body = r->body.len ? cJSON_ParseWithLengthOpts(r->body.s, r->body.len, &end, 0) : NULL;
    if (!cJSON_IsObject(body)) {
        int parsed = body != NULL;
        size_t at = end && r->body.s && end >= r->body.s ? (size_t)(end - r->body.s) : 0;
        cJSON_Delete(body);
        if (!r->body.len)
            return px_answer_error(r, c, 400, "invalid_request_error", "invalid_json", NULL, NULL,
                                   "the request has no body: send a JSON object");
        if (parsed)
            return px_answer_error(r, c, 400, "invalid_request_error", "invalid_json", NULL, NULL,
                                   "the request body must be a JSON object");
        return px_answer_error(r, c, 400, "invalid_request_error", "invalid_json", NULL, NULL,
                               "the request body is not valid JSON (near byte %zu)", at);
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (!model) {
        cJSON_Delete(body);
        return px_answer_error(r, c, 400, "invalid_request_error", "missing_required_parameter", "model",
                               NULL, "you must provide a model parameter");
    }
    if (cJSON_IsString(model) && qt_config_model_index(cfg, model->valuestring) < 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "The model `%.100s` does not exist (not in quotatop's config; "
                 "GET /v1/models lists them)", model->valuestring);
        cJSON_Delete(body);
        return px_answer_error(r, c, 404, "invalid_request_error", "model_not_found", "model", NULL,
                               "%s", msg);
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(body, "stream");
    if (st && !cJSON_IsBool(st) && !cJSON_IsNull(st)) {
        cJSON_Delete(body);
        return px_answer_error(r, c, 400, "invalid_request_error", "invalid_type", "stream", NULL,
                               "\"stream\" must be a boolean");
    }
    r->stream = cJSON_IsTrue(st);
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    r->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    const cJSON *mct = cJSON_GetObjectItemCaseSensitive(body, "max_completion_tokens");
    if (cJSON_IsNumber(mct) && mct->valuedouble >= 1 && mct->valuedouble <= 1e7)
        *max_tokens = (int)mct->valuedouble;

    *out = body;
    return MHD_YES;
}

/* Validates the headers and the body and builds the job (*out). Returns
 * MHD_YES with *out set, or the result of queueing an error answer with
 * *out NULL. */
static enum MHD_Result chat_job(px_req *r, struct MHD_Connection *c, qt_job **out)
{
    *out = NULL;
    qt_proxy *px = r->px;
    const qt_config *cfg = px->cfg;
    if (r->too_big)
        return px_answer_error(r, c, 413, "invalid_request_error", "request_too_large", NULL, NULL,
                               "request body is larger than proxy.max_body_bytes (%ld bytes)",
                               cfg->proxy.max_body_bytes);

    /* Headers first: they need no parsing of the body. */
    const char *wf = px_hdr(c, "X-Quotatop-Workflow");
    const char *pr = px_hdr(c, "X-Quotatop-Priority");
    int prio = cfg->proxy.default_priority;
    if (wf && !workflow_ok(wf))
        return px_answer_error(r, c, 400, "invalid_request_error", "invalid_workflow", NULL, NULL,
                               "X-Quotatop-Workflow must be 1 to 63 printable characters without spaces");
    if (pr) {
        char *end;
        long v = strtol(pr, &end, 10);
        if (!*pr || *end || v < 1 || v > 10)
            return px_answer_error(r, c, 400, "invalid_request_error", "invalid_priority", NULL, NULL,
                                   "X-Quotatop-Priority must be a whole number from 1 (most urgent) to 10");
        prio = (int)v;
    }

    int max_tokens = 0;
    cJSON *body = NULL;
    enum MHD_Result ok = parse_body(r, c, &body, &max_tokens);
    if (!body)
        return ok;

    /* quotatop's own job fields come from headers, never from the body. */
    snprintf(r->id, sizeof r->id, "px-%llu",
             (unsigned long long)__atomic_add_fetch(&px->next_id, 1, __ATOMIC_RELAXED));
    cJSON_DeleteItemFromObjectCaseSensitive(body, "id");
    cJSON_DeleteItemFromObjectCaseSensitive(body, "workflow");
    cJSON_DeleteItemFromObjectCaseSensitive(body, "priority");
    cJSON_DeleteItemFromObjectCaseSensitive(body, "endpoint");
    cJSON_AddStringToObject(body, "id", r->id);
    cJSON_AddStringToObject(body, "endpoint", qt_endpoint_name(px_route_endpoint(r->route)));
    /* The client's API version goes on to an anthropic-kind upstream. */
    cJSON_DeleteItemFromObjectCaseSensitive(body, "quotatop_anthropic_version");
    const char *av = r->route == RT_MESSAGES ? px_hdr(c, "anthropic-version") : NULL;
    if (av)
        cJSON_AddStringToObject(body, "quotatop_anthropic_version", av);
    if (r->stream && r->route == RT_MESSAGES
        && (r->tr = qt_tr_stream_new(QT_TR_OPENAI_TO_ANTHROPIC, (int64_t)(qt_wall_ms() / 1000))) == NULL) {
        cJSON_Delete(body);
        return px_answer_json(r, c, 500, NULL, NULL);
    }

    qt_job *job = NULL;
    char err[300];
    if (qt_job_from_json(body, 0, cfg, &job, NULL, NULL, err, sizeof err) != QT_OK)
        return px_answer_error(r, c, 400, "invalid_request_error", "invalid_request", NULL, NULL, "%s", err);
    const char *wname = wf ? wf : cfg->proxy.default_workflow ? cfg->proxy.default_workflow : "default";
    char *w = strdup(wname);
    if (!w) {
        qt_job_free(job);
        return px_answer_json(r, c, 500, NULL, NULL);
    }
    free(job->workflow);
    job->workflow = w;
    job->priority = prio;
    if (job->max_tokens == 0 && max_tokens > 0)
        job->max_tokens = max_tokens;
    *out = job;
    return MHD_YES;
}

/* Backpressure: a bounded queue, and no promise we cannot keep. The engine
 * refused the job (qt_engine_submit_bounded: QT_ERR_LIMIT) after seeing
 * depth and wait: a 429 that says which and when to come back. Frees job. */
static enum MHD_Result refuse(px_req *r, struct MHD_Connection *c, qt_job *job, size_t depth,
                              uint64_t wait)
{
    qt_proxy *px = r->px;
    const qt_config *cfg = px->cfg;
    int full = (long)depth >= cfg->proxy.max_queue;
    int too_long = wait != UINT64_MAX && wait > (uint64_t)cfg->proxy.max_wait_ms;
    /* Retry when the wait would fit the client's patience again. */
    uint64_t ra_ms = wait == UINT64_MAX ? 1000
                     : too_long ? wait - (uint64_t)cfg->proxy.max_wait_ms : wait;
    if (ra_ms < 1000)
        ra_ms = 1000;
    char ra[32], ram[32];
    snprintf(ra, sizeof ra, "%llu", (unsigned long long)((ra_ms + 999) / 1000));
    snprintf(ram, sizeof ram, "%llu", (unsigned long long)ra_ms);
    const char *h[] = { "retry-after", ra, "retry-after-ms", ram, NULL, NULL };
    px_count(full ? &px->st.rejected_queue_full : &px->st.rejected_wait, 1);
    char model_name[100];
    snprintf(model_name, sizeof model_name, "%s", job->model);
    qt_job_free(job);
    if (full)
        return px_answer_error(r, c, 429, "requests", "queue_full", NULL, h,
                               "quotatop: the queue is full (%zu requests, proxy.max_queue %ld); "
                               "retry after %s s", depth, cfg->proxy.max_queue, ra);
    return px_answer_error(r, c, 429, "requests", "rate_limit_exceeded", NULL, h,
                           "quotatop: rate limit of %s: the estimated wait of %llu ms exceeds "
                           "proxy.max_wait_ms (%ld ms); retry after %s s", model_name,
                           (unsigned long long)wait, cfg->proxy.max_wait_ms, ra);
}

enum MHD_Result px_chat(px_req *r, struct MHD_Connection *c)
{
    px_count(&r->px->st.by_endpoint[px_route_endpoint(r->route)], 1);
    qt_job *job;
    enum MHD_Result ok = chat_job(r, c, &job);
    if (!job)
        return ok;
    qt_proxy *px = r->px;
    qt_engine *e = px->engine;
    const qt_config *cfg = px->cfg;
    r->sink.on_chunk = on_chunk;
    r->sink.ud = r;
    job->stream = r->stream ? &r->sink : NULL;
    job->user = r;
    r->job = job;
    pthread_mutex_lock(&r->mu);
    px_req_ref(r);                /* the job's reference, dropped by qt_proxy_on_result */
    r->submitted = 1;
    pthread_mutex_unlock(&r->mu);
    px_gauge(&px->answering, 1);     /* until notify_completed */
    size_t depth = 0;
    uint64_t wait = 0;
    size_t max_queue = cfg->proxy.max_queue > 0 ? (size_t)cfg->proxy.max_queue : 0;
    uint64_t max_wait = cfg->proxy.max_wait_ms > 0 ? (uint64_t)cfg->proxy.max_wait_ms : 0;
    /* may answer at once (shutting down) */
    qt_err sr = qt_engine_submit_bounded(e, job, max_queue, max_wait, &depth, &wait);
    if (sr == QT_ERR_LIMIT || sr == QT_ERR_NOMEM) {
        /* Not the engine's: no result will come, so the request is ours again. */
        pthread_mutex_lock(&r->mu);
        r->submitted = 0;
        r->job = NULL;
        pthread_mutex_unlock(&r->mu);
        px_gauge(&px->answering, -1);
        px_req_unref(r);          /* the job's reference (the handler's own holds r) */
        if (sr == QT_ERR_LIMIT)
            return refuse(r, c, job, depth, wait);
        return px_answer_error(r, c, 503, "server_error", "out_of_memory", NULL, NULL,
                               "quotatop: out of memory");   /* the engine freed the job */
    }

    pthread_mutex_lock(&r->mu);
    int ready = answer_ready(r);
    if (!ready) {
        r->waiting = 1;
        px_suspend_locked(r);
    }
    pthread_mutex_unlock(&r->mu);
    return ready ? answer(r, c) : MHD_YES;
}

enum MHD_Result px_chat_resume(px_req *r, struct MHD_Connection *c)
{
    px_unwatch(r);
    pthread_mutex_lock(&r->mu);
    int gone = r->client_gone, ready = answer_ready(r);
    if (!gone && !ready)
        px_suspend_locked(r);   /* nothing for it yet: wait on */
    pthread_mutex_unlock(&r->mu);
    if (gone) {
        px_count(&r->px->st.gone_queued, 1);
        return MHD_NO;            /* notify_completed cancels the job */
    }
    if (!ready)
        return MHD_YES;
    r->waiting = 0;
    return answer(r, c);
}
