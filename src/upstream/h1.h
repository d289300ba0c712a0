/* h1.h: quotatop's own HTTP/1.1 client for plain-HTTP upstreams on a
 * qt_loop (internal to src/upstream; qt_http_multi uses it, see http.h).
 *
 * Why: an upstream on this host or this network (a mock, vLLM, Ollama, a
 * local gateway) is plain HTTP, and there libcurl's generality is most of
 * the client's cost: 14 system calls to open a connection, a liveness poll
 * and a walk over the host's connections before each reuse. Measured: 10,000
 * POSTs at once on two loops to a 2 s upstream take libcurl 3.0 s to the
 * last answer where one epoll thread needs 2.4 s (bench/bare_client.c).
 * HTTPS, host names other than "localhost", and any proxy setting in the
 * environment stay with libcurl (h1_url_parse says which).
 *
 * Two parts:
 * - h1_parser: an incremental parser of one HTTP/1.x response (status
 *   line, headers, a body by Content-Length, chunked or up to the close).
 *   A pure function of the bytes fed to it: no I/O, no allocation beyond
 *   its line buffer, every size bounded (H1_MAX_*). Fuzzed by
 *   tests/fuzz/fuzz_h1.c.
 * - h1_client: connections (a pool of idle keep-alive ones per host) and
 *   transfers on one loop. A transfer feeds the response into an http_call
 *   (http_int.h: the same header list, body store, streaming sink and
 *   classification as the libcurl path) and ends with one call of its end
 *   callback, never from inside h1_post or h1_abort's caller's stack frame
 *   when that caller is inside the transfer's own sink.
 *
 * Thread-safety: an h1_parser belongs to its caller; an h1_client and its
 * transfers belong to their loop's thread, and take no lock.
 */
#ifndef QT_H1_H
#define QT_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_int.h"
#include "quotatop/loop.h"

/* ---- the response parser ---- */

#define H1_MAX_HEAD_BYTES (100u << 10)   /* status line + headers of one response */
#define H1_MAX_HEADERS 500               /* header lines of one response */
#define H1_MAX_INTERIM 16                /* 1xx responses before the final one */
#define H1_MAX_CHUNK_LINE 4096           /* a chunk-size line, extensions included */
#define H1_MAX_LENGTH (INT64_C(1) << 50) /* a Content-Length or chunk size */

typedef enum {
    H1_MORE = 0,   /* every byte fed was used; the response goes on */
    H1_DONE,       /* the response is complete; *used says how far */
    H1_ERROR,      /* not a valid response: p->error says why */
    H1_STOP,       /* a sink returned nonzero */
} h1_status;

/* What the parser hands on. on_line gets the status line and each header
 * line without its line ending (the final response's and any 1xx's: a new
 * status line means a new response), then an empty line at the end of each
 * head; on_body gets the final response's body bytes, de-chunked. Each
 * returns 0 to go on, nonzero to stop (H1_STOP). */
typedef struct {
    int (*on_line)(void *ud, const char *line, size_t len);
    int (*on_body)(void *ud, const char *p, size_t n);
    void *ud;
} h1_sink;

typedef struct {
    int state;              /* internal */
    int status;             /* of the response being read; 0 before its status line
                             * (and again after a 1xx head) */
    int minor;              /* HTTP/1.minor */
    bool keep_alive;        /* at H1_DONE: the connection may carry another request */
    bool chunked;
    bool has_length;
    bool conn_close;        /* "Connection: close" seen */
    bool conn_keep;         /* "Connection: keep-alive" seen */
    bool head_only;         /* 1xx, 204, 304: no body */
    bool te_close;          /* a Transfer-Encoding not ending in chunked: framed by the close */
    int64_t length;         /* Content-Length, or what is left of the body / chunk */
    size_t head_bytes;      /* bytes of this head so far */
    size_t n_headers;
    int n_interim;
    char *line;             /* a line split across two feeds (malloc, bounded) */
    size_t line_len, line_cap;
    char error[128];
} h1_parser;

