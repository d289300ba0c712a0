/* test_h1_client.c: Criterion suite "h1_client": quotatop's own HTTP/1.1
 * client (src/upstream/h1.h) as qt_http_multi (http.h) drives it for a
 * plain-HTTP URL to 127.0.0.1.
 *
 * The upstream is a scripted raw TCP server written here: a thread with a
 * listening socket on 127.0.0.1 port 0 that accepts connections and gives
 * each its own thread. A connection thread reads one request at a time
 * (the head up to "\r\n\r\n", then Content-Length bytes), records it (the
 * server counts connections accepted and requests read whole, and keeps
 * the raw bytes of the last request) and answers as the test's scenario
 * says: keep-alive, silent close, "Connection: close", chunked in small
 * pieces, close-delimited, half a body, no answer at all, a huge head, a
 * slow chunked stream. Every wait in the server (reads, naps between
 * writes) also polls a stop pipe, so srv_stop ends the threads at once and
 * joins them; the counts are read after the join, when nothing can move
 * them any more.
 *
 * The loop is run by the test's thread (as in test_http_multi.c); a guard
 * timer stops it after 5 s so a bug fails instead of hanging. The proxy
 * variables and QT_HTTP_CLIENT are unset in setup (Criterion runs each test
 * in its own process), so every transfer here goes through h1 except where
 * a test asks for libcurl; that test and the two request_* tests check
 * which client ran from the request bytes (libcurl adds "Accept: * / *").
 *
 * Past STYLE's 800 lines on purpose: the server is half of the file and
 * only these tests use it; split it into a header if another suite does.
 */
#include "quotatop/http.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "quotatop/loop.h"

/* ---- the scripted server ------------------------------------------------ */

typedef enum {
    SC_KEEP,          /* "ok:" + request body, Content-Length, connection kept */
    SC_SILENT_CLOSE,  /* as SC_KEEP, then close without saying so */
    SC_CONN_CLOSE,    /* says "Connection: close" but keeps reading: a reuse would show */
    SC_CHUNKED,       /* CHUNKED_ANSWER in 7-byte writes 2 ms apart; connection kept */
    SC_CLOSE_DELIM,   /* no length, no chunks: the body ends at the close */
    SC_HALF_BODY,     /* 1st request of a connection: as SC_KEEP; 2nd: half a body, close */
    SC_SILENT,        /* reads the request, never answers */
    SC_BIG_HEAD,      /* a 200 status line, then 200 KB of header lines */
    SC_STREAM,        /* chunked, two chunks per write, a write every 30 ms */
} scenario;

#define MAX_CONNS 64
#define REQ_MAX (16u << 20)   /* the largest request the server takes */

/* Chunk extensions (a quoted one holding ';'), whitespace before ';',
 * upper-case hex, extensions on the last chunk and two trailer lines. */
#define CHUNKED_ANSWER                                                          \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" \
    "5;ext=1\r\nhello\r\n"                                                      \
    "7;name=\"quoted;v\"\r\n world,\r\n"                                        \
    "C ; last\r\n de-chunked!\r\n"                                              \
    "0;end=yes\r\nX-Trailer: t1\r\nX-Other: t2\r\n\r\n"
#define CHUNKED_BODY "hello world, de-chunked!"
#define CLOSE_BODY "a body framed\nby the close of the connection\n"
#define STREAM_WRITES 20

typedef struct {
    scenario sc;
    int lfd;
    int port;
    int stop_pipe[2];               /* a byte in it: every server thread ends */
    pthread_t accept_th;
    pthread_t conn_th[MAX_CONNS];
    pthread_mutex_t mu;             /* guards the counts and last[] */
    int conns;                      /* connections accepted */
    int reqs;                       /* requests read whole */
    char *last;                     /* the raw bytes of the last request read (malloc, NUL-terminated) */
    size_t last_len, last_cap;
    bool running;
} srv;

static srv S;

/* Waits for fd to be readable (or timeout_ms, -1: no limit). Returns 1 when
 * it is, 0 on timeout or when the server is stopping. */
