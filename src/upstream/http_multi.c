/* http_multi.c: the event-loop HTTP client (see include/quotatop/http.h).
 *
 * DESIGN. libcurl's multi interface in its "multi_socket" form, as curl's
 * ephiperfifo example drives it, with a qt_loop instead of raw epoll:
 * - CURLMOPT_SOCKETFUNCTION: curl says which sockets it wants watched for
 *   what; each becomes (or stops being) a qt_loop_io_watch whose callback
 *   calls curl_multi_socket_action(fd, what is ready);
 * - CURLMOPT_TIMERFUNCTION: curl keeps one timeout; it becomes one qt_loop
 *   timer (replaced on every change) whose callback calls
 *   curl_multi_socket_action(CURL_SOCKET_TIMEOUT). A timeout of 0 is a
 *   timer at "now", so curl is never re-entered from its own callback;
 * - after every socket_action, curl_multi_info_read reports the finished
 *   transfers: each is removed from the multi, classified (http_call.c,
 *   shared with the blocking client) and handed to its on_done.
 * The connection cache and DNS cache live in the multi handle, so every
 * transfer reuses idle connections whatever easy handle carries it; easy
 * handles themselves are recycled through a small pool.
 *
 * Looking for an idle connection costs libcurl a walk over every connection
 * to the host (in use or not), so a burst of N new transfers to one host
 * costs O(N^2): at 10,000 that was most of the client's CPU. m counts the
 * sockets curl has open (CURLOPT_OPENSOCKETFUNCTION/CLOSESOCKETFUNCTION);
 * when there are no more of them than transfers in curl, no connection can
 * be idle, and a plain-HTTP transfer is started with CURLOPT_FRESH_CONNECT,
 * which skips the walk. HTTPS keeps the walk: HTTP/2 multiplexes many
 * transfers on one connection, so fewer sockets than transfers is normal
 * there (and the walk is short).
 *
 * Keep-alive without epoll_ctl. Between two requests on a cached
 * connection curl asks for the socket's removal and then for it again; the
 * sockets curl opened through open_socket_cb (m->ours) are parked
 * (qt_loop_io_park) instead, so a reused connection is watched again for
 * reading without a system call, and close_socket_cb forgets the watch
 * before the close drops the registration. Sockets curl makes otherwise
 * (the threaded resolver's socketpair) are removed as usual.
 *
 * Shutdown. qt_http_multi_free resets the connections it closes (SO_LINGER
 * 0) instead of closing them, and so does a drained client (qt_http_multi_drain:
 * CURLOPT_FORBID_REUSE on every transfer, so curl closes each connection as
 * its transfer ends, during the answers instead of all at once at the end): a run that ends with 10,000 kept-alive
 * connections would otherwise leave 10,000 sockets in TIME_WAIT on this
 * host for a minute, and the next run's connect() calls pay for searching
 * past them for a free port (measured: 0.78 s of system time for a 10,000
 * job run with none left over, 1.46 s right after such a run). Nothing is
 * lost: by then every connection is idle or its transfer was aborted.
 *
 * Re-entrancy. libcurl refuses to add or remove handles from inside its own
 * callbacks, and on_data runs inside curl_multi_socket_action. So while m is
 * inside curl (in_curl), qt_http_multi_post only queues the new transfer
 * (pending list) and qt_http_multi_abort only marks it (the write callback
 * then refuses more data); both are carried out as soon as socket_action
 * returns, in after_curl(). on_done always runs outside curl, so it may
 * post and abort freely.
 */
#include "quotatop/http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h1.h"
#include "http_int.h"

#define POOL_MAX 256   /* idle easy handles kept for reuse */

struct qt_http_xfer {
    qt_http_multi *m;
    CURL *easy;                 /* NULL for a transfer h1 carries */
    h1_xfer *hx;                /* set while h1 carries it (see DESIGN) */
    http_call call;
    qt_http_response resp;
    char *body;                 /* our copy of the request body */
    qt_http_on_done on_done;
    void *ud;
    qt_http_xfer *prev, *next;  /* m->xfers: every transfer not yet done */
    qt_http_xfer *pending_next; /* m->pending: posted from inside curl, not yet added */
    bool added;                 /* curl_multi_add_handle done */
    bool abort_asked;           /* abort requested from inside curl */
};

