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
 *
 * Files: this one holds the server (setup, shutdown), routing, auth, the
 * small endpoints (models, /healthz, /metrics) and the request object;
 * proxy_chat.c holds the chat path (parse, backpressure, submit, the sleeps,
 * the engine's callbacks, the SSE reader); proxy_int.h the structs and
 * answer helpers both use; proxy_json.c and proxy_metrics.c the bodies.
 */
#include "quotatop/proxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "proxy_int.h"
#include "quotatop/clock.h"

#define PX_STACK_SIZE (512u * 1024)

/* ------------------------------------------------------------ counters */

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

void px_req_unref(px_req *r)
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

/* ------------------------------------------------------------ answers */

static void log_line(px_req *r, const char *method, const char *url, unsigned status)
{
    if (!r || !r->px->verbose)
        return;
    fprintf(stderr, "quotatop serve: %s %s %u %s %llums\n", method, url, status,
            r->id[0] ? r->id : "-", (unsigned long long)(qt_now_ms() - r->t0));
}

/* Queues a JSON answer (takes ownership of body; NULL = out of memory). */
enum MHD_Result px_answer_json(px_req *r, struct MHD_Connection *c, unsigned status, char *body,
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
        px_count(&px->st.responses[status < 600 ? status : 599], 1);
    if (r)
        r->status_sent = (int)status;
    return ok;
}

enum MHD_Result px_answer_error(px_req *r, struct MHD_Connection *c, unsigned status,
                                const char *type, const char *code, const char *param,
                                const char *const *headers, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return px_answer_json(r, c, status, px_error_json(msg, type, param, code), headers);
}

const char *px_hdr(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* ------------------------------------------------------------ other endpoints */

static enum MHD_Result health(px_req *r, struct MHD_Connection *c)
{
    qt_engine *e = r->px->engine;
    char *s = NULL;
    int n = asprintf(&s, "{\"status\":\"ok\",\"queue_depth\":%zu,\"in_flight\":%d,\"paused\":%s}",
                     qt_engine_queue_depth(e), qt_engine_in_flight(e),
                     qt_engine_paused(e) ? "true" : "false");
    return px_answer_json(r, c, 200, n < 0 ? NULL : s, NULL);
}

static enum MHD_Result metrics(px_req *r, struct MHD_Connection *c)
{
    qt_proxy_stats ps;
    qt_proxy_stats_get(r->px, &ps);
    char *text = qt_proxy_metrics_text(r->px->engine, r->px->cfg, &ps);
    if (!text)
        return px_answer_json(r, c, 500, NULL, NULL);
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ok = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    px_count(&r->px->st.responses[200], 1);
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
    const char *a = px_hdr(c, "Authorization");
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
        ok = px_answer_error(r, c, 404, "invalid_request_error", "unknown_url", NULL, NULL,
                             "Unknown request URL: %s %.200s. quotatop serves POST /v1/chat/completions, "
                             "GET /v1/models, GET /metrics and GET /healthz", method, url);
    } else if (r->route == RT_CHAT ? strcmp(method, "POST") : !get) {
        const char *allow = r->route == RT_CHAT ? "POST" : "GET, HEAD";
        const char *h[] = { "Allow", allow, NULL, NULL };
        ok = px_answer_error(r, c, 405, "invalid_request_error", "method_not_allowed", NULL, h,
                             "%s is not allowed on %.200s (use %s)", method, url, allow);
    } else if (r->route != RT_HEALTH && !authorized(px, c)) {
        const char *h[] = { "WWW-Authenticate", "Bearer realm=\"quotatop\"", NULL, NULL };
        ok = px_answer_error(r, c, 401, "invalid_request_error", "invalid_api_key", NULL, h,
                             "Incorrect or missing bearer token: send the token of quotatop's "
                             "proxy.token_env in an Authorization: Bearer header");
    } else if (r->route == RT_CHAT && px_hdr(c, "Content-Length")
               && strtoull(px_hdr(c, "Content-Length"), NULL, 10)
                      > (unsigned long long)px->cfg->proxy.max_body_bytes) {
        ok = px_answer_error(r, c, 413, "invalid_request_error", "request_too_large", NULL, NULL,
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
    const char *cl = px_hdr(c, "Content-Length");
    return (cl && strtoull(cl, NULL, 10) > 0) || px_hdr(c, "Transfer-Encoding");
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
        ok = px_chat(r, c);
        break;
    case RT_MODELS:
        ok = px_answer_json(r, c, 200, px_models_json(px->cfg, px->started_s), NULL);
        break;
    case RT_MODEL: {
        char *m = px_model_json(px->cfg, r->model_path, px->started_s);
        ok = m ? px_answer_json(r, c, 200, m, NULL)
               : px_answer_error(r, c, 404, "invalid_request_error", "model_not_found", "model", NULL,
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
        px_gauge(&px->answering, -1);
    px_req_unref(r);
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                              enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    (void)socket_ctx;
    qt_proxy *px = cls;
    px_gauge(&px->st.connections, code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
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