static int wait_in(int fd, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = S.stop_pipe[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    int n = poll(p, fd >= 0 ? 2 : 1, timeout_ms);
    if (n <= 0 || (p[0].revents & POLLIN))
        return 0;
    return 1;
}

/* Sleeps ms unless the server is stopping. Returns false when it is. */
static bool nap(int ms)
{
    struct pollfd p = {.fd = S.stop_pipe[0], .events = POLLIN};
    return poll(&p, 1, ms) == 0;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool send_str(int fd, const char *s) { return send_all(fd, s, strlen(s)); }

typedef struct {
    int fd;
    char *buf;                      /* malloc, grows up to REQ_MAX */
    size_t len, cap;                /* bytes in buf, its size */
    size_t req_len;                 /* the request at the start of buf, once read */
    const char *body;
    size_t body_len;
} conn;

/* Reads one request into c (bytes after it stay in c->buf for the next).
 * Returns true with it there, recorded; false on EOF, error, or stop. */
static bool read_request(conn *c)
{
    if (c->req_len) {   /* drop the previous request */
        memmove(c->buf, c->buf + c->req_len, c->len - c->req_len);
        c->len -= c->req_len;
        c->req_len = 0;
    }
    for (;;) {
        c->buf[c->len] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (end) {
            size_t head = (size_t)(end + 4 - c->buf);
            size_t cl = 0;
            for (char *l = c->buf; l < end; l = strstr(l, "\r\n") + 2)
                if (!strncasecmp(l, "Content-Length:", 15))
                    cl = strtoul(l + 15, NULL, 10);
            if (head + cl <= c->len) {
                c->req_len = head + cl;
                c->body = c->buf + head;
                c->body_len = cl;
                pthread_mutex_lock(&S.mu);
                S.reqs++;
                if (c->req_len + 1 > S.last_cap) {
                    free(S.last);
                    S.last_cap = c->req_len + 1;
                    S.last = malloc(S.last_cap);
                }
                memcpy(S.last, c->buf, c->req_len);
                S.last[c->req_len] = '\0';
                S.last_len = c->req_len;
                pthread_mutex_unlock(&S.mu);
                return true;
            }
        }
        if (c->len + 1 >= c->cap) {
            char *nb = c->cap < REQ_MAX ? realloc(c->buf, c->cap * 2) : NULL;
            if (nb == NULL)
                return false;
            c->buf = nb;
            c->cap *= 2;
        }
        if (!wait_in(c->fd, -1))
            return false;
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - 1 - c->len, 0);
        if (n <= 0)
            return false;
        c->len += (size_t)n;
    }
}

/* "ok:" + the request body, framed by Content-Length (and extra headers). */
static bool answer_ok(conn *c, const char *extra)
{
    char head[256];
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n%s"
                                "Content-Length: %zu\r\n\r\nok:", extra, c->body_len + 3);
    return send_str(c->fd, head) && send_all(c->fd, c->body, c->body_len);
}

/* Until the client closes (or the server stops): what a server that is done
 * talking does. */
static void wait_close(conn *c)
{
    char b[4096];
    while (wait_in(c->fd, -1) && recv(c->fd, b, sizeof b, 0) > 0)
        ;
}

