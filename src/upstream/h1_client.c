/* h1_client.c: connections and transfers of h1.h on a qt_loop.
 *
 * DESIGN. A transfer is one POST on one connection: CONNECT (a fresh
 * socket, non-blocking connect) → SEND (the request, built once: request
 * line, Host, the caller's header lines, Content-Length, body) → RECV (the
 * response through h1_parser into the http_call) → end. A connection that
 * ends a response cleanly (h1_parser says keep-alive, the whole request was
 * sent, no byte left over) goes back to its host's idle list (LIFO: the
 * warmest first) with its loop watch parked, so the next request on it is
 * one send() with no epoll_ctl. An idle connection the server has closed is
 * found out by using it: when a reused connection fails before a single
 * byte of answer (EOF, reset, broken pipe), the request goes again once on a
 * fresh connection, as libcurl and browsers do; a fresh connection that
 * fails is the transfer's failure. That costs nothing while connections are
 * alive, where libcurl polls every connection before reusing it.
 *
 * System calls a connection: socket, setsockopt(TCP_NODELAY), connect,
 * send (on loopback the handshake is over when connect returns; EAGAIN
 * means it is not, and then the loop waits for writable, where a second
 * send says connected or refused, with no getsockopt), epoll_ctl
 * (readable), recv (one: a read shorter than the buffer means the socket
 * is drained), setsockopt(SO_LINGER) and close; a reused one: send, recv.
 *
 * An end is never called from inside h1_post, and an end caused while any
 * transfer's sink runs (an abort from on_data) is deferred to a zero-delay
 * loop timer, so a callback never runs inside another of this client's
 * callbacks.
 *
 * The request holds the API key: it is wiped before it is freed.
 */
#include "h1.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECV_BUF 16384

typedef struct h1_conn h1_conn;
typedef struct h1_host h1_host;

struct h1_host {
    h1_host *next;
    char *authority;                /* "host:port" as in the URL: the key and Host header */
    char name[64];                  /* the address, for messages */
    int port;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    h1_conn *idle;                  /* LIFO */
};

struct h1_conn {
    int fd;
    h1_host *host;
    h1_conn *next;                  /* in its host's idle list */
    bool used;                      /* carried a request before: a reuse may find it dead */
};

enum { X_CONNECT, X_SEND, X_RECV };

struct h1_xfer {
    h1_client *c;
    h1_xfer *prev, *next;           /* c->xfers */
    h1_host *host;
    h1_conn *conn;
    char *req;                      /* the whole request (holds the key: wiped) */
    size_t req_len, sent;
    h1_parser p;
    http_call *call;
    h1_end_fn end;
    void *ud;
    qt_timer *timeout;
    qt_timer *later;                /* a deferred end */
    qt_http_transport later_t;
    char later_err[160];
    uint64_t t0;
    int64_t ttfb_ms;
    long connects;
    int timeout_ms;
    int phase;
    bool got_bytes;                 /* a byte of answer arrived on this connection */
    bool retried;
    bool in_sink;
    bool abort_asked;
};

struct h1_client {
    qt_loop *loop;
    h1_host *hosts;
    h1_xfer *xfers;
    size_t n_idle, max_idle;
    int in_sink;                    /* > 0 while some transfer's sink runs */
    bool draining, closing;
};

/* ---- URLs and hosts ---- */

bool h1_env_allows(void)
{
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return false;
    }
    const char *k = getenv("QT_HTTP_CLIENT");
    return !(k && !strcmp(k, "curl"));
}

bool h1_url_parse(const char *url, h1_url *u)
{
    if (url == NULL || strncasecmp(url, "http://", 7))
        return false;
    const char *a = url + 7, *e = a + strcspn(a, "/?#");
    const char *path_end = e + strcspn(e, "#");
    *u = (h1_url){.auth = a, .auth_len = (size_t)(e - a), .path = e,
                     .path_len = (size_t)(path_end - e), .port = 80};
    if (u->auth_len == 0 || memchr(a, '@', u->auth_len))
        return false;
    const char *hs = a, *he, *rest;
    if (*a == '[') {
        he = memchr(a, ']', u->auth_len);
        if (he == NULL)
            return false;
        hs = a + 1;
        rest = he + 1;
        u->family = AF_INET6;
    } else {
        he = memchr(a, ':', u->auth_len);
        if (he == NULL)
            he = e;
        rest = he;
        u->family = AF_INET;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof u->host)
        return false;
    memcpy(u->host, hs, hl);
    u->host[hl] = '\0';
    if (rest < e) {
        if (*rest != ':' || rest + 1 == e)
            return false;
        long port = 0;
        for (const char *q = rest + 1; q < e; q++) {
            if (*q < '0' || *q > '9')
                return false;
            port = port * 10 + (*q - '0');
            if (port > 65535)
                return false;
        }
        if (port == 0)
            return false;
        u->port = (int)port;
    }
    if (u->family == AF_INET && !strcasecmp(u->host, "localhost"))
        snprintf(u->host, sizeof u->host, "127.0.0.1");
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(u->family, u->host, buf) == 1;
}

