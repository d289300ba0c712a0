/* proxy.c: the HTTP front of `quotatop serve` (see proxy.h for the contract).
 *
 * DESIGN
 * libmicrohttpd runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION),
 * so a request thread may block. A chat request goes:
 *
 *   first call       route, auth, Content-Length check; early 4xx answers
 *   body calls       append to r->body (at most proxy.max_body_bytes)
 *   last call        parse -> job (id "px-N", workflow/priority from headers)
 *                    -> backpressure (queue depth, estimated wait) -> submit
 *                    -> sleep on r->efd + the socket until the result (or, for
 *                    a stream, the first chunk) arrives or the client hangs up
 *                    -> answer: JSON, an OpenAI error, or an SSE response whose
 *                    content reader sleeps the same way between chunks.
 *
 * Ownership: a request (px_req) is reference counted: one reference for the
 * connection (dropped in notify_completed), one for the job while the engine
 * holds it (dropped at the end of qt_proxy_on_result), one for a streamed
 * response (dropped by its free callback). r->mu guards what the worker
 * thread and the connection thread share. Lock order: never call the engine
 * while holding r->mu (qt_engine_cancel and qt_engine_submit may call
 * qt_proxy_on_result on the calling thread, which takes r->mu).
 *
 * Disconnects: while the request thread sleeps, POLLRDHUP on the client's
 * socket says it hung up; the thread returns MHD_NO and notify_completed
 * cancels the job (queued: removed at once; held by a worker: flagged, and a
 * streamed transfer is aborted at its next byte; on_chunk also refuses).
 *
 * Timeouts: MHD_OPTION_CONNECTION_TIMEOUT closes connections that are idle
 * or trickle their request. While quotatop itself makes the client wait
 * (queue, limiter, upstream), the connection's timeout is set to 0 and
 * re-armed afterwards (re-arming from 0 restarts its timer).
 */
#include "quotatop/proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cJSON.h>
#include <microhttpd.h>

#include "proxy_int.h"
#include "quotatop/clock.h"

#define PX_STREAM_BUF_MAX (8u << 20)   /* SSE bytes a slow client may leave unread */
#define PX_STACK_SIZE (512u * 1024)

struct qt_proxy {
    const qt_config *cfg;
    qt_engine *engine;
    char *token;                    /* NULL = no auth */
    unsigned idle_timeout_s;
    int verbose;
    char listen[300];
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int loopback;
    int port;
    char base_url[340];
    int listen_fd;                  /* ours until MHD owns it; -1 after quiesce */
    struct MHD_Daemon *daemon;
    int64_t started_s;              /* wall seconds, for "created" of models */
    uint64_t next_id;               /* atomic */
    int64_t answering;              /* atomic: submitted requests whose answer is not
                                       complete yet (qt_proxy_stop lets them finish) */
    qt_proxy_stats st;              /* fields updated with __atomic */
};

typedef enum { RT_NONE = 0, RT_CHAT, RT_MODELS, RT_MODEL, RT_METRICS, RT_HEALTH } px_route;

typedef struct px_req {
    qt_proxy *px;
    struct MHD_Connection *conn;
    int sock;                       /* the client's socket */
    px_route route;
    const char *model_path;         /* RT_MODEL: the id in the URL (MHD's memory) */
    int early;                      /* an answer was queued at the first call */
    px_buf body;
    int too_big;
    uint64_t t0;
    int status_sent;                /* for the access log */

    /* set before submit, read by the worker */
    char id[32];
    int stream, include_usage;
    qt_stream_sink sink;
    const qt_job *job;              /* valid while the engine holds it (worker side only) */
    int efd;                        /* eventfd: the worker wakes the connection thread */

    pthread_mutex_t mu;             /* guards everything below */
    int refs;
    int submitted;                  /* the engine has (had) the job */
    int client_gone;
    int have_result;
    int chunks;                     /* chunks forwarded */
    int stream_started;             /* the SSE response was queued */
    px_buf out;                     /* SSE bytes not yet sent, from out_off */
    size_t out_off;
    long first_queued_ms;           /* at the first chunk */
    qt_status status;
    char *error, *model_used, *openai_json, *content;
    int attempts, cached, http_status;
    long queued_ms, prompt_tokens, completion_tokens;
} px_req;

/* ------------------------------------------------------------ counters */