/* Serves one connection by the scenario; returns when it is over. */
static void serve(conn *c)
{
    int served = 0;
    while (read_request(c)) {
        served++;
        switch (S.sc) {
        case SC_KEEP:
            if (!answer_ok(c, ""))
                return;
            break;
        case SC_SILENT_CLOSE:
            answer_ok(c, "");
            return;
        case SC_CONN_CLOSE:
            if (!answer_ok(c, "Connection: close\r\n"))
                return;
            break;   /* reads on: the client is the one that must not reuse it */
        case SC_CHUNKED: {
            const char *a = CHUNKED_ANSWER;
            for (size_t i = 0, n = strlen(a); i < n; i += 7)
                if (!send_all(c->fd, a + i, n - i < 7 ? n - i : 7) || !nap(2))
                    return;
            break;
        }
        case SC_CLOSE_DELIM:
            if (send_str(c->fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n") && nap(5))
                send_str(c->fd, CLOSE_BODY);
            return;
        case SC_HALF_BODY:
            if (served == 1) {
                if (!answer_ok(c, ""))
                    return;
                break;
            }
            send_str(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
            send_all(c->fd, "0123456789012345678901234567890123456789012345678901234567890", 50);
            return;
        case SC_SILENT:
            wait_close(c);
            return;
        case SC_BIG_HEAD: {
            static char line[4096];
            memset(line, 'a', sizeof line);
            memcpy(line, "X-Pad: ", 7);
            memcpy(line + sizeof line - 2, "\r\n", 2);
            if (!send_str(c->fd, "HTTP/1.1 200 OK\r\n"))
                return;
            for (int i = 0; i < 50; i++)   /* 200 KB: twice H1_MAX_HEAD_BYTES */
                if (!send_all(c->fd, line, sizeof line))
                    return;   /* the client gave up (reset): expected */
            wait_close(c);
            return;
        }
        case SC_STREAM: {
            if (!send_str(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
                return;
            char w[64];
            for (int i = 0; i < STREAM_WRITES; i++) {
                snprintf(w, sizeof w, "4\r\nc%02da\r\n4\r\nc%02db\r\n", i, i);
                if (!send_str(c->fd, w) || !nap(30))
                    return;
            }
            send_str(c->fd, "0\r\n\r\n");
            break;
        }
        }
    }
}

static void *conn_main(void *ud)
{
    conn *c = calloc(1, sizeof *c);
    c->fd = (int)(intptr_t)ud;
    c->cap = 16384;
    c->buf = malloc(c->cap);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = 2};   /* a blocked send cannot outlive the test */
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (c->buf)
        serve(c);
    close(c->fd);   /* a FIN: the end of a close-delimited body, or a silent close */
    free(c->buf);
    free(c);
    return NULL;
}

static void *accept_main(void *ud)
{
    (void)ud;
    while (wait_in(S.lfd, -1)) {
        int fd = accept4(S.lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&S.mu);
        int i = S.conns++;
        pthread_mutex_unlock(&S.mu);
        if (i >= MAX_CONNS ||
            pthread_create(&S.conn_th[i], NULL, conn_main, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
    }
    return NULL;
}

static void srv_start(scenario sc)
{
    cr_assert(!S.running);
    memset(&S, 0, sizeof S);
    S.sc = sc;
    pthread_mutex_init(&S.mu, NULL);
    cr_assert_eq(pipe2(S.stop_pipe, O_CLOEXEC), 0);
    S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(S.lfd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(S.lfd, (struct sockaddr *)&a, sizeof a), 0);
    /* A small receive window (inherited by the accepted sockets): a large
     * request cannot go in one send, so the client's partial sends run. */
    int rcv = 32 << 10;
    setsockopt(S.lfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    cr_assert_eq(listen(S.lfd, MAX_CONNS), 0);
    socklen_t len = sizeof a;
    getsockname(S.lfd, (struct sockaddr *)&a, &len);
    S.port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&S.accept_th, NULL, accept_main, NULL), 0);
    S.running = true;
}

/* Ends every server thread and closes every socket; the counts stay. */
static void srv_stop(void)
{
    if (!S.running)
        return;
    S.running = false;
    cr_assert_eq(write(S.stop_pipe[1], "x", 1), 1);
    pthread_join(S.accept_th, NULL);   /* no more connections after this */
    int n = S.conns < MAX_CONNS ? S.conns : MAX_CONNS;
    for (int i = 0; i < n; i++)
        pthread_join(S.conn_th[i], NULL);   /* each closed its socket */
    close(S.lfd);
    close(S.stop_pipe[0]);
    close(S.stop_pipe[1]);
    pthread_mutex_destroy(&S.mu);
}

/* ---- the client side ---------------------------------------------------- */

static qt_loop *loop;
static qt_http_multi *hm;
static char url[96];
static const char *const hdrs[] = {"Content-Type: text/plain", "Authorization: Bearer sk-h1-KEY"};

static void setup(void)
{
    /* This process only (Criterion forks per test): the h1 path, whatever
     * the environment the tests run in. */
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY",
                                       "QT_HTTP_CLIENT"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    cr_assert_eq(qt_http_global_init(), QT_OK);
    loop = qt_loop_new(NULL);
    cr_assert_not_null(loop);
    hm = qt_http_multi_new(loop);
    cr_assert_not_null(hm);
}

static void teardown(void)
{
    qt_http_multi_free(hm);
    hm = NULL;
    srv_stop();
    free(S.last);
    S.last = NULL;
    qt_loop_free(loop);
    qt_http_global_cleanup();
}

TestSuite(h1_client, .init = setup, .fini = teardown, .timeout = 10);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One transfer's outcome, filled by on_done (and on_data). */
typedef struct {
    int done;                 /* times on_done ran */
    int status;
    qt_http_transport transport;
    char error[256];
    char body[1024];          /* the stored body (its start), or what on_data got */
    size_t body_len;
    size_t full_len;          /* resp->body_len */
    uint64_t hash;            /* FNV-1a of the whole resp->body */
    long num_connects;
    int64_t wall_ms;          /* post to on_done, by the monotonic clock */
    int64_t t0;
    int data_calls;
    int abort_at;             /* on_data: qt_http_multi_abort at this call (0: never) */
    int data_after_abort;
    bool aborted;
    qt_http_xfer *x;
} outcome;

/* A run of sequential transfers, each posted from the previous on_done. */
typedef struct {
    outcome o[8];
    int n, next;
    int linger_ms;            /* after the last on_done, run the loop this much longer */
    qt_http_on_data on_data;
    int timeout_ms;
    const char *body;         /* the request body of transfers body_from.. (0-based); */
    size_t body_len;          /* the others (and all when NULL) send "req-<n>" */
    int body_from;
} chain;

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211u;
    return h;
}
#define FNV0 14695981039346656037u

static void stop_cb(void *ud)
{
    (void)ud;
    qt_loop_stop(loop);
}

static void post_next(chain *ch);

static void on_done(void *ud, qt_http_response *resp)
{
    chain *ch = ud;
    outcome *o = &ch->o[ch->next - 1];
    o->done++;
    o->wall_ms = mono_ms() - o->t0;
    o->status = resp->status;
    o->transport = resp->transport;
    o->num_connects = resp->num_connects;
    snprintf(o->error, sizeof o->error, "%s", resp->error);
    o->full_len = resp->body_len;
    o->hash = fnv(FNV0, resp->body, resp->body_len);
    if (resp->body_len) {
        o->body_len = resp->body_len < sizeof o->body - 1 ? resp->body_len : sizeof o->body - 1;
        memcpy(o->body, resp->body, o->body_len);
        o->body[o->body_len] = '\0';
    }
    qt_http_response_free(resp);
    if (ch->next < ch->n)
        post_next(ch);
    else if (ch->linger_ms)
        qt_loop_timer_add(loop, qt_loop_now_ms(loop) + (uint64_t)ch->linger_ms, stop_cb, NULL);
    else
        qt_loop_stop(loop);
}

/* on_data's ud is the chain (qt_http_multi_post gives both callbacks the
 * same ud); the outcome is its current transfer's. */
static int on_data(void *ud, const char *buf, size_t n)
{
    chain *ch = ud;
    outcome *o = &ch->o[ch->next - 1];
    if (o->aborted)
        o->data_after_abort++;
    o->data_calls++;
    if (o->body_len + n < sizeof o->body) {
        memcpy(o->body + o->body_len, buf, n);
        o->body_len += n;
    }
    if (o->abort_at && o->data_calls == o->abort_at) {
        o->aborted = true;
        qt_http_multi_abort(hm, o->x);
    }
    return 0;
}

static void post_next(chain *ch)
{
    outcome *o = &ch->o[ch->next++];
    char b[32];
    snprintf(b, sizeof b, "req-%d", ch->next);
    o->t0 = mono_ms();
    bool own = ch->body && ch->next - 1 >= ch->body_from;
    const char *body = own ? ch->body : b;
    size_t len = own ? ch->body_len : strlen(b);
    o->x = qt_http_multi_post(hm, url, hdrs, 2, body, len,
                              ch->timeout_ms ? ch->timeout_ms : 2000, ch->on_data, on_done, ch);
    cr_assert_not_null(o->x);
}

static bool guard_fired;
static void guard(void *ud)
{
    (void)ud;
    guard_fired = true;
    qt_loop_stop(loop);
}

/* Runs ch (n transfers) to the end; fails if the 5 s guard had to stop it. */
static void run_chain(chain *ch, int n)
{
    ch->n = n;
    if (S.running)   /* else the test set url (a closed port) */
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/x", S.port);
    post_next(ch);
    guard_fired = false;
    qt_timer *g = qt_loop_timer_add(loop, qt_loop_now_ms(loop) + 5000, guard, NULL);
    cr_assert_eq(qt_loop_run(loop), 0);
    cr_assert(!guard_fired, "the loop ran 5 s: a transfer never finished");
    qt_loop_timer_cancel(loop, g);
}

/* ---- the tests ---------------------------------------------------------- */

Test(h1_client, keep_alive_reuses_one_connection)
{
    srv_start(SC_KEEP);
    chain ch = {0};
    run_chain(&ch, 5);
    srv_stop();
    for (int i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof want, "ok:req-%d", i + 1);
        cr_assert_eq(ch.o[i].done, 1);
        cr_assert_eq(ch.o[i].transport, QT_HTTP_OK, "%d: %s", i, ch.o[i].error);
        cr_assert_eq(ch.o[i].status, 200);
        cr_assert_str_eq(ch.o[i].body, want);
        cr_assert_eq(ch.o[i].num_connects, i == 0 ? 1 : 0, "transfer %d", i);
    }
    cr_assert_eq(S.conns, 1, "one connection for five requests");
    cr_assert_eq(S.reqs, 5);
}

/* The server closes after each answer without a word: each reuse finds the
 * connection dead before any answer byte and sends again, once, on a fresh
 * one. The dead connection gets the bytes but nobody reads them. */
Test(h1_client, silently_closed_connection_is_retried_on_a_fresh_one)
{
    srv_start(SC_SILENT_CLOSE);
    chain ch = {0};
    run_chain(&ch, 3);
    srv_stop();
    for (int i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof want, "ok:req-%d", i + 1);
        cr_assert_eq(ch.o[i].transport, QT_HTTP_OK, "%d: %s", i, ch.o[i].error);
        cr_assert_eq(ch.o[i].status, 200);
        cr_assert_str_eq(ch.o[i].body, want);
        cr_assert_eq(ch.o[i].num_connects, 1, "transfer %d: one fresh connection", i);
    }
    cr_assert_eq(S.conns, 3);
    cr_assert_eq(S.reqs, 3, "each request read once");
}

/* The server says "Connection: close" but would take another request on
 * the connection: only the client's obedience makes the second one new. */
Test(h1_client, connection_close_is_obeyed)
{
    srv_start(SC_CONN_CLOSE);
    chain ch = {0};
    run_chain(&ch, 2);
    srv_stop();
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(ch.o[i].status, 200, "%d: %s", i, ch.o[i].error);
        cr_assert_eq(ch.o[i].num_connects, 1, "transfer %d", i);
    }
    cr_assert_str_eq(ch.o[1].body, "ok:req-2");
    cr_assert_eq(S.conns, 2);
    cr_assert_eq(S.reqs, 2);
}

/* Extensions, trailers and 7-byte writes: the body comes out exact, and the
 * connection carries a second request (the trailer was consumed exactly). */
Test(h1_client, chunked_in_small_writes_with_extensions_and_trailer)
{
    srv_start(SC_CHUNKED);
    chain ch = {0};
    run_chain(&ch, 2);
    srv_stop();
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(ch.o[i].transport, QT_HTTP_OK, "%d: %s", i, ch.o[i].error);
        cr_assert_eq(ch.o[i].status, 200);
        cr_assert_eq(ch.o[i].body_len, strlen(CHUNKED_BODY));
        cr_assert_str_eq(ch.o[i].body, CHUNKED_BODY);
    }
    cr_assert_eq(ch.o[1].num_connects, 0, "reused after the trailer");
    cr_assert_eq(S.conns, 1);
}