static h1_host *host_get(h1_client *c, const h1_url *u)
{
    for (h1_host *h = c->hosts; h; h = h->next)
        if (strlen(h->authority) == u->auth_len && !memcmp(h->authority, u->auth, u->auth_len))
            return h;
    h1_host *h = calloc(1, sizeof *h);
    if (h == NULL || (h->authority = strndup(u->auth, u->auth_len)) == NULL) {
        free(h);
        return NULL;
    }
    snprintf(h->name, sizeof h->name, "%s", u->host);
    h->port = u->port;
    if (u->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&h->addr;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)u->port);
        inet_pton(AF_INET6, u->host, &s6->sin6_addr);
        h->addr_len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&h->addr;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)u->port);
        inet_pton(AF_INET, u->host, &s4->sin_addr);
        h->addr_len = sizeof *s4;
    }
    h->next = c->hosts;
    c->hosts = h;
    return h;
}

/* ---- connections ---- */

static void conn_close(h1_client *c, h1_conn *k, bool reset)
{
    qt_loop_io_forget(c->loop, k->fd);   /* close drops the registration */
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(k->fd);
    free(k);
}

/* Takes the warmest idle connection to h, or NULL. */
static h1_conn *conn_pop(h1_client *c, h1_host *h)
{
    h1_conn *k = h->idle;
    if (k) {
        h->idle = k->next;
        k->next = NULL;
        c->n_idle--;
    }
    return k;
}

/* A connection whose response ended cleanly: kept for the next request,
 * unless no connection is kept any more. */
static void conn_release(h1_client *c, h1_conn *k)
{
    if (c->draining || c->closing || c->n_idle >= c->max_idle) {
        conn_close(c, k, c->draining || c->closing);
        return;
    }
    qt_loop_io_park(c->loop, k->fd);
    k->used = true;
    k->next = k->host->idle;
    k->host->idle = k;
    c->n_idle++;
}

/* ---- transfers ---- */

static void on_io(void *ud, int fd, unsigned events);

static void unlink_xfer(h1_client *c, h1_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        c->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
}

/* Ends x: its connection is closed (a clean response gave it back before),
 * x is freed and end is called. */
static void x_end(h1_xfer *x, qt_http_transport t, const char *err)
{
    h1_client *c = x->c;
    qt_loop_timer_cancel(c->loop, x->timeout);
    qt_loop_timer_cancel(c->loop, x->later);
    if (x->conn)
        conn_close(c, x->conn, true);   /* not kept: mid-transfer, or the server closes it */
    unlink_xfer(c, x);
    h1_parser_free(&x->p);
    if (x->req) {
        explicit_bzero(x->req, x->req_len);
        free(x->req);
    }
    char msg[sizeof x->later_err];
    snprintf(msg, sizeof msg, "%s", err ? err : "");
    int64_t elapsed = (int64_t)(qt_loop_now_ms(c->loop) - x->t0);
    h1_end_fn end = x->end;
    void *ud = x->ud;
    int64_t ttfb = x->ttfb_ms;
    long connects = x->connects;
    free(x);
    end(ud, t, msg, elapsed, ttfb, connects);
}

static void on_later(void *ud)
{
    h1_xfer *x = ud;
    x->later = NULL;   /* the loop freed it */
    x_end(x, x->later_t, x->later_err);
}

/* Ends x from a zero-delay timer (inside h1_post, or while a sink runs).
 * Without memory for a timer it ends at once. */
static void end_later(h1_xfer *x, qt_http_transport t, const char *err)
{
    x->later_t = t;
    snprintf(x->later_err, sizeof x->later_err, "%s", err);
    if (x->later)
        return;
    x->later = qt_loop_timer_add(x->c->loop, 0, on_later, x);
    if (x->later == NULL)
        x_end(x, t, x->later_err);
}

