/* proxy.c: the HTTP front of `quotatop serve` (see proxy.h for the contract).
 *
 * DESIGN
 * libmicrohttpd runs on the engine's loops, one external-epoll daemon per
 * loop, each with its own SO_REUSEPORT listening socket (proxy_drive.c;
 * opts.threads: MHD's own pool of epoll threads instead), with
 * MHD_ALLOW_SUSPEND_RESUME: no handler ever blocks (nor waits for a loop:
 * it runs on one). A chat request goes:
 *
 *   first call       route, auth, Content-Length check; early 4xx answers
 *   body calls       append to r->body (at most proxy.max_body_bytes)
 *   last call        parse -> job (id "px-N", workflow/priority from headers)
 *                    -> backpressure (queue depth, estimated wait) -> submit
 *                    -> suspend the connection (proxy_chat.c)
 *   engine loop      on_result / the stream sink store the result or chunk
 *                    under r->mu and resume the connection (px_wake: a run
 *                    of MHD posted to the connection's loop)
 *   call on resume   answer: JSON, an OpenAI error, or an SSE response whose
 *                    content reader suspends again while no chunk is there.
 *
 * Ownership: a request (px_req, proxy_req.c) is reference counted: one
 * reference for the connection (dropped in notify_completed), one for the
 * job while the engine holds it (dropped at the end of qt_proxy_on_result),
 * one for a streamed response (dropped by its free callback). r->mu guards
 * what the engine's threads and the connection's thread share. Lock order:
 * never call the engine while holding r->mu (qt_engine_cancel and
 * qt_engine_submit may call qt_proxy_on_result on the calling thread, which
 * takes r->mu); px->conn_mu and px->watch_mu, see proxy_conn.c.
 *
 * Disconnects: a suspended request's socket is watched by the guard thread
 * (proxy_conn.c); a hang-up marks it gone and resumes it, the handler closes
 * the connection, and notify_completed cancels the job (queued: removed at
 * once; held by a worker: flagged, and a streamed transfer is aborted at its
 * next byte; on_chunk also refuses).
 *
 * Timeouts: MHD_OPTION_CONNECTION_TIMEOUT closes connections that are
 * silent; suspended connections do not time out (quotatop makes them wait).
 * Total budgets for headers and body that trickling cannot stretch: the
 * guard's deadlines (proxy_conn.c).
 *
 * Files: this one holds the server (setup, listening sockets, shutdown),
 * routing, auth and the small endpoints (models, /healthz, /metrics);
 * proxy_chat.c the chat path;
 * proxy_req.c the request object and the answer helpers; proxy_conn.c the
 * connection table, per-address counts, suspend/resume and the guard;
 * proxy_drive.c who runs MHD; proxy_int.h their structs;
 * proxy_json.c and proxy_metrics.c the bodies. Calls point one way: proxy.c
 * -> proxy_chat.c -> proxy_req.c, proxy_conn.c -> proxy_drive.c.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "proxy_int.h"
#include "quotatop/clock.h"


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
    for (size_t i = 0; i < QT_ENDPOINT_COUNT; i++)
        out->by_endpoint[i] = __atomic_load_n(&p->st.by_endpoint[i], __ATOMIC_RELAXED);
    out->gone_queued = __atomic_load_n(&p->st.gone_queued, __ATOMIC_RELAXED);
    out->gone_streaming = __atomic_load_n(&p->st.gone_streaming, __ATOMIC_RELAXED);
    out->cut_headers = __atomic_load_n(&p->st.cut_headers, __ATOMIC_RELAXED);
    out->cut_body = __atomic_load_n(&p->st.cut_body, __ATOMIC_RELAXED);
    out->cut_idle = __atomic_load_n(&p->st.cut_idle, __ATOMIC_RELAXED);
    out->connections = __atomic_load_n(&p->st.connections, __ATOMIC_RELAXED);
    out->streams = __atomic_load_n(&p->st.streams, __ATOMIC_RELAXED);
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
    if (!strcmp(url, "/v1/messages"))
        return RT_MESSAGES;
    if (!strcmp(url, "/v1/responses"))
        return RT_RESPONSES;
    if (!strcmp(url, "/v1/embeddings"))
        return RT_EMBEDDINGS;
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
    if (!strcmp(url, "/control"))
        return RT_CONTROL;
    if (!strcmp(url, "/control/snapshot"))
        return RT_CONTROL_SNAP;
    return RT_NONE;
}

/* 1 when the request carries the token (or none is required): as a bearer
 * (OpenAI's SDKs) or as x-api-key (Anthropic's). */