Test(h1_client, close_delimited_body)
{
    srv_start(SC_CLOSE_DELIM);
    chain ch = {0};
    run_chain(&ch, 1);
    srv_stop();
    cr_assert_eq(ch.o[0].transport, QT_HTTP_OK, "%s", ch.o[0].error);
    cr_assert_eq(ch.o[0].status, 200);
    cr_assert_str_eq(ch.o[0].body, CLOSE_BODY);
    cr_assert_eq(ch.o[0].body_len, strlen(CLOSE_BODY));
    cr_assert_str_eq(ch.o[0].error, "");
}

/* Half a body on a reused connection, then the close: a failure, and no
 * retry (answer bytes had arrived, so the request may have been acted on). */
Test(h1_client, half_a_body_fails_without_retry)
{
    srv_start(SC_HALF_BODY);
    chain ch = {0};
    run_chain(&ch, 2);
    srv_stop();
    cr_assert_eq(ch.o[0].status, 200);
    cr_assert_str_eq(ch.o[0].body, "ok:req-1");
    cr_assert_eq(ch.o[1].done, 1);
    cr_assert_eq(ch.o[1].transport, QT_HTTP_OTHER);
    cr_assert_neq(ch.o[1].error[0], '\0', "a message says what went wrong");
    cr_assert_eq(ch.o[1].num_connects, 0, "it rode the kept connection");
    cr_assert_eq(S.reqs, 2, "the second request was not sent again");
    cr_assert_eq(S.conns, 1);
}