static void on_timeout(void *ud)
{
    h1_xfer *x = ud;
    x->timeout = NULL;
    char msg[96];
    snprintf(msg, sizeof msg, "Operation timed out after %d milliseconds", x->timeout_ms);
    x_end(x, QT_HTTP_TIMEOUT, msg);
}

static bool watch(h1_xfer *x, unsigned events)
{
    return qt_loop_io_watch(x->c->loop, x->conn->fd, events, on_io, x) == QT_OK;
}

/* Sends what is left of the request without blocking. Returns 0 (all sent,
 * or the socket takes no more for now) or the errno of a failed send. */
static int send_some(h1_xfer *x)
{
    while (x->sent < x->req_len) {
        ssize_t n = send(x->conn->fd, x->req + x->sent, x->req_len - x->sent, MSG_NOSIGNAL);
        if (n > 0)
            x->sent += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        else
            return n < 0 ? errno : EPIPE;
    }
    return 0;
}

/* Watches x's connection for what comes next: the answer once the request
 * is all sent, else writable too (and the answer: a server may answer, 413,
 * before reading everything). */
static bool watch_next(h1_xfer *x)
{
    x->phase = x->sent == x->req_len ? X_RECV : X_SEND;
    return watch(x, x->phase == X_RECV ? QT_LOOP_READ : QT_LOOP_READ | QT_LOOP_WRITE);
}

/* Opens a fresh connection for x. Returns false with msg set on failure. */
static bool open_conn(h1_xfer *x, char *msg, size_t cap)
{
    h1_client *c = x->c;
    h1_host *h = x->host;
    h1_conn *k = calloc(1, sizeof *k);
    if (k == NULL) {
        snprintf(msg, cap, "out of memory");
        return false;
    }
    k->host = h;
    k->fd = socket(h->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0) {
        snprintf(msg, cap, "Failed to connect to %s port %d: %s", h->name, h->port, strerror(errno));
        free(k);
        return false;
    }
    qt_loop_io_forget(c->loop, k->fd);   /* a new socket: what the loop had for the number is stale */
    int one = 1;
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    x->conn = k;
    x->connects++;
    x->phase = X_CONNECT;
    if (connect(k->fd, (struct sockaddr *)&h->addr, h->addr_len) != 0 && errno != EINPROGRESS) {
        snprintf(msg, cap, "Failed to connect to %s port %d: %s", h->name, h->port, strerror(errno));
        return false;   /* x->conn is closed by the end */
    }
    /* On loopback (and often on a LAN) the handshake is over by the time
     * connect returns: send at once. Nothing sent means still connecting
     * (wait for writable); an error is the connect's. */
    int err = send_some(x);
    if (err) {
        snprintf(msg, cap, "Failed to connect to %s port %d: %s", h->name, h->port, strerror(err));
        return false;
    }
    if (x->sent > 0 ? !watch_next(x) : !watch(x, QT_LOOP_WRITE)) {
        snprintf(msg, cap, "cannot watch the connection: %s", strerror(errno));
        return false;
    }
    return true;
}

/* A reused connection failed before any answer: the request goes again
 * once, on a fresh connection. Returns false when that is not the case (the
 * caller ends x). */
static bool retry_fresh(h1_xfer *x)
{
    if (x->retried || x->got_bytes || x->conn == NULL || !x->conn->used)
        return false;
    x->retried = true;
    conn_close(x->c, x->conn, true);
    x->conn = NULL;
    x->sent = 0;
    h1_parser_free(&x->p);
    h1_parser_init(&x->p);
    char msg[sizeof x->later_err];
    if (!open_conn(x, msg, sizeof msg)) {
        x_end(x, QT_HTTP_CONNECT, msg);
        return true;
    }
    return true;
}

static int sink_line(void *ud, const char *line, size_t len)
{
    h1_xfer *x = ud;
    return http_call_line(x->call, line, len) ? 0 : 1;
}

static int sink_body(void *ud, const char *p, size_t n)
{
    h1_xfer *x = ud;
    return http_call_body(x->call, p, n) ? 0 : 1;
}

/* Feeds n bytes to the parser; ends x when the response is over (or bad).
 * Returns true when x goes on. */