struct qt_http_multi {
    qt_loop *loop;
    CURLM *multi;
    qt_timer *timer;            /* curl's timeout, NULL when none */
    int in_curl;                /* > 0 while inside curl_multi_socket_action */
    bool closing;               /* qt_http_multi_free is running */
    bool draining;              /* qt_http_multi_drain: reset what curl closes */
    qt_http_xfer *xfers;        /* doubly linked, every transfer not yet done */
    size_t n_xfers;
    size_t n_added;             /* transfers handed to curl (added, not removed) */
    size_t n_sockets;           /* sockets curl has open, cached connections included */
    qt_http_xfer *pending, *pending_tail;
    size_t n_abort_asked;
    CURL *pool[POOL_MAX];
    size_t n_pool;
    unsigned char *ours;        /* [fd]: 1 for a socket open_socket_cb made (see DESIGN) */
    size_t cap_ours;
    h1_client *h1;              /* plain-HTTP transfers (h1.h); made at the first */
    bool h1_env;                /* h1_env_allows(), read at creation */
    long max_connects;
};

size_t qt_http_multi_active(const qt_http_multi *m) { return m ? m->n_xfers : 0; }

void qt_http_multi_set_max_connects(qt_http_multi *m, long n)
{
    if (m && n > 0) {
        curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, n);
        m->max_connects = n;
        h1_client_set_max_idle(m->h1, (size_t)n);
    }
}

void qt_http_multi_drain(qt_http_multi *m)
{
    if (m == NULL || m->draining || m->closing)
        return;
    m->draining = true;
    h1_client_drain(m->h1);
    for (qt_http_xfer *x = m->xfers; x; x = x->next)
        if (x->easy)
            curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);   /* read when its transfer ends */
}

/* ---- curl's sockets and timer on the loop ---- */

static void after_curl(qt_http_multi *m);

static void action(qt_http_multi *m, curl_socket_t s, int ev)
{
    int running = 0;
    m->in_curl++;
    curl_multi_socket_action(m->multi, s, ev, &running);
    m->in_curl--;
    after_curl(m);
}

static void on_io(void *ud, int fd, unsigned events)
{
    int ev = (events & QT_LOOP_READ ? CURL_CSELECT_IN : 0) |
             (events & QT_LOOP_WRITE ? CURL_CSELECT_OUT : 0) |
             (events & QT_LOOP_ERROR ? CURL_CSELECT_ERR : 0);
    action(ud, fd, ev);
}