Test(h1_client, no_answer_times_out)
{
    srv_start(SC_SILENT);
    chain ch = {.timeout_ms = 300};
    run_chain(&ch, 1);
    srv_stop();
    cr_assert_eq(ch.o[0].done, 1);
    cr_assert_eq(ch.o[0].transport, QT_HTTP_TIMEOUT, "%s", ch.o[0].error);
    cr_assert_eq(ch.o[0].status, 0);
    cr_assert_geq(ch.o[0].wall_ms, 300, "took %lld ms", (long long)ch.o[0].wall_ms);
    cr_assert_leq(ch.o[0].wall_ms, 1500, "took %lld ms", (long long)ch.o[0].wall_ms);
    cr_assert_eq(S.reqs, 1);
}

Test(h1_client, closed_port_is_a_connect_failure)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);   /* nothing listens there now */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/x", ntohs(a.sin_port));
    chain ch = {0};
    run_chain(&ch, 1);
    cr_assert_eq(ch.o[0].done, 1);
    cr_assert_eq(ch.o[0].transport, QT_HTTP_CONNECT, "%s", ch.o[0].error);
    cr_assert_eq(ch.o[0].status, 0);
    cr_assert_neq(ch.o[0].error[0], '\0');
}

/* What went on the wire: the request line, Host, the caller's lines but an
 * empty one and one that would forge a header, the length, the body. */