static bool feed(h1_xfer *x, const char *buf, size_t n)
{
    h1_client *c = x->c;
    h1_sink s = {.on_line = sink_line, .on_body = sink_body, .ud = x};
    size_t used = 0;
    x->in_sink = true;
    c->in_sink++;
    h1_status r = h1_parse(&x->p, buf, n, &used, &s);
    c->in_sink--;
    x->in_sink = false;
    if (x->abort_asked) {
        x_end(x, QT_HTTP_ABORTED, "aborted");
        return false;
    }
    switch (r) {
    case H1_MORE:
        return true;
    case H1_DONE:
        if (x->p.keep_alive && used == n && x->phase == X_RECV) {
            h1_conn *k = x->conn;
            x->conn = NULL;
            conn_release(c, k);
        }
        x_end(x, QT_HTTP_OK, NULL);
        return false;
    case H1_STOP:
        x_end(x, QT_HTTP_ABORTED, "the receiver stopped the transfer");
        return false;
    default:
        x_end(x, QT_HTTP_OTHER, x->p.error);
        return false;
    }
}

/* Reads what the connection has. Returns true when x goes on. */
static bool do_recv(h1_xfer *x)
{
    char buf[RECV_BUF];
    char msg[160];
    for (;;) {
        ssize_t n = recv(x->conn->fd, buf, sizeof buf, 0);
        if (n > 0) {
            if (!x->got_bytes) {
                x->got_bytes = true;
                x->ttfb_ms = (int64_t)(qt_loop_now_ms(x->c->loop) - x->t0);
            }
            if (!feed(x, buf, (size_t)n))
                return false;
            if ((size_t)n < sizeof buf)
                return true;   /* drained: the next readiness brings more */
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n < 0 && errno == EINTR)
            continue;
        int err = errno;
        if (retry_fresh(x))
            return false;   /* x goes on, on a new connection (or ended): nothing more here */
        if (n == 0) {
            if (h1_parse_eof(&x->p) == H1_DONE)
                x_end(x, QT_HTTP_OK, NULL);
            else
                x_end(x, QT_HTTP_OTHER, x->p.error);
            return false;
        }
        snprintf(msg, sizeof msg, "Recv failure: %s", strerror(err));
        x_end(x, QT_HTTP_OTHER, msg);
        return false;
    }
}

static void do_send(h1_xfer *x)
{
    int err = send_some(x);
    if (err == 0) {
        if (!watch_next(x))
            x_end(x, QT_HTTP_OTHER, "cannot watch the connection");
        return;
    }
    if (retry_fresh(x))
        return;
    char msg[160];
    if (x->sent == 0 && !x->conn->used && !x->got_bytes) {
        /* The first send on a fresh connection: the connect failed. */
        snprintf(msg, sizeof msg, "Failed to connect to %s port %d: %s", x->host->name,
                 x->host->port, strerror(err));
        x_end(x, QT_HTTP_CONNECT, msg);
        return;
    }
    snprintf(msg, sizeof msg, "Send failure: %s", strerror(err));
    x_end(x, QT_HTTP_OTHER, msg);
}

static void on_io(void *ud, int fd, unsigned events)
{
    h1_xfer *x = ud;
    (void)fd;
    if (x->phase == X_CONNECT) {
        /* Connected, or refused: the send says which (no getsockopt). */
        x->phase = X_SEND;
        do_send(x);
        return;
    }
    if (x->phase == X_SEND) {
        /* An early answer, or the reset that ends the send, comes first. */
        if ((events & (QT_LOOP_READ | QT_LOOP_ERROR)) && (!do_recv(x) || x->phase != X_SEND))
            return;
        if (events & QT_LOOP_WRITE)
            do_send(x);
        return;
    }
    do_recv(x);
}