static void on_timer(void *ud)
{
    qt_http_multi *m = ud;
    m->timer = NULL;   /* the loop freed it */
    action(m, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl asks (or stop). */
static int socket_cb(CURL *e, curl_socket_t s, int what, void *ud, void *socketp)
{
    qt_http_multi *m = ud;
    (void)e;
    (void)socketp;
    unsigned events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= QT_LOOP_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= QT_LOOP_WRITE;
    if (events == 0 && s >= 0 && (size_t)s < m->cap_ours && m->ours[s]) {
        qt_loop_io_park(m->loop, s);   /* curl's own socket: close_socket_cb forgets it */
        return 0;
    }
    /* CURL_POLL_REMOVE (and NONE) leave events 0: remove the watch. */
    return qt_loop_io_watch(m->loop, s, events, on_io, m) == QT_OK ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: one timer, replaced on every change; -1 = none. */
static int timer_cb(CURLM *multi, long timeout_ms, void *ud)
{
    qt_http_multi *m = ud;
    (void)multi;
    uint64_t at = qt_loop_now_ms(m->loop) + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    if (timeout_ms >= 0 && m->timer && qt_loop_timer_at(m->timer) == at)
        return 0;   /* the same deadline: keep the timer */
    qt_loop_timer_cancel(m->loop, m->timer);
    m->timer = NULL;
    if (timeout_ms < 0)
        return 0;
    m->timer = qt_loop_timer_add(m->loop, at, on_timer, m);
    return m->timer ? 0 : -1;
}

qt_http_multi *qt_http_multi_new(qt_loop *l)
{
    if (l == NULL)
        return NULL;
    qt_http_multi *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->loop = l;
    m->multi = curl_multi_init();
    if (m->multi == NULL) {
        free(m);
        return NULL;
    }
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);    /* unlimited */
    curl_multi_setopt(m->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);   /* unlimited */
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, (long)QT_HTTP_MULTI_MAX_CONNECTS);
    m->max_connects = QT_HTTP_MULTI_MAX_CONNECTS;
    m->h1_env = h1_env_allows();
    return m;
}

/* ---- transfers ---- */

/* CURLOPT_OPENSOCKETFUNCTION / CLOSESOCKETFUNCTION: curl's sockets, counted. */
static curl_socket_t open_socket_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    qt_http_multi *m = ud;
    (void)purpose;
    curl_socket_t s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (s == CURL_SOCKET_BAD)
        return s;
    m->n_sockets++;
    qt_loop_io_forget(m->loop, s);   /* a new socket: whatever the loop had for s is stale */
    if ((size_t)s >= m->cap_ours) {
        size_t cap = m->cap_ours ? m->cap_ours : 256;
        while (cap <= (size_t)s)
            cap *= 2;
        unsigned char *o = realloc(m->ours, cap);
        if (o == NULL)
            return s;   /* not parked: removed and added as curl asks */
        memset(o + m->cap_ours, 0, cap - m->cap_ours);
        m->ours = o;
        m->cap_ours = cap;
    }
    m->ours[s] = 1;
    return s;
}

static int close_socket_cb(void *ud, curl_socket_t s)
{
    qt_http_multi *m = ud;
    m->n_sockets--;
    if (s >= 0 && (size_t)s < m->cap_ours && m->ours[s]) {
        m->ours[s] = 0;
        qt_loop_io_forget(m->loop, s);   /* parked or watched: close drops the registration */
    }
    if (m->closing || m->draining) {
        /* Shutting down or drained: reset the idle connections instead of
         * closing them, so no TIME_WAIT is left behind (see DESIGN). */
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    return close(s);
}

/* Sets what http_call_setopts does not: ours, the socket counting, and a
 * fresh connection when none can be idle (see DESIGN). */
static void multi_setopts(qt_http_multi *m, qt_http_xfer *x, const char *url)
{
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, m);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, m);
    bool none_idle = m->n_sockets <= m->n_added;
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT,
                     none_idle && !strncasecmp(url, "http://", 7) ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, m->draining ? 1L : 0L);
}

static CURL *easy_get(qt_http_multi *m)
{
    /* No curl_easy_reset: http_call_setopts sets every option we use on
     * every transfer, and a reset costs a measurable share of a request. */
    if (m->n_pool > 0)
        return m->pool[--m->n_pool];
    return curl_easy_init();
}

static void easy_put(qt_http_multi *m, CURL *e)
{
    if (m->n_pool < POOL_MAX)
        m->pool[m->n_pool++] = e;
    else
        curl_easy_cleanup(e);
}

static void link_xfer(qt_http_multi *m, qt_http_xfer *x)
{
    x->next = m->xfers;
    if (m->xfers)
        m->xfers->prev = x;
    m->xfers = x;
    m->n_xfers++;
}

static void unlink_xfer(qt_http_multi *m, qt_http_xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        m->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    m->n_xfers--;
}

static void free_xfer(qt_http_xfer *x)
{
    free(x->body);
    free(x);
}

/* Ends x: takes it out of curl and of m, fills its response from rc (an
 * abort wins over whatever curl said), hands it to on_done, frees x. */