Test(h1_client, request_sent_as_written)
{
    srv_start(SC_KEEP);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/x", S.port);
    static const char body[] = "{\"a\":1,\"b\":\"two\"}";
    const char *lines[] = {"Content-Type: application/json", "Authorization: Bearer sk-h1-KEY",
                           "X-Drop:", "X-A: 1\r\nX-Evil: 2", "X-Custom: yes"};
    chain ch = {.n = 1, .next = 1};
    ch.o[0].t0 = mono_ms();
    cr_assert_not_null(qt_http_multi_post(hm, url, lines, 5, body, strlen(body), 2000, NULL,
                                          on_done, &ch));
    cr_assert_eq(qt_loop_run(loop), 0);
    srv_stop();
    cr_assert_eq(ch.o[0].status, 200, "%s", ch.o[0].error);
    cr_assert_eq(S.reqs, 1);
    const char *r = S.last;
    char want[128];
    cr_assert(!strncmp(r, "POST /v1/x HTTP/1.1\r\n", 21), "request: %s", r);
    snprintf(want, sizeof want, "\r\nHost: 127.0.0.1:%d\r\n", S.port);
    cr_assert_not_null(strstr(r, want), "request: %s", r);
    cr_assert_not_null(strstr(r, "\r\nContent-Type: application/json\r\n"), "request: %s", r);
    cr_assert_not_null(strstr(r, "\r\nAuthorization: Bearer sk-h1-KEY\r\n"), "request: %s", r);
    cr_assert_not_null(strstr(r, "\r\nX-Custom: yes\r\n"), "request: %s", r);
    snprintf(want, sizeof want, "\r\nContent-Length: %zu\r\n", strlen(body));
    cr_assert_not_null(strstr(r, want), "request: %s", r);
    cr_assert_null(strcasestr(r, "X-Drop"), "an empty line is not sent: %s", r);
    cr_assert_null(strcasestr(r, "X-Evil"), "no forged header: %s", r);
    cr_assert_null(strcasestr(r, "X-A:"), "the forging line is dropped whole: %s", r);
    cr_assert_null(strcasestr(r, "\r\nAccept:"), "h1 sends no Accept: %s", r);
    const char *end = strstr(r, "\r\n\r\n");
    cr_assert_not_null(end);
    cr_assert_eq(S.last_len, (size_t)(end + 4 - r) + strlen(body), "nothing after the body");
    cr_assert_str_eq(end + 4, body);
}

Test(h1_client, oversized_head_is_bounded)
{
    srv_start(SC_BIG_HEAD);
    chain ch = {0};
    run_chain(&ch, 1);
    srv_stop();
    cr_assert_eq(ch.o[0].done, 1);
    cr_assert_eq(ch.o[0].transport, QT_HTTP_OTHER);
    cr_assert_not_null(strstr(ch.o[0].error, "head too large"), "error: %s", ch.o[0].error);
    cr_assert_eq(ch.o[0].body_len, 0);
}

/* on_data aborts at its third call (the first chunk of the server's second
 * write, whose second chunk is in the same read): on_done once, ABORTED,
 * and no on_data after the abort, even 100 ms later. */
Test(h1_client, abort_from_inside_on_data_of_a_stream)
{
    srv_start(SC_STREAM);
    chain ch = {.on_data = on_data, .linger_ms = 100};
    ch.o[0].abort_at = 3;
    int64_t t0 = mono_ms();
    run_chain(&ch, 1);
    int64_t took = mono_ms() - t0;
    srv_stop();
    cr_assert_eq(ch.o[0].done, 1, "on_done once");
    cr_assert_eq(ch.o[0].transport, QT_HTTP_ABORTED, "%s", ch.o[0].error);
    cr_assert_eq(ch.o[0].data_calls, 3);
    cr_assert_eq(ch.o[0].data_after_abort, 0);
    cr_assert_str_eq(ch.o[0].body, "c00ac00bc01a");
    cr_assert_lt(took, STREAM_WRITES * 30, "did not wait for the whole stream: %lld ms",
                 (long long)took);
}

/* The same server through h1, then through libcurl (QT_HTTP_CLIENT=curl
 * read at qt_http_multi_new): both answer; the request bytes show which
 * client ran (libcurl adds "Accept: * / *", h1 does not). */
Test(h1_client, qt_http_client_curl_uses_libcurl)
{
    srv_start(SC_KEEP);
    chain a = {0};
    run_chain(&a, 1);
    cr_assert_eq(a.o[0].status, 200, "%s", a.o[0].error);
    cr_assert_null(strcasestr(S.last, "\r\nAccept:"), "h1 ran: %s", S.last);

    qt_http_multi_free(hm);
    setenv("QT_HTTP_CLIENT", "curl", 1);
    hm = qt_http_multi_new(loop);
    unsetenv("QT_HTTP_CLIENT");
    cr_assert_not_null(hm);
    chain b = {0};
    run_chain(&b, 1);
    srv_stop();
    cr_assert_eq(b.o[0].transport, QT_HTTP_OK, "%s", b.o[0].error);
    cr_assert_eq(b.o[0].status, 200);
    cr_assert_str_eq(b.o[0].body, "ok:req-1");
    cr_assert_not_null(strstr(S.last, "\r\nAccept: */*\r\n"), "libcurl ran: %s", S.last);
    cr_assert_eq(S.reqs, 2);
}