static int authorized(qt_proxy *px, struct MHD_Connection *c)
{
    if (!px->token)
        return 1;
    const char *k = px_hdr(c, "x-api-key");
    if (k && qt_proxy_token_equal(k, strlen(k), px->token))
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
    if (r->route == RT_NONE || ((r->route == RT_CONTROL || r->route == RT_CONTROL_SNAP) && !px->control)) {
        ok = px_answer_error(r, c, 404, "invalid_request_error", "unknown_url", NULL, NULL,
                             "Unknown request URL: %s %.200s. quotatop serves POST /v1/chat/completions, "
                             "/v1/messages, /v1/responses and /v1/embeddings, GET /v1/models, "
                             "GET /metrics and GET /healthz", method, url);
    } else if (px_route_is_job(r->route) || r->route == RT_CONTROL ? strcmp(method, "POST") : !get) {
        const char *allow = px_route_is_job(r->route) || r->route == RT_CONTROL ? "POST" : "GET, HEAD";
        const char *h[] = { "Allow", allow, NULL, NULL };
        ok = px_answer_error(r, c, 405, "invalid_request_error", "method_not_allowed", NULL, h,
                             "%s is not allowed on %.200s (use %s)", method, url, allow);
    } else if (r->route != RT_HEALTH && !authorized(px, c)) {
        const char *h[] = { "WWW-Authenticate", "Bearer realm=\"quotatop\"", NULL, NULL };
        ok = px_answer_error(r, c, 401, "invalid_request_error", "invalid_api_key", NULL, h,
                             "Incorrect or missing token: send the token of quotatop's "
                             "proxy.token_env in an Authorization: Bearer header or as x-api-key");
    } else if (r->route == RT_MESSAGES && px_hdr(c, "anthropic-version")
               && !px_anthropic_version_ok(px_hdr(c, "anthropic-version"))) {
        ok = px_answer_error(r, c, 400, "invalid_request_error", "invalid_version", NULL, NULL,
                             "anthropic-version: \"%.40s\" is not a version (a date: 2023-06-01)",
                             px_hdr(c, "anthropic-version"));
    } else if ((px_route_is_job(r->route) || r->route == RT_CONTROL) && px_hdr(c, "Content-Length")
               && strtoull(px_hdr(c, "Content-Length"), NULL, 10)
                      > (unsigned long long)px->cfg->proxy.max_body_bytes) {
        ok = px_answer_error(r, c, 413, "invalid_request_error", "request_too_large", NULL, NULL,
                             "request body is larger than proxy.max_body_bytes (%ld bytes)",
                             px->cfg->proxy.max_body_bytes);
    } else {
        return 0;
    }
    r->early = ok == MHD_YES ? 1 : -1;
    px_log_line(r, method, url, (unsigned)r->status_sent);
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
        r = px_req_new(px, c);
        if (!r)
            return MHD_NO;
        *req_cls = r;
        if (r->pc) {
            pthread_mutex_lock(&px->conn_mu);
            r->pc->req = r;
            pthread_mutex_unlock(&px->conn_mu);
        }
        px_conn_phase(px, r->pc, has_body(c) ? PC_BODY : PC_NONE);
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
        if (!r->early && (px_route_is_job(r->route) || r->route == RT_CONTROL) && !r->too_big) {
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
    if (r->waiting)
        return px_chat_resume(r, c);   /* the engine (or a hang-up) resumed it */
    if (r->early)
        return MHD_YES;   /* already answered at the first call */
    px_conn_phase(px, r->pc, PC_NONE);
    if (answer_from_headers(r, c, method, url))
        return r->early > 0 ? MHD_YES : MHD_NO;
    enum MHD_Result ok;
    switch (r->route) {
    case RT_CHAT:
    case RT_MESSAGES:
    case RT_RESPONSES:
    case RT_EMBEDDINGS:
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
    case RT_CONTROL:       /* quotatop top from another host: the control socket's requests */
    case RT_CONTROL_SNAP:
        ok = r->route == RT_CONTROL
                 ? px_answer_json(r, c, 200, px->control(px->control_ud, r->body.s ? r->body.s : "", r->body.len),
                                  NULL)
                 : px_answer_json(r, c, 200, px->control(px->control_ud, "{\"op\":\"frame\"}", 14), NULL);
        break;
    default:
        ok = MHD_NO;
    }
    px_log_line(r, method, url, (unsigned)r->status_sent);
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
    px_unwatch(r);
    if (r->pc) {
        pthread_mutex_lock(&px->conn_mu);
        r->pc->req = NULL;
        pthread_mutex_unlock(&px->conn_mu);
        px_conn_phase(px, r->pc, PC_IDLE);
    }
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
    px->control = o->control;
    px->control_ud = o->control_ud;
    px->guard_ep = -1;
    pthread_mutex_init(&px->ip_mu, NULL);
    px->idle_timeout_s = o->idle_timeout_s ? o->idle_timeout_s : QT_PROXY_IDLE_TIMEOUT_S;
    px->headers_ms = o->headers_timeout_ms ? o->headers_timeout_ms : 10000;
    px->body_ms = o->body_timeout_ms ? o->body_timeout_ms : 60000;
    px->per_ip_limit = o->max_conns_per_client;
    px->conn_limit = o->max_connections;
    px->threads = o->threads;
    pthread_mutex_init(&px->conn_mu, NULL);
    pthread_mutex_init(&px->watch_mu, NULL);
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
    if (!px->per_ip_limit && !px->loopback)
        px->per_ip_limit = 256;
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

/* Raises the soft RLIMIT_NOFILE to the hard limit and returns how many
 * connections that leaves room for (the engine's sockets and files keep a
 * reserve). */
static unsigned connection_room(const qt_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return 1000;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = { rl.rlim_max, rl.rlim_max };
        if (up.rlim_cur > (1u << 20))
            up.rlim_cur = 1u << 20;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl.rlim_cur = up.rlim_cur;
    }
    uint64_t n = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : (uint64_t)rl.rlim_cur;
    uint64_t reserve = 256 + 2 * (uint64_t)(cfg->workers > 0 ? cfg->workers : 8);
    n = n > reserve + 64 ? n - reserve : 64;
    return n > 1000000 ? 1000000 : (unsigned)n;
}

/* Takes d's listening socket back and closes it (the daemon's thread:
 * px_on_mhd_threads). */
static void quiesce_one(px_driver *d)
{
    if (!d->daemon || d->listen_fd < 0)
        return;
    MHD_socket fd = MHD_quiesce_daemon(d->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    d->listen_fd = -1;
}

/* Stops the first n daemons and closes what is still theirs. */
static void stop_daemons(qt_proxy *px, int n)
{
    for (int i = 0; i < n; i++) {
        px_driver *d = &px->drv[i];
        if (d->daemon)
            MHD_stop_daemon(d->daemon);   /* closes its listening socket, if any */
        else if (d->listen_fd >= 0)
            close(d->listen_fd);
        d->daemon = NULL;
        d->mhd_fd = d->listen_fd = -1;
    }
}

/* A socket bound to px->addr with the given port (0: px->addr's own).
 * reuseport 1: SO_REUSEPORT, for several daemons with one socket each (the
 * kernel spreads the connections over them); 0: a plain listening socket;
 * -1: a plain bind and no listen (the probe of listen_all). -1 with errno. */
static int listen_on(qt_proxy *px, int port, int reuseport)
{
    struct sockaddr_storage a = px->addr;
    if (port) {
        if (a.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
    }
    int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)
        || (reuseport > 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one))
        || bind(fd, (struct sockaddr *)&a, px->addrlen) || (reuseport >= 0 && listen(fd, 4096))) {
        int en = errno;
        if (fd >= 0)
            close(fd);
        errno = en;
        return -1;
    }
    return fd;
}