/* Ready for one response. h1_parser_free releases the line buffer. */
void h1_parser_init(h1_parser *p);
void h1_parser_free(h1_parser *p);

/* Feeds n bytes. *used (may be NULL) is set to the bytes consumed: n unless
 * H1_DONE came before the end (bytes after a complete response) or an error
 * or stop. After H1_DONE, H1_ERROR or H1_STOP, feed nothing more. */
h1_status h1_parse(h1_parser *p, const char *buf, size_t n, size_t *used, const h1_sink *s);

/* The connection was closed by the server after what was fed. Returns
 * H1_DONE when that ends the response (a body without length or chunks),
 * else H1_ERROR (p->error says what was missing). */
h1_status h1_parse_eof(h1_parser *p);

/* ---- the client ---- */

typedef struct h1_client h1_client;
typedef struct h1_xfer h1_xfer;

/* A transfer ended: transport (QT_HTTP_OK when a whole response arrived)
 * and, unless OK, a message. The http_call has been fed everything; the
 * callee finishes it (http_call_end). The transfer's handle is invalid from
 * the moment this starts. */
typedef void (*h1_end_fn)(void *ud, qt_http_transport transport, const char *error,
                          int64_t elapsed_ms, int64_t ttfb_ms, long connects);

/* A URL h1 can carry, split (pointers into the URL it came from). */
typedef struct {
    const char *auth;               /* authority ("host:port"), in the URL */
    size_t auth_len;
    const char *path;               /* from the first '/' or '?', fragment cut; may be "" */
    size_t path_len;
    char host[64];                  /* the address without brackets ("localhost": 127.0.0.1) */
    int port;
    int family;                     /* AF_INET or AF_INET6 */
} h1_url;

/* True (and *u filled) when url can go through h1: "http://" with a
 * numeric IPv4 or [IPv6] host or "localhost" (no user info). */
bool h1_url_parse(const char *url, h1_url *u);
/* True unless the environment asks for libcurl: a proxy variable set
 * (http_proxy, HTTP_PROXY, all_proxy, ALL_PROXY: those stay libcurl's, with
 * no_proxy), or QT_HTTP_CLIENT=curl. Read once per qt_http_multi. */
bool h1_env_allows(void);

/* A client on l (which must outlive it); NULL when out of memory. */
h1_client *h1_client_new(qt_loop *l);
/* Ends every transfer still running (end with QT_HTTP_ABORTED), resets the
 * idle connections (SO_LINGER 0: no TIME_WAIT left) and frees c. */
void h1_client_free(h1_client *c);
/* Idle connections kept (all hosts); default QT_HTTP_MULTI_MAX_CONNECTS. */
void h1_client_set_max_idle(h1_client *c, size_t n);
/* From now on no connection is kept: each is reset as its transfer ends
 * (see qt_http_multi_drain). */
void h1_client_drain(h1_client *c);

/* POSTs body (len bytes, copied) to the URL u (from h1_url_parse, its
 * string still valid for this call) with the
 * header lines ("Name: value", copied into the request and wiped from it
 * when it ends; a line "Name:" with no value sends nothing), feeding the
 * response to call. timeout_ms bounds the whole transfer (0: none). end
 * runs exactly once, later, on the loop thread. Returns the handle, or NULL
 * when out of memory (end will not run). */
h1_xfer *h1_post(h1_client *c, const h1_url *u, const char *const *header_lines,
                 size_t n_headers, const char *body, size_t len, int timeout_ms,
                 http_call *call, h1_end_fn end, void *ud);

/* Stops x: end runs with QT_HTTP_ABORTED, at once or, when called while x's
 * own response is being fed to its sink, as soon as that returns. */
void h1_abort(h1_client *c, h1_xfer *x);

#endif /* QT_H1_H */