static void finish(qt_http_multi *m, qt_http_xfer *x, CURLcode rc, bool aborted)
{
    if (x->added) {
        curl_multi_remove_handle(m->multi, x->easy);
        m->n_added--;
    }
    if (x->abort_asked)
        m->n_abort_asked--;
    unlink_xfer(m, x);
    if (aborted)
        x->call.aborted = true;
    if (http_call_finish(&x->call, x->easy, aborted ? CURLE_ABORTED_BY_CALLBACK : rc) != QT_OK) {
        x->resp.transport = QT_HTTP_OTHER;
        snprintf(x->resp.error, sizeof x->resp.error, "out of memory reading the response");
    }
    if (aborted) {
        x->resp.transport = QT_HTTP_ABORTED;
        snprintf(x->resp.error, sizeof x->resp.error, "aborted");
    }
    easy_put(m, x->easy);
    x->on_done(x->ud, &x->resp);
    free_xfer(x);
}

/* Adds x to curl. Returns false when curl refuses (out of memory inside
 * curl); x is then still m's, unfinished. */
static bool add_now(qt_http_multi *m, qt_http_xfer *x)
{
    CURLMcode rc = curl_multi_add_handle(m->multi, x->easy);
    if (rc == CURLM_OK) {
        x->added = true;
        m->n_added++;
        return true;
    }
    snprintf(x->call.errbuf, sizeof x->call.errbuf, "curl_multi_add_handle: %s",
             curl_multi_strerror(rc));
    return false;
}

/* Reports finished transfers, then carries out what was asked from inside
 * curl: aborts first (a transfer aborted before it was added is never
 * added), then the queued additions. */
static void after_curl(qt_http_multi *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        qt_http_xfer *x = NULL;
        CURLcode rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x)
            finish(m, x, rc, x->abort_asked);
    }
    while (m->n_abort_asked > 0) {
        qt_http_xfer *x = m->xfers;
        while (x && !x->abort_asked)
            x = x->next;
        if (x == NULL)
            break;
        finish(m, x, CURLE_OK, true);
    }
    while (m->pending) {
        qt_http_xfer *x = m->pending;
        m->pending = x->pending_next;
        if (m->pending == NULL)
            m->pending_tail = NULL;
        if (!add_now(m, x))
            finish(m, x, CURLE_FAILED_INIT, false);   /* its poster returned long ago */
    }
}

/* h1's end of a transfer it carried. */
static void h1_done(void *ud, qt_http_transport t, const char *error, int64_t elapsed_ms,
                    int64_t ttfb_ms, long connects)
{
    qt_http_xfer *x = ud;
    qt_http_multi *m = x->m;
    x->hx = NULL;
    unlink_xfer(m, x);
    if (http_call_end(&x->call, t, error, elapsed_ms, ttfb_ms, connects) != QT_OK) {
        x->resp.transport = QT_HTTP_OTHER;
        snprintf(x->resp.error, sizeof x->resp.error, "out of memory reading the response");
    }
    x->on_done(x->ud, &x->resp);
    free_xfer(x);
}

/* A plain-HTTP POST through h1 (see DESIGN). NULL when out of memory. */
static qt_http_xfer *post_h1(qt_http_multi *m, const h1_url *u,
                             const char *const *header_lines, size_t n_headers,
                             const char *body, size_t len, int timeout_ms,
                             qt_http_on_data on_data, qt_http_on_done on_done, void *ud)
{
    if (m->h1 == NULL) {
        m->h1 = h1_client_new(m->loop);
        if (m->h1 == NULL)
            return NULL;
        h1_client_set_max_idle(m->h1, (size_t)m->max_connects);
        if (m->draining)
            h1_client_drain(m->h1);
    }
    qt_http_xfer *x = calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    if (http_call_init_plain(&x->call, &x->resp, on_data, ud) != QT_OK) {
        qt_http_response_free(&x->resp);
        free(x);
        return NULL;
    }
    x->m = m;
    x->on_done = on_done;
    x->ud = ud;
    x->hx = h1_post(m->h1, u, header_lines, n_headers, body, len, timeout_ms, &x->call,
                    h1_done, x);
    if (x->hx == NULL) {
        qt_http_response_free(&x->resp);
        free(x);
        return NULL;
    }
    link_xfer(m, x);
    return x;
}