/* The request target and Host come from the URL: no path is "/", a query
 * stays, a fragment does not go; "localhost" is named as written. */
Test(h1_client, request_target_and_host_from_the_url)
{
    static const struct {
        const char *host, *rest, *line;
    } cases[] = {
        {"127.0.0.1", "", "POST / HTTP/1.1\r\n"},
        {"127.0.0.1", "/v1/x?a=1&b=2", "POST /v1/x?a=1&b=2 HTTP/1.1\r\n"},
        {"127.0.0.1", "/v1/x#frag", "POST /v1/x HTTP/1.1\r\n"},
        {"localhost", "/v1/y", "POST /v1/y HTTP/1.1\r\n"},
    };
    srv_start(SC_KEEP);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(url, sizeof url, "http://%s:%d%s", cases[i].host, S.port, cases[i].rest);
        chain ch = {.n = 1, .next = 1};
        cr_assert_not_null(qt_http_multi_post(hm, url, hdrs, 2, "b", 1, 2000, NULL, on_done, &ch));
        cr_assert_eq(qt_loop_run(loop), 0);
        cr_assert_eq(ch.o[0].status, 200, "%s: %s", url, ch.o[0].error);
        pthread_mutex_lock(&S.mu);
        char last[512];
        snprintf(last, sizeof last, "%.500s", S.last);
        pthread_mutex_unlock(&S.mu);
        char host[64];
        snprintf(host, sizeof host, "\r\nHost: %s:%d\r\n", cases[i].host, S.port);
        cr_expect(!strncmp(last, cases[i].line, strlen(cases[i].line)), "%s: sent %s", url, last);
        cr_expect_not_null(strstr(last, host), "%s: sent %s", url, last);
        cr_expect_null(strcasestr(last, "\r\nAccept:"), "%s went through h1: %s", url, last);
    }
}

/* A query with no path goes out in origin form, "POST /?a=1", as libcurl
 * sends it (build_request once sent "POST ?a=1"). */
Test(h1_client, query_without_a_path_gets_a_slash)
{
    srv_start(SC_KEEP);
    snprintf(url, sizeof url, "http://127.0.0.1:%d?a=1", S.port);
    chain ch = {.n = 1, .next = 1};
    cr_assert_not_null(qt_http_multi_post(hm, url, hdrs, 2, "b", 1, 2000, NULL, on_done, &ch));
    cr_assert_eq(qt_loop_run(loop), 0);
    srv_stop();
    cr_assert_eq(ch.o[0].status, 200, "%s", ch.o[0].error);
    cr_assert(!strncmp(S.last, "POST /?a=1 HTTP/1.1\r\n", 21), "sent %.60s", S.last);
}

/* A small request, then 4 MB bodies both ways twice on the same
 * connection: each large request goes out from h1_post's reuse path and
 * cannot go in one send (the socket's buffer is still small after the
 * first exchange; the server's receive window is 32 KB), so the rest
 * waits for the socket to drain. The server echoes "ok:" + body. */