/* The daemons' listening sockets (drv[i].listen_fd) and px->port. With
 * several, a plain bind first: SO_REUSEPORT alone would let this serve
 * share its port with another process that set it too (a second serve
 * started on the same address must fail, not take half the clients). */
static int listen_all(qt_proxy *px, int nd, char *err, size_t errlen)
{
    int port = 0;
    if (nd > 1) {
        int probe = listen_on(px, 0, -1);
        if (probe >= 0) {
            port = qt_bound_port(probe);
            close(probe);
        }
        if (probe < 0 || !port) {
            snprintf(err, errlen, "cannot listen on %s: %s", px->listen, strerror(errno));
            return -1;
        }
    }
    for (int i = 0; i < nd; i++) {
        px->drv[i].listen_fd = listen_on(px, port, nd > 1);
        if (px->drv[i].listen_fd < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", px->listen, strerror(errno));
            for (int k = 0; k < i; k++) {
                close(px->drv[k].listen_fd);
                px->drv[k].listen_fd = -1;
            }
            return -1;
        }
    }
    px->port = port ? port : qt_bound_port(px->drv[0].listen_fd);
    return 0;
}

qt_err qt_proxy_start(qt_proxy *px, qt_engine *e, char *err, size_t errlen)
{
    px->engine = e;
    px->started_s = (int64_t)(qt_wall_ms() / 1000);
    unsigned room = connection_room(px->cfg);
    if (!px->conn_limit || px->conn_limit > room)
        px->conn_limit = room;
    /* MHD on the engine's loops (proxy_drive.c), one daemon each; threads
     * of MHD's own only when asked for (opts.threads) or when no live loop
     * can drive it. */
    int nloops = px->threads ? 0 : qt_engine_live_loops(e);
    if (nloops > PX_MAX_DRIVERS)
        nloops = PX_MAX_DRIVERS;
    if (!nloops && !px->threads) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        px->threads = nc < 2 ? 2 : nc > 16 ? 16 : (unsigned)nc;
    }
    int nd = nloops ? nloops : 1;
    for (int i = 0; i < PX_MAX_DRIVERS; i++)
        px->drv[i].mhd_fd = px->drv[i].listen_fd = -1;
    if (listen_all(px, nd, err, errlen))
        return QT_ERR_IO;
    char host[sizeof px->listen];
    memcpy(host, px->listen, sizeof host);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    snprintf(px->base_url, sizeof px->base_url, "http://%s:%d/v1", host[0] ? host : "0.0.0.0",
             px->port);
    if (px_guard_start(px)) {
        snprintf(err, errlen, "cannot start the connection guard: %s", strerror(errno));
        px_guard_stop(px);
        stop_daemons(px, nd);
        return QT_ERR_NOMEM;
    }

    unsigned flags = (nloops ? MHD_USE_EPOLL : MHD_USE_EPOLL_INTERNAL_THREAD)
                     | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (px->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned per_daemon = px->conn_limit / (unsigned)nd;
    for (int i = 0; i < nd; i++) {
        px_driver *d = &px->drv[i];
        d->daemon = MHD_start_daemon(flags, 0, px_conn_accept, px, handler, px,
                                     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, px,
                                     MHD_OPTION_LISTEN_SOCKET, d->listen_fd,
                                     MHD_OPTION_THREAD_POOL_SIZE, px->threads,
                                     MHD_OPTION_CONNECTION_TIMEOUT, px->idle_timeout_s,
                                     MHD_OPTION_NOTIFY_COMPLETED, notify_completed, px,
                                     MHD_OPTION_NOTIFY_CONNECTION, px_conn_notify, px,
                                     MHD_OPTION_CONNECTION_LIMIT, per_daemon ? per_daemon : 1,
                                     MHD_OPTION_END);
        if (!d->daemon) {
            snprintf(err, errlen, "cannot start the HTTP server on %s", px->listen);
            stop_daemons(px, nd);
            px_guard_stop(px);
            return QT_ERR_IO;
        }
        px->ndrv = i + 1;
    }
    for (int i = 0; i < nloops; i++)
        if (px_drive_attach(&px->drv[i], qt_engine_loop_at(e, i))) {
            /* The loops that got their daemon give it back before it stops. */
            snprintf(err, errlen, "cannot start the HTTP server on %s: no epoll set", px->listen);
            px_undrive(px);
            stop_daemons(px, nd);
            px->ndrv = 0;
            px_guard_stop(px);
            return QT_ERR_IO;
        }
    px->listening = 1;
    return QT_OK;
}