/* The request: line, Host, the caller's lines, Content-Length, body. */
static char *build_request(const h1_url *u, const char *const *lines, size_t n_lines,
                           const char *body, size_t len, size_t *out_len)
{
    bool own_host = false;
    size_t cap = 64 + u->path_len + u->auth_len + len;
    for (size_t i = 0; i < n_lines; i++) {
        cap += strlen(lines[i]) + 2;
        if (!strncasecmp(lines[i], "Host:", 5))
            own_host = true;
    }
    char *r = malloc(cap);
    if (r == NULL)
        return NULL;
    size_t o = 0;
    /* "http://h:p?q" asks for "/?q": the target always starts with '/'. */
    bool slash = u->path_len > 0 && u->path[0] == '/';
    o += (size_t)snprintf(r + o, cap - o, "POST %s%.*s HTTP/1.1\r\n", slash ? "" : "/",
                          (int)u->path_len, u->path);
    if (!own_host)
        o += (size_t)snprintf(r + o, cap - o, "Host: %.*s\r\n", (int)u->auth_len, u->auth);
    for (size_t i = 0; i < n_lines; i++) {
        const char *l = lines[i];
        size_t ll = strlen(l);
        const char *colon = memchr(l, ':', ll);
        if (colon == NULL || strspn(colon + 1, " \t") == ll - (size_t)(colon + 1 - l))
            continue;   /* "Name:" with no value: send nothing, as libcurl does */
        if (!strncasecmp(l, "Content-Length:", 15) || !strncasecmp(l, "Transfer-Encoding:", 18) ||
            strpbrk(l, "\r\n"))
            continue;   /* the framing is ours; a line break would forge a header */
        memcpy(r + o, l, ll);
        o += ll;
        r[o++] = '\r';
        r[o++] = '\n';
    }
    o += (size_t)snprintf(r + o, cap - o, "Content-Length: %zu\r\n\r\n", len);
    if (len)
        memcpy(r + o, body, len);
    *out_len = o + len;
    return r;
}

h1_xfer *h1_post(h1_client *c, const h1_url *u, const char *const *header_lines,
                 size_t n_headers, const char *body, size_t len, int timeout_ms,
                 http_call *call, h1_end_fn end, void *ud)
{
    if (c == NULL || u == NULL || call == NULL || end == NULL || c->closing ||
        (body == NULL && len > 0))
        return NULL;
    h1_host *h = host_get(c, u);
    h1_xfer *x = h ? calloc(1, sizeof *x) : NULL;
    if (x == NULL)
        return NULL;
    x->req = build_request(u, header_lines, n_headers, body, len, &x->req_len);
    if (x->req == NULL) {
        free(x);
        return NULL;
    }
    x->c = c;
    x->host = h;
    x->call = call;
    x->end = end;
    x->ud = ud;
    x->timeout_ms = timeout_ms;
    x->t0 = qt_loop_now_ms(c->loop);
    h1_parser_init(&x->p);
    x->next = c->xfers;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
    if (timeout_ms > 0)
        x->timeout = qt_loop_timer_add(c->loop, x->t0 + (uint64_t)timeout_ms, on_timeout, x);
    /* Inside h1_post nothing may end x: a failed send on a reused
     * connection retries (which only opens a socket), and whatever fails
     * here ends later. */
    h1_conn *k = conn_pop(c, h);
    if (k) {
        x->conn = k;
        send_some(x);   /* a send error (a dead connection) shows again at the next readiness */
        if (!watch_next(x))
            end_later(x, QT_HTTP_OTHER, "cannot watch the connection");
        return x;
    }
    char msg[sizeof x->later_err];
    if (!open_conn(x, msg, sizeof msg))
        end_later(x, QT_HTTP_CONNECT, msg);
    return x;
}

void h1_abort(h1_client *c, h1_xfer *x)
{
    if (c == NULL || x == NULL)
        return;
    if (x->in_sink) {
        x->abort_asked = true;
        x->call->aborted = true;   /* the sink refuses more */
        return;
    }
    if (c->in_sink > 0) {
        end_later(x, QT_HTTP_ABORTED, "aborted");
        return;
    }
    x_end(x, QT_HTTP_ABORTED, "aborted");
}

/* ---- the client ---- */

h1_client *h1_client_new(qt_loop *l)
{
    if (l == NULL)
        return NULL;
    h1_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->loop = l;
    c->max_idle = QT_HTTP_MULTI_MAX_CONNECTS;
    return c;
}

void h1_client_set_max_idle(h1_client *c, size_t n)
{
    if (c)
        c->max_idle = n;
}

void h1_client_drain(h1_client *c)
{
    if (c == NULL || c->draining)
        return;
    c->draining = true;
    for (h1_host *h = c->hosts; h; h = h->next) {
        h1_conn *k;
        while ((k = conn_pop(c, h)) != NULL)
            conn_close(c, k, true);
    }
}

void h1_client_free(h1_client *c)
{
    if (c == NULL)
        return;
    c->closing = true;
    while (c->xfers)
        x_end(c->xfers, QT_HTTP_ABORTED, "aborted");
    while (c->hosts) {
        h1_host *h = c->hosts;
        c->hosts = h->next;
        h1_conn *k;
        while ((k = conn_pop(c, h)) != NULL)
            conn_close(c, k, true);
        free(h->authority);
        free(h);
    }
    free(c);
}