Test(h1_client, large_bodies_both_ways_on_a_reused_connection)
{
    enum { LEN = 4 << 20 };
    char *big = malloc(LEN);
    cr_assert_not_null(big);
    for (size_t i = 0; i < LEN; i++)
        big[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    srv_start(SC_KEEP);
    chain ch = {.body = big, .body_len = LEN, .body_from = 1};
    run_chain(&ch, 3);
    srv_stop();
    cr_assert_str_eq(ch.o[0].body, "ok:req-1");
    uint64_t want = fnv(fnv(FNV0, "ok:", 3), big, LEN);
    for (int i = 1; i < 3; i++) {
        cr_assert_eq(ch.o[i].transport, QT_HTTP_OK, "%d: %s", i, ch.o[i].error);
        cr_assert_eq(ch.o[i].status, 200);
        cr_assert_eq(ch.o[i].full_len, (size_t)LEN + 3);
        cr_assert_eq(ch.o[i].hash, want, "transfer %d: the echo differs", i);
    }
    cr_assert_eq(ch.o[1].num_connects + ch.o[2].num_connects, 0);
    cr_assert_eq(S.conns, 1);
    cr_assert_eq(S.reqs, 3);
    free(big);
}

/* 20 transfers at once open 20 connections; 20 more, posted when the first
 * wave is done, reuse them all. */
typedef struct {
    int done, ok;
    long connects;
} wave;

static wave waves[2];

static void post_wave(int w);

static void wave_done(void *ud, qt_http_response *resp)
{
    wave *wv = ud;
    wv->ok += resp->status == 200 && resp->transport == QT_HTTP_OK;
    wv->connects += resp->num_connects;
    qt_http_response_free(resp);
    if (++wv->done < 20)
        return;
    if (wv == &waves[0])
        post_wave(1);
    else
        qt_loop_stop(loop);
}

static void post_wave(int w)
{
    for (int i = 0; i < 20; i++)
        cr_assert_not_null(qt_http_multi_post(hm, url, hdrs, 2, "b", 1, 2000, NULL, wave_done,
                                              &waves[w]));
}

Test(h1_client, concurrent_transfers_fill_then_reuse_the_pool)
{
    srv_start(SC_KEEP);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/x", S.port);
    post_wave(0);
    cr_assert_eq(qt_http_multi_active(hm), 20);
    cr_assert_eq(qt_loop_run(loop), 0);
    srv_stop();
    cr_assert_eq(waves[0].ok, 20);
    cr_assert_eq(waves[1].ok, 20);
    cr_assert_eq(waves[0].connects, 20, "one connection each");
    cr_assert_eq(waves[1].connects, 0, "every one reused");
    cr_assert_eq(S.conns, 20);
    cr_assert_eq(S.reqs, 40);
    cr_assert_eq(qt_http_multi_active(hm), 0);
}

/* ---- a connect that is not over when connect() returns ----
 * A listener with a full accept queue (backlog 0 and a filler connection
 * nobody accepts) drops the client's SYN, so the client's first send gets
 * EAGAIN and it must wait for writable. A thread starts accepting after
 * 150 ms; the SYN sent again (after about 1 s) completes the handshake, and
 * the transfer must still succeed, on one connection. */

typedef struct {
    int lfd;
    int stop[2];
    int served;
} slow_srv;

static void *slow_accept_main(void *ud)
{
    slow_srv *s = ud;
    struct pollfd pf[8];
    int n = 0;
    char buf[4096];
    size_t have[8] = {0};
    struct timespec ts = {.tv_nsec = 150 * 1000000L};
    nanosleep(&ts, NULL);
    pf[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
    pf[n++] = (struct pollfd){.fd = s->stop[0], .events = POLLIN};
    while (poll(pf, (nfds_t)n, 4000) > 0 && !(pf[1].revents & POLLIN)) {
        if ((pf[0].revents & POLLIN) && n < 8) {
            int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                pf[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
        }
        for (int i = 2; i < n; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            ssize_t k = recv(pf[i].fd, buf, sizeof buf, 0);
            if (k <= 0) {
                pf[i].events = 0;
                continue;
            }
            have[i] += (size_t)k;
            if (memmem(buf, (size_t)k, "\r\n\r\n", 4)) {   /* the test's body is tiny */
                send_str(pf[i].fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                s->served++;
            }
        }
    }
    for (int i = 2; i < n; i++)
        close(pf[i].fd);
    return NULL;
}

Test(h1_client, connect_still_in_progress_waits_for_writable)
{
    slow_srv s = {0};
    cr_assert_eq(pipe2(s.stop, O_CLOEXEC), 0);
    s.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s.lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(s.lfd, 0), 0);
    socklen_t len = sizeof a;
    getsockname(s.lfd, (struct sockaddr *)&a, &len);
    /* Fill the accept queue: these connect and are never accepted first. */
    int filler[2];
    for (int i = 0; i < 2; i++) {
        filler[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(filler[i], (struct sockaddr *)&a, sizeof a);
    }
    struct timespec ts = {.tv_nsec = 50 * 1000000L};
    nanosleep(&ts, NULL);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, slow_accept_main, &s), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/x", ntohs(a.sin_port));
    chain ch = {.timeout_ms = 4000};
    run_chain(&ch, 1);
    cr_assert_eq(write(s.stop[1], "x", 1), 1);
    pthread_join(th, NULL);
    for (int i = 0; i < 2; i++)
        close(filler[i]);
    close(s.lfd);
    close(s.stop[0]);
    close(s.stop[1]);
    cr_assert_eq(ch.o[0].transport, QT_HTTP_OK, "%s", ch.o[0].error);
    cr_assert_eq(ch.o[0].status, 200);
    cr_assert_str_eq(ch.o[0].body, "ok");
    cr_assert_eq(ch.o[0].num_connects, 1);
    cr_assert_eq(s.served, 1);
    /* The SYN was dropped and sent again: the connect took the retransmit. */
    cr_assert_geq(ch.o[0].wall_ms, 500, "took %lld ms: was the connect ever in progress?",
                  (long long)ch.o[0].wall_ms);
}