static void count(uint64_t *c, uint64_t n) { __atomic_add_fetch(c, n, __ATOMIC_RELAXED); }
static void gauge(int64_t *g, int64_t d) { __atomic_add_fetch(g, d, __ATOMIC_RELAXED); }

void qt_proxy_stats_get(const qt_proxy *p, qt_proxy_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!p)
        return;
    for (size_t i = 0; i < QT_ARRAY_LEN(out->responses); i++)
        out->responses[i] = __atomic_load_n(&p->st.responses[i], __ATOMIC_RELAXED);
    out->rejected_queue_full = __atomic_load_n(&p->st.rejected_queue_full, __ATOMIC_RELAXED);
    out->rejected_wait = __atomic_load_n(&p->st.rejected_wait, __ATOMIC_RELAXED);
    out->gone_queued = __atomic_load_n(&p->st.gone_queued, __ATOMIC_RELAXED);
    out->gone_streaming = __atomic_load_n(&p->st.gone_streaming, __ATOMIC_RELAXED);
    out->connections = __atomic_load_n(&p->st.connections, __ATOMIC_RELAXED);
    out->streams = __atomic_load_n(&p->st.streams, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ requests */

static px_req *req_new(qt_proxy *px, struct MHD_Connection *c)
{
    px_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->efd < 0) {
        free(r);
        return NULL;
    }
    r->px = px;
    r->conn = c;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->sock = ci ? ci->connect_fd : -1;
    r->refs = 1;
    r->t0 = qt_now_ms();
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static void req_unref(px_req *r)
{
    pthread_mutex_lock(&r->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&r->mu);
    if (left > 0)
        return;
    close(r->efd);
    pthread_mutex_destroy(&r->mu);
    px_buf_free(&r->body);
    px_buf_free(&r->out);
    free(r->error);
    free(r->model_used);
    free(r->openai_json);
    free(r->content);
    free(r);
}

/* Wakes the connection thread. Called with r->mu held. */
static void req_wake(px_req *r)
{
    uint64_t one = 1;
    ssize_t n = write(r->efd, &one, sizeof one);
    (void)n;   /* EAGAIN: the counter is already nonzero, the thread wakes anyway */
}

/* Sleeps until ready(r) holds (checked under r->mu) or the client hangs up.
 * Returns 1 when ready, 0 when the client is gone (r->client_gone set). The
 * connection's idle timeout is off while quotatop makes the client wait. */
static int req_wait(px_req *r, int (*ready)(const px_req *))
{
    MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    int ok = 0;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        ok = ready(r);
        int gone = r->client_gone;
        pthread_mutex_unlock(&r->mu);
        if (ok || gone)
            break;
        struct pollfd pf[2] = { { .fd = r->efd, .events = POLLIN },
                                { .fd = r->sock, .events = POLLRDHUP } };
        int n = poll(pf, r->sock >= 0 ? 2 : 1, 1000);
        if (n < 0 && errno != EINTR)
            break;
        if (pf[0].revents & POLLIN) {
            uint64_t v;
            ssize_t rd = read(r->efd, &v, sizeof v);
            (void)rd;
        }
        if (r->sock >= 0 && (pf[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
            pthread_mutex_lock(&r->mu);
            ok = ready(r);   /* an answer that arrived with the hang-up still counts */
            if (!ok)
                r->client_gone = 1;
            pthread_mutex_unlock(&r->mu);
            break;
        }
    }
    MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT, r->px->idle_timeout_s);
    return ok;
}

static int ready_result(const px_req *r) { return r->have_result; }
static int ready_first_byte(const px_req *r) { return r->have_result || r->chunks > 0; }
static int ready_out(const px_req *r)
{
    return r->out.len > r->out_off || r->have_result || r->client_gone;
}

/* ------------------------------------------------------------ answers */

static void log_line(px_req *r, const char *method, const char *url, unsigned status)
{
    if (!r || !r->px->verbose)
        return;
    fprintf(stderr, "quotatop serve: %s %s %u %s %llums\n", method, url, status,
            r->id[0] ? r->id : "-", (unsigned long long)(qt_now_ms() - r->t0));
}

/* Queues a JSON answer (takes ownership of body; NULL = out of memory). */
static enum MHD_Result answer_json(px_req *r, struct MHD_Connection *c, unsigned status, char *body,
                                   const char *const *headers)
{
    qt_proxy *px = r ? r->px : NULL;
    if (!body) {
        status = 500;
        body = px_error_json("quotatop: out of memory", "server_error", NULL, NULL);
        if (!body)
            return MHD_NO;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body,
                                                                MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES && px)
        count(&px->st.responses[status < 600 ? status : 599], 1);
    if (r)
        r->status_sent = (int)status;
    return ok;
}

static enum MHD_Result answer_error(px_req *r, struct MHD_Connection *c, unsigned status,
                                    const char *type, const char *code, const char *param,
                                    const char *const *headers, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static enum MHD_Result answer_error(px_req *r, struct MHD_Connection *c, unsigned status,
                                    const char *type, const char *code, const char *param,
                                    const char *const *headers, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return answer_json(r, c, status, px_error_json(msg, type, param, code), headers);
}

/* ------------------------------------------------------------ engine side */

/* The sink of a streamed job (worker thread). */
static int on_chunk(void *ud, const char *json, size_t len)
{
    px_req *r = ud;
    int stop = 0;
    pthread_mutex_lock(&r->mu);
    if (r->client_gone) {
        stop = 1;
    } else if (!r->include_usage && px_chunk_is_usage_only(json, len)) {
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
        if (px_buf_add(&r->out, "data: ", 6) || px_buf_add(&r->out, json, len)
            || px_buf_add(&r->out, "\n\n", 2)) {
            r->client_gone = 1;
            stop = 1;
        }
        r->chunks++;
        req_wake(r);
    }
    pthread_mutex_unlock(&r->mu);
    return stop;
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
    if (r->stream && !r->client_gone) {
        if (r->out_off == r->out.len)
            r->out.len = r->out_off = 0;
        if (res->status == QT_STATUS_OK) {
            if (r->chunks == 0)   /* answered without a stream (the response cache) */
                px_sse_from_content(&r->out, r->id, res->model_used ? res->model_used : job->model,
                                    qt_wall_ms() / 1000, res->content, res->prompt_tokens,
                                    res->completion_tokens, r->include_usage);
            /* SSE comments are ignored by clients; this one tells humans. */
            px_buf_addf(&r->out, ": quotatop model_used=%s attempts=%d queued_ms=%ld\n\n",
                        res->model_used ? res->model_used : "-", res->attempts, res->queued_ms);
            px_buf_adds(&r->out, "data: [DONE]\n\n");
        } else if (r->chunks > 0) {
            /* The answer broke after the first byte: no retry is possible
             * any more, so the client gets OpenAI's in-stream error event. */
            char msg[600];
            snprintf(msg, sizeof msg, "quotatop: the stream broke: %.500s",
                     res->error ? res->error : "unknown error");
            char *ej = px_error_json(msg, "server_error", NULL, "stream_broken");
            if (ej) {
                px_buf_addf(&r->out, "data: %s\n\n", ej);
                free(ej);
            }
        }
    }
    r->have_result = 1;
    req_wake(r);
    pthread_mutex_unlock(&r->mu);
    req_unref(r);
}

/* ------------------------------------------------------------ streamed answers */

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    px_req *r = cls;
    if (!req_wait(r, ready_out)) {
        count(&r->px->st.gone_streaming, 1);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    pthread_mutex_lock(&r->mu);
    ssize_t n;
    if (r->out.len > r->out_off) {
        size_t k = r->out.len - r->out_off;
        if (k > max)
            k = max;
        memcpy(buf, r->out.s + r->out_off, k);
        r->out_off += k;
        n = (ssize_t)k;
    } else if (r->client_gone) {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    } else {
        n = MHD_CONTENT_READER_END_OF_STREAM;   /* have_result and all sent */
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void sse_free(void *cls)
{
    px_req *r = cls;
    gauge(&r->px->st.streams, -1);
    req_unref(r);
}

static enum MHD_Result answer_stream(px_req *r, struct MHD_Connection *c)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                                  sse_reader, r, sse_free);
    if (!resp)
        return MHD_NO;
    pthread_mutex_lock(&r->mu);
    r->refs++;                    /* the response's reference, dropped by sse_free */
    r->stream_started = 1;
    long q = r->have_result ? r->queued_ms : r->first_queued_ms;
    pthread_mutex_unlock(&r->mu);
    gauge(&r->px->st.streams, 1);
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
        count(&r->px->st.responses[200], 1);
    r->status_sent = 200;
    return ok;
}

/* ------------------------------------------------------------ chat completions */

/* Maps a finished non-ok job to its HTTP answer. */
static enum MHD_Result answer_failure(px_req *r, struct MHD_Connection *c, const char *const *h)
{
    const char *why = r->error ? r->error : "unknown error";
    switch (r->status) {
    case QT_STATUS_REJECTED: {
        /* Not a 429: SDKs would retry it, and waiting does not refill a
         * budget. x-should-retry: false tells the OpenAI SDKs so. */
        const char *hh[16];
        size_t n = 0;
        for (size_t i = 0; h && h[i] && h[i + 1] && n + 4 < QT_ARRAY_LEN(hh); i += 2) {
            hh[n++] = h[i];
            hh[n++] = h[i + 1];
        }
        hh[n++] = "x-should-retry";
        hh[n++] = "false";
        hh[n] = hh[n + 1] = NULL;
        return answer_error(r, c, 402, "insufficient_quota", "budget_exhausted", NULL, hh,
                            "quotatop: budget exhausted: %s", why);
    }
    case QT_STATUS_CANCELLED:
        return answer_error(r, c, 503, "server_error", "cancelled", NULL, h,
                            "quotatop: the request was cancelled before it was answered: %s", why);
    case QT_STATUS_INVALID:
        return answer_error(r, c, 400, "invalid_request_error", NULL, NULL, h, "%s", why);
    default: {
        /* Failed. An upstream 4xx about the request itself is the client's
         * to fix (same status, so SDKs raise BadRequestError and do not
         * retry); anything else is the upstream's or quotatop's: 502 when
         * an upstream answered, 503 when none could be reached. */
        int us = r->http_status >= 400 ? r->http_status : px_upstream_status_of(r->error);
        if (us == 400 || us == 404 || us == 413 || us == 422)
            return answer_error(r, c, (unsigned)us, "invalid_request_error", "upstream_rejected", NULL,
                                h, "upstream rejected the request: %s", why);
        if (us > 0)
            return answer_error(r, c, 502, "upstream_error", "upstream_failed", NULL, h,
                                "quotatop: upstream failed: %s", why);
        return answer_error(r, c, 503, "server_error", "no_upstream_available", NULL, h,
                            "quotatop: no upstream could answer: %s", why);
    }
    }
}

static const char *hdr(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
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

static enum MHD_Result chat(px_req *r, struct MHD_Connection *c)
{
    qt_proxy *px = r->px;
    const qt_config *cfg = px->cfg;
    if (r->too_big)
        return answer_error(r, c, 413, "invalid_request_error", "request_too_large", NULL, NULL,
                            "request body is larger than proxy.max_body_bytes (%ld bytes)",
                            cfg->proxy.max_body_bytes);

    /* Headers first: they need no parsing of the body. */
    const char *wf = hdr(c, "X-Quotatop-Workflow");
    const char *pr = hdr(c, "X-Quotatop-Priority");
    int prio = cfg->proxy.default_priority;
    if (wf && !workflow_ok(wf))
        return answer_error(r, c, 400, "invalid_request_error", "invalid_workflow", NULL, NULL,
                            "X-Quotatop-Workflow must be 1 to 63 printable characters without spaces");
    if (pr) {
        char *end;
        long v = strtol(pr, &end, 10);
        if (!*pr || *end || v < 1 || v > 10)
            return answer_error(r, c, 400, "invalid_request_error", "invalid_priority", NULL, NULL,
                                "X-Quotatop-Priority must be a whole number from 1 (most urgent) to 10");
        prio = (int)v;
    }

    const char *end = NULL;
    cJSON *body = r->body.len ? cJSON_ParseWithLengthOpts(r->body.s, r->body.len, &end, 0) : NULL;
    if (!cJSON_IsObject(body)) {
        int parsed = body != NULL;
        size_t at = end && r->body.s && end >= r->body.s ? (size_t)(end - r->body.s) : 0;
        cJSON_Delete(body);
        if (!r->body.len)
            return answer_error(r, c, 400, "invalid_request_error", "invalid_json", NULL, NULL,
                                "the request has no body: send a JSON object");
        if (parsed)
            return answer_error(r, c, 400, "invalid_request_error", "invalid_json", NULL, NULL,
                                "the request body must be a JSON object");
        return answer_error(r, c, 400, "invalid_request_error", "invalid_json", NULL, NULL,
                            "the request body is not valid JSON (near byte %zu)", at);
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (!model) {
        cJSON_Delete(body);
        return answer_error(r, c, 400, "invalid_request_error", "missing_required_parameter", "model",
                            NULL, "you must provide a model parameter");
    }
    if (cJSON_IsString(model) && qt_config_model_index(cfg, model->valuestring) < 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "The model `%.100s` does not exist (not in quotatop's config; "
                 "GET /v1/models lists them)", model->valuestring);
        cJSON_Delete(body);
        return answer_error(r, c, 404, "invalid_request_error", "model_not_found", "model", NULL,
                            "%s", msg);
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(body, "stream");
    if (st && !cJSON_IsBool(st) && !cJSON_IsNull(st)) {
        cJSON_Delete(body);
        return answer_error(r, c, 400, "invalid_request_error", "invalid_type", "stream", NULL,
                            "\"stream\" must be a boolean");
    }
    r->stream = cJSON_IsTrue(st);
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    r->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    int max_tokens = 0;
    const cJSON *mct = cJSON_GetObjectItemCaseSensitive(body, "max_completion_tokens");
    if (cJSON_IsNumber(mct) && mct->valuedouble >= 1 && mct->valuedouble <= 1e7)
        max_tokens = (int)mct->valuedouble;

    /* quotatop's own job fields come from headers, never from the body. */
    snprintf(r->id, sizeof r->id, "px-%llu",
             (unsigned long long)__atomic_add_fetch(&px->next_id, 1, __ATOMIC_RELAXED));
    cJSON_DeleteItemFromObjectCaseSensitive(body, "id");
    cJSON_DeleteItemFromObjectCaseSensitive(body, "workflow");
    cJSON_DeleteItemFromObjectCaseSensitive(body, "priority");
    cJSON_AddStringToObject(body, "id", r->id);

    qt_job *job = NULL;
    char err[300];
    if (qt_job_from_json(body, 0, cfg, &job, NULL, NULL, err, sizeof err) != QT_OK)
        return answer_error(r, c, 400, "invalid_request_error", "invalid_request", NULL, NULL, "%s", err);
    const char *wname = wf ? wf : cfg->proxy.default_workflow ? cfg->proxy.default_workflow : "default";
    char *w = strdup(wname);
    if (!w) {
        qt_job_free(job);
        return answer_json(r, c, 500, NULL, NULL);
    }
    free(job->workflow);
    job->workflow = w;
    job->priority = prio;
    if (job->max_tokens == 0 && max_tokens > 0)
        job->max_tokens = max_tokens;

    /* Backpressure: a bounded queue, and no promise we cannot keep. */
    qt_engine *e = px->engine;
    size_t depth = qt_engine_queue_depth(e);
    uint64_t wait = qt_engine_estimate_wait_ms(e, job->model_idx, job->prompt_chars, job->max_tokens);
    int full = (long)depth >= cfg->proxy.max_queue;
    int too_long = wait != UINT64_MAX && wait > (uint64_t)cfg->proxy.max_wait_ms;
    if (full || too_long) {
        /* Retry when the wait would fit the client's patience again. */
        uint64_t ra_ms = wait == UINT64_MAX ? 1000
                         : too_long ? wait - (uint64_t)cfg->proxy.max_wait_ms : wait;
        if (ra_ms < 1000)
            ra_ms = 1000;
        char ra[32], ram[32];
        snprintf(ra, sizeof ra, "%llu", (unsigned long long)((ra_ms + 999) / 1000));
        snprintf(ram, sizeof ram, "%llu", (unsigned long long)ra_ms);
        const char *h[] = { "retry-after", ra, "retry-after-ms", ram, NULL, NULL };
        count(full ? &px->st.rejected_queue_full : &px->st.rejected_wait, 1);
        char model_name[100];
        snprintf(model_name, sizeof model_name, "%s", job->model);
        qt_job_free(job);
        if (full)
            return answer_error(r, c, 429, "requests", "queue_full", NULL, h,
                                "quotatop: the queue is full (%zu requests, proxy.max_queue %ld); "
                                "retry after %s s", depth, cfg->proxy.max_queue, ra);
        return answer_error(r, c, 429, "requests", "rate_limit_exceeded", NULL, h,
                            "quotatop: rate limit of %s: the estimated wait of %llu ms exceeds "
                            "proxy.max_wait_ms (%ld ms); retry after %s s", model_name,
                            (unsigned long long)wait, cfg->proxy.max_wait_ms, ra);
    }

    r->sink.on_chunk = on_chunk;
    r->sink.ud = r;
    job->stream = r->stream ? &r->sink : NULL;
    job->user = r;
    r->job = job;
    pthread_mutex_lock(&r->mu);
    r->refs++;                    /* the job's reference, dropped by qt_proxy_on_result */
    r->submitted = 1;
    pthread_mutex_unlock(&r->mu);
    gauge(&px->answering, 1);     /* until notify_completed */
    qt_engine_submit(e, job);     /* may answer at once (shutting down) */

    if (!req_wait(r, r->stream ? ready_first_byte : ready_result)) {
        count(&px->st.gone_queued, 1);
        return MHD_NO;            /* notify_completed cancels the job */
    }
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
                               : px_completion_json(r->id, r->model_used, qt_wall_ms() / 1000, r->content,
                                                    r->prompt_tokens, r->completion_tokens);
    return answer_json(r, c, 200, out, h);
}

/* ------------------------------------------------------------ other endpoints */

static enum MHD_Result health(px_req *r, struct MHD_Connection *c)
{
    qt_engine *e = r->px->engine;
    char *s = NULL;
    int n = asprintf(&s, "{\"status\":\"ok\",\"queue_depth\":%zu,\"in_flight\":%d,\"paused\":%s}",
                     qt_engine_queue_depth(e), qt_engine_in_flight(e),
                     qt_engine_paused(e) ? "true" : "false");
    return answer_json(r, c, 200, n < 0 ? NULL : s, NULL);
}

static enum MHD_Result metrics(px_req *r, struct MHD_Connection *c)
{
    qt_proxy_stats ps;
    qt_proxy_stats_get(r->px, &ps);
    char *text = qt_proxy_metrics_text(r->px->engine, r->px->cfg, &ps);
    if (!text)
        return answer_json(r, c, 500, NULL, NULL);
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ok = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    count(&r->px->st.responses[200], 1);
    r->status_sent = 200;
    return ok;
}

/* ------------------------------------------------------------ dispatch */

static px_route route_of(const char *url, const char **model_path)
{
    if (!strcmp(url, "/v1/chat/completions"))
        return RT_CHAT;
    if (!strcmp(url, "/v1/models"))
        return RT_MODELS;
    if (!strncmp(url, "/v1/models/", 11) && url[11]) {
        *model_path = url + 11;
        return RT_MODEL;
    }
    if (!strcmp(url, "/metrics"))
        return RT_METRICS;
    if (!strcmp(url, "/healthz"))
        return RT_HEALTH;
    return RT_NONE;
}

/* 1 when the request carries the bearer token (or none is required). */
static int authorized(qt_proxy *px, struct MHD_Connection *c)
{
    if (!px->token)
        return 1;
    const char *a = hdr(c, "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7))
        return 0;
    a += 7;
    while (*a == ' ')
        a++;
    return qt_proxy_token_equal(a, strlen(a), px->token);
}

/* The answers that need only the request line and headers: unknown path,
 * wrong method, missing token, declared body too large. Returns 1 when one
 * was queued (r->early then says whether queueing worked). */
static int answer_from_headers(px_req *r, struct MHD_Connection *c, const char *method,
                               const char *url)
{
    qt_proxy *px = r->px;
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    enum MHD_Result ok;
    if (r->route == RT_NONE) {
        ok = answer_error(r, c, 404, "invalid_request_error", "unknown_url", NULL, NULL,
                          "Unknown request URL: %s %.200s. quotatop serves POST /v1/chat/completions, "
                          "GET /v1/models, GET /metrics and GET /healthz", method, url);
    } else if (r->route == RT_CHAT ? strcmp(method, "POST") : !get) {
        const char *allow = r->route == RT_CHAT ? "POST" : "GET, HEAD";
        const char *h[] = { "Allow", allow, NULL, NULL };
        ok = answer_error(r, c, 405, "invalid_request_error", "method_not_allowed", NULL, h,
                          "%s is not allowed on %.200s (use %s)", method, url, allow);
    } else if (r->route != RT_HEALTH && !authorized(px, c)) {
        const char *h[] = { "WWW-Authenticate", "Bearer realm=\"quotatop\"", NULL, NULL };
        ok = answer_error(r, c, 401, "invalid_request_error", "invalid_api_key", NULL, h,
                          "Incorrect or missing bearer token: send the token of quotatop's "
                          "proxy.token_env in an Authorization: Bearer header");
    } else if (r->route == RT_CHAT && hdr(c, "Content-Length")
               && strtoull(hdr(c, "Content-Length"), NULL, 10)
                      > (unsigned long long)px->cfg->proxy.max_body_bytes) {
        ok = answer_error(r, c, 413, "invalid_request_error", "request_too_large", NULL, NULL,
                          "request body is larger than proxy.max_body_bytes (%ld bytes)",
                          px->cfg->proxy.max_body_bytes);
    } else {
        return 0;
    }
    r->early = ok == MHD_YES ? 1 : -1;
    log_line(r, method, url, (unsigned)r->status_sent);
    return 1;
}

static int has_body(struct MHD_Connection *c)
{
    const char *cl = hdr(c, "Content-Length");
    return (cl && strtoull(cl, NULL, 10) > 0) || hdr(c, "Transfer-Encoding");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls)
{
    (void)version;
    qt_proxy *px = cls;
    px_req *r = *req_cls;
    if (!r) {
        r = req_new(px, c);
        if (!r)
            return MHD_NO;
        *req_cls = r;
        r->route = route_of(url, &r->model_path);
        /* With a body coming, answer before reading it (MHD then closes
         * the connection); without one, answer at the last call so the
         * connection stays usable. */
        if (has_body(c) && answer_from_headers(r, c, method, url))
            return r->early > 0 ? MHD_YES : MHD_NO;
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* Bodies of early answers and of other routes are read and dropped. */
        if (!r->early && r->route == RT_CHAT && !r->too_big) {
            if (r->body.len + *upload_data_size > (size_t)px->cfg->proxy.max_body_bytes) {
                r->too_big = 1;
                px_buf_free(&r->body);
            } else if (px_buf_add(&r->body, upload_data, *upload_data_size)) {
                return MHD_NO;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->early)
        return MHD_YES;   /* already answered at the first call */
    if (answer_from_headers(r, c, method, url))
        return r->early > 0 ? MHD_YES : MHD_NO;
    enum MHD_Result ok;
    switch (r->route) {
    case RT_CHAT:
        ok = chat(r, c);
        break;
    case RT_MODELS:
        ok = answer_json(r, c, 200, px_models_json(px->cfg, px->started_s), NULL);
        break;
    case RT_MODEL: {
        char *m = px_model_json(px->cfg, r->model_path, px->started_s);
        ok = m ? answer_json(r, c, 200, m, NULL)
               : answer_error(r, c, 404, "invalid_request_error", "model_not_found", "model", NULL,
                              "The model `%.100s` does not exist", r->model_path);
        break;
    }
    case RT_METRICS:
        ok = metrics(r, c);
        break;
    case RT_HEALTH:
        ok = health(r, c);
        break;
    default:
        ok = MHD_NO;
    }
    log_line(r, method, url, (unsigned)r->status_sent);
    return ok;
}

static void notify_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                             enum MHD_RequestTerminationCode toe)
{
    (void)c;
    qt_proxy *px = cls;
    px_req *r = *req_cls;
    if (!r)
        return;
    *req_cls = NULL;
    pthread_mutex_lock(&r->mu);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        r->client_gone = 1;
    /* Once chunks flow, on_chunk refuses the next one (the worker then
     * aborts the transfer and records the job `cancelled`); a cancel flag
     * would make the engine call the broken stream a failure. */
    int cancel = r->submitted && !r->have_result && r->chunks == 0;
    pthread_mutex_unlock(&r->mu);
    /* The client is gone before its answer began: a queued job is removed
     * (its reservation never taken), a held one flagged. */
    if (cancel)
        qt_engine_cancel(px->engine, r->id);
    if (r->submitted)
        gauge(&px->answering, -1);
    req_unref(r);
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                              enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    (void)socket_ctx;
    qt_proxy *px = cls;
    gauge(&px->st.connections, code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

/* ------------------------------------------------------------ lifecycle */

/* libmicrohttpd's own messages ("closing connection ...") go to stderr only
 * with --verbose: on a dashboard they would tear the screen. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    qt_proxy *px = cls;
    if (!px->verbose)
        return;
    fputs("quotatop serve: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

qt_proxy *qt_proxy_new(const qt_proxy_opts *o, char *err, size_t errlen)
{
    const char *listen = o->listen ? o->listen : o->cfg->proxy.listen;
    qt_proxy *px = calloc(1, sizeof *px);
    if (!px) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    px->cfg = o->cfg;
    px->listen_fd = -1;
    px->idle_timeout_s = o->idle_timeout_s ? o->idle_timeout_s : QT_PROXY_IDLE_TIMEOUT_S;
    px->verbose = o->verbose;
    snprintf(px->listen, sizeof px->listen, "%s", listen ? listen : "127.0.0.1:8787");
    if (o->token && *o->token && !(px->token = strdup(o->token))) {
        snprintf(err, errlen, "out of memory");
        free(px);
        return NULL;
    }
    char why[300];
    if (px_resolve_listen(px->listen, &px->addr, &px->addrlen, &px->loopback, why, sizeof why)) {
        snprintf(err, errlen, "listen address: %s", why);
        qt_proxy_free(px);
        return NULL;
    }
    if (!px->loopback && !px->token) {
        snprintf(err, errlen,
                 "refusing to listen on %s (not a loopback address) without a token: set "
                 "proxy.token_env in the config to a variable holding one, or listen on 127.0.0.1",
                 px->listen);
        qt_proxy_free(px);
        return NULL;
    }
    return px;
}

qt_err qt_proxy_start(qt_proxy *px, qt_engine *e, char *err, size_t errlen)
{
    px->engine = e;
    px->started_s = (int64_t)(qt_wall_ms() / 1000);
    int fd = socket(px->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)
        || bind(fd, (struct sockaddr *)&px->addr, px->addrlen) || listen(fd, 512)) {
        snprintf(err, errlen, "cannot listen on %s: %s", px->listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        return QT_ERR_IO;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &bl) == 0)
        px->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                     : ((struct sockaddr_in *)&bound)->sin_port);
    char host[sizeof px->listen];
    memcpy(host, px->listen, sizeof host);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    snprintf(px->base_url, sizeof px->base_url, "http://%s:%d/v1", host[0] ? host : "0.0.0.0",
             px->port);

    /* One thread per connection: bounded by the queue plus what workers hold. */
    long limit = px->cfg->proxy.max_queue + 256;
    if (limit > 20000)
        limit = 20000;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG
                     | MHD_USE_ITC;
    if (px->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    px->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handler, px,
                                  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, px,
                                  MHD_OPTION_LISTEN_SOCKET, fd,
                                  MHD_OPTION_CONNECTION_TIMEOUT, px->idle_timeout_s,
                                  MHD_OPTION_NOTIFY_COMPLETED, notify_completed, px,
                                  MHD_OPTION_NOTIFY_CONNECTION, notify_connection, px,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)limit,
                                  MHD_OPTION_THREAD_STACK_SIZE, (size_t)PX_STACK_SIZE,
                                  MHD_OPTION_END);
    if (!px->daemon) {
        snprintf(err, errlen, "cannot start the HTTP server on %s", px->listen);
        close(fd);
        return QT_ERR_IO;
    }
    px->listen_fd = fd;
    return QT_OK;
}

int qt_proxy_port(const qt_proxy *p) { return p ? p->port : 0; }

const char *qt_proxy_base_url(const qt_proxy *p) { return p->base_url; }

void qt_proxy_quiesce(qt_proxy *p)
{
    if (!p || !p->daemon || p->listen_fd < 0)
        return;
    MHD_socket fd = MHD_quiesce_daemon(p->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    p->listen_fd = -1;
}

void qt_proxy_stop(qt_proxy *p)
{
    if (!p || !p->daemon)
        return;
    qt_proxy_quiesce(p);   /* the listening socket comes back to us and is closed */
    /* Jobs have their results by now (qt_engine_shutdown); let the request
     * threads finish writing those answers (a 503, the end of a stream)
     * before MHD cuts the connections. */
    uint64_t deadline = qt_now_ms() + 3000;
    while (__atomic_load_n(&p->answering, __ATOMIC_RELAXED) > 0 && qt_now_ms() < deadline)
        usleep(10000);
    MHD_stop_daemon(p->daemon);
    p->daemon = NULL;
}

void qt_proxy_free(qt_proxy *p)
{
    if (!p)
        return;
    qt_proxy_stop(p);
    if (p->token) {
        memset(p->token, 0, strlen(p->token));
        free(p->token);
    }
    free(p);
}