int qt_proxy_port(const qt_proxy *p) { return p ? p->port : 0; }

const char *qt_proxy_base_url(const qt_proxy *p) { return p->base_url; }

void qt_proxy_quiesce(qt_proxy *p)
{
    if (!p || !p->ndrv || !p->listening)
        return;
    px_on_mhd_threads(p, quiesce_one);   /* each daemon gives its socket back; closed */
    p->listening = 0;
}

void qt_proxy_stop(qt_proxy *p)
{
    if (!p || !p->ndrv)
        return;
    /* The engine's loops have stopped (qt_engine_shutdown): from here this
     * thread drives MHD. */
    px_detach(p);
    qt_proxy_quiesce(p);   /* the listening socket is closed */
    /* Jobs have their results by now (qt_engine_shutdown); let MHD finish
     * writing those answers (a 503, the end of a stream) before it cuts
     * the connections. */
    uint64_t deadline = qt_now_ms() + 3000;
    while (__atomic_load_n(&p->answering, __ATOMIC_RELAXED) > 0 && qt_now_ms() < deadline)
        px_drive_here(p, 10);
    /* MHD must not meet a suspended connection when it stops: whatever
     * still waits is resumed as gone and closed. */
    px_resume_all(p);
    deadline = qt_now_ms() + 500;
    do
        px_drive_here(p, 5);
    while (__atomic_load_n(&p->answering, __ATOMIC_RELAXED) > 0 && qt_now_ms() < deadline);
    stop_daemons(p, p->ndrv);
    p->ndrv = 0;
    px_guard_stop(p);
}

void qt_proxy_free(qt_proxy *p)
{
    if (!p)
        return;
    qt_proxy_stop(p);
    px_guard_stop(p);
    if (p->token) {
        memset(p->token, 0, strlen(p->token));
        free(p->token);
    }
    px_conn_ips_free(p);
    pthread_mutex_destroy(&p->ip_mu);
    pthread_mutex_destroy(&p->conn_mu);
    pthread_mutex_destroy(&p->watch_mu);
    free(p);
}