qt_http_xfer *qt_http_multi_post(qt_http_multi *m, const char *url,
                                 const char *const *header_lines, size_t n_headers,
                                 const char *body, size_t len, int timeout_ms,
                                 qt_http_on_data on_data, qt_http_on_done on_done, void *ud)
{
    if (m == NULL || url == NULL || on_done == NULL || (body == NULL && len > 0) || m->closing)
        return NULL;
    h1_url u;
    if (m->h1_env && h1_url_parse(url, &u))
        return post_h1(m, &u, header_lines, n_headers, body, len, timeout_ms, on_data, on_done,
                       ud);
    qt_http_xfer *x = calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    x->body = malloc(len + 1);
    x->easy = x->body ? easy_get(m) : NULL;
    if (x->easy == NULL ||
        http_call_init(&x->call, &x->resp, header_lines, n_headers, on_data, ud) != QT_OK) {
        if (x->easy)
            easy_put(m, x->easy);
        qt_http_response_free(&x->resp);
        free_xfer(x);
        return NULL;
    }
    if (len > 0)
        memcpy(x->body, body, len);
    x->body[len] = '\0';
    http_call_setopts(&x->call, x->easy, url, x->body, len, timeout_ms);
    multi_setopts(m, x, url);
    x->m = m;
    x->on_done = on_done;
    x->ud = ud;
    link_xfer(m, x);
    if (m->in_curl) {
        if (m->pending_tail)
            m->pending_tail->pending_next = x;
        else
            m->pending = x;
        m->pending_tail = x;
    } else if (!add_now(m, x)) {
        /* Refused at once: the caller gets NULL and no on_done. */
        unlink_xfer(m, x);
        http_call_finish(&x->call, x->easy, CURLE_FAILED_INIT);   /* wipes the headers */
        qt_http_response_free(&x->resp);
        easy_put(m, x->easy);
        free_xfer(x);
        return NULL;
    }
    return x;   /* curl answers add_now through timer_cb: it starts on the loop */
}

static void drop_pending(qt_http_multi *m, qt_http_xfer *x)
{
    qt_http_xfer **pp = &m->pending, *prev = NULL;
    while (*pp && *pp != x) {
        prev = *pp;
        pp = &(*pp)->pending_next;
    }
    if (*pp == NULL)
        return;
    *pp = x->pending_next;
    if (m->pending_tail == x)
        m->pending_tail = prev;
}

void qt_http_multi_abort(qt_http_multi *m, qt_http_xfer *x)
{
    if (m == NULL || x == NULL)
        return;
    if (x->hx) {
        h1_abort(m->h1, x->hx);
        return;
    }
    if (!x->added)
        drop_pending(m, x);   /* never reached curl: nothing to ask it */
    if (m->in_curl && x->added) {
        if (!x->abort_asked) {
            x->abort_asked = true;
            x->call.aborted = true;   /* the write callback refuses more data */
            m->n_abort_asked++;
        }
        return;
    }
    finish(m, x, CURLE_OK, true);
}

void qt_http_multi_free(qt_http_multi *m)
{
    if (m == NULL)
        return;
    m->closing = true;   /* on_done callbacks below cannot start new transfers */
    h1_client_free(m->h1);   /* its transfers end first (h1_done unlinks each) */
    m->h1 = NULL;
    m->pending = m->pending_tail = NULL;
    while (m->xfers)
        finish(m, m->xfers, CURLE_OK, true);
    for (size_t i = 0; i < m->n_pool; i++)
        curl_easy_cleanup(m->pool[i]);
    curl_multi_cleanup(m->multi);   /* closes the cached connections (socket_cb removes watches) */
    qt_loop_timer_cancel(m->loop, m->timer);
    free(m->ours);
    free(m);
}
