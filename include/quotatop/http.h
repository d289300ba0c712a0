/* http.h: the libcurl layer. One POST, a response with status, headers and
 * body, or a transport error classified for the retry policy.
 *
 * A qt_http wraps one CURL easy handle that is reused across requests, so
 * connections to the same host are kept alive between calls (libcurl keeps
 * its connection cache in the easy handle). Every handle sets
 * CURLOPT_NOSIGNAL, TCP keepalive, default TLS verification, and leaves the
 * proxy settings to libcurl's defaults (http_proxy, https_proxy, no_proxy
 * from the environment).
 *
 * qt_http_multi (at the end) is the event-loop client: many transfers at
 * once on one qt_loop through libcurl's multi interface, with the same
 * response struct and transport classification; plain-HTTP transfers to a
 * numeric address or localhost go through quotatop's own HTTP/1.1 client
 * instead (src/upstream/h1.h), unless a proxy is set in the environment or
 * QT_HTTP_CLIENT=curl.
 *
 * Thread-safety: a qt_http belongs to one thread (one per worker); a
 * qt_http_multi and its transfers belong to its loop's thread.
 * qt_http_global_init() must run once, before any thread creates a handle;
 * qt_http_global_cleanup() once, after every handle is freed.
 */
#ifndef QT_HTTP_H
#define QT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"
#include "quotatop/loop.h"

/* One response header. Names keep the case the server sent; compare them
 * case-insensitively. */
typedef struct {
    char *name;
    char *value;   /* leading and trailing whitespace removed */
} qt_http_header;

typedef enum {
    QT_HTTP_OK = 0,        /* a complete HTTP response arrived (any status) */
    QT_HTTP_TIMEOUT,       /* timeout_ms passed (connect or transfer) */
    QT_HTTP_CONNECT,       /* DNS failure, connection refused, TLS handshake failure */
    QT_HTTP_ABORTED,       /* the stream callback asked to stop */
    QT_HTTP_OTHER,         /* any other transport failure (reset, bad response...) */
} qt_http_transport;

typedef struct {
    int status;                  /* HTTP status; 0 when no response line arrived */
    qt_http_transport transport; /* QT_HTTP_OK unless the transfer failed */
    char error[256];             /* curl's message when transport != OK, else "" */
    qt_http_header *headers;     /* headers of the final response (after 1xx) */
    size_t n_headers;
    char *body;                  /* heap, NUL-terminated; "" (never NULL) after
                                  * qt_http_post returns QT_OK; for the stream
                                  * variant it holds the body only when the status
                                  * is not 2xx (error bodies are not streamed) */
    size_t body_len;
    int64_t elapsed_ms;          /* total time of the transfer */
    long num_connects;           /* new connections this transfer made (0 = reused) */
    int64_t ttfb_ms;             /* time to the first byte of the response (headers) */
} qt_http_response;

typedef struct qt_http qt_http;

/* Calls curl_global_init once. Call from main before any thread starts.
 * Returns QT_OK, or QT_ERR_IO if libcurl cannot initialise. */
qt_err qt_http_global_init(void);
/* Calls curl_global_cleanup. Call after every qt_http is freed. */
void qt_http_global_cleanup(void);

/* Returns a new handle, or NULL when libcurl cannot create one. */
qt_http *qt_http_new(void);
/* Frees the handle and closes its connections. Accepts NULL. */
void qt_http_free(qt_http *h);

/* Finds a response header by name (case-insensitive). Returns its value
 * (owned by resp) or NULL. */
const char *qt_http_response_header(const qt_http_response *resp, const char *name);

/* POSTs body (len bytes) to url with the given header lines ("Name: value";
 * they are not copied beyond the call and never logged). timeout_ms bounds
 * the whole transfer (0 = no limit). Fills *resp, which the caller frees with
 * qt_http_response_free, whatever the return value.
 * Returns QT_OK when the call completed as a transfer, even if it failed at
 * the transport level (see resp->transport) or the status is not 2xx;
 * QT_ERR_NOMEM or QT_ERR_INVALID (NULL arguments) otherwise. */
qt_err qt_http_post(qt_http *h, const char *url, const char *const *header_lines,
                    size_t n_headers, const char *body, size_t len, int timeout_ms,
                    qt_http_response *resp);

/* Receives the body as it arrives. Returns 0 to continue, nonzero to abort
 * the transfer (resp->transport becomes QT_HTTP_ABORTED). */
typedef int (*qt_http_on_data)(void *ud, const char *buf, size_t n);

/* As qt_http_post, but a 2xx body is handed to on_data as it arrives instead
 * of being stored (resp->body stays ""). A non-2xx body is stored in
 * resp->body so the caller can parse the error. resp->status and
 * resp->headers are already set when on_data is first called, so the caller
 * may look at them there. timeout_ms bounds the whole transfer. */
qt_err qt_http_post_stream(qt_http *h, const char *url, const char *const *header_lines,
                           size_t n_headers, const char *body, size_t len, int timeout_ms,
                           qt_http_on_data on_data, void *ud, qt_http_response *resp);

/* Sets a check that transfers on h poll (about once a second while idle,
 * more often while data flows); when it returns nonzero the transfer stops
 * with transport QT_HTTP_ABORTED. NULL removes it. For shutdown and cancel. */
void qt_http_set_abort(qt_http *h, int (*should_abort)(void *ud), void *ud);

/* Frees what resp holds and zeroes it. Accepts NULL and a zeroed struct. */
void qt_http_response_free(qt_http_response *resp);

/* ---- the event-loop client (src/upstream/http_multi.c) ----
 *
 * One qt_http_multi per qt_loop, driving libcurl's multi interface from the
 * loop: curl's sockets become qt_loop_io_watch watches and curl's one timeout
 * a qt_loop timer, so thousands of transfers are in flight on one thread.
 * Connections are kept alive in the multi's cache and reused by later
 * transfers to the same host; any number of connections per host is
 * allowed, and the cache keeps up to QT_HTTP_MULTI_MAX_CONNECTS idle ones.
 * Every handle sets CURLOPT_NOSIGNAL. Use it with a live loop: a manual
 * clock does not drive sockets (use a fake transport in virtual time). */

typedef struct qt_http_multi qt_http_multi;   /* one per loop; loop thread only */
typedef struct qt_http_xfer qt_http_xfer;

/* Called exactly once per transfer, on the loop thread, when it completes,
 * fails, times out or is aborted. resp points to storage that is valid only
 * during the call; its contents (headers, body) belong to the callee, who
 * frees them with qt_http_response_free(resp) before returning, or copies
 * the struct (*resp) to keep them and frees the copy later. The transfer's
 * handle is invalid from the moment on_done starts. */
typedef void (*qt_http_on_done)(void *ud, qt_http_response *resp);

#define QT_HTTP_MULTI_MAX_CONNECTS 10000   /* idle connections kept, by default */

/* Returns a client driven by l (which must outlive it), or NULL when out of
 * memory or libcurl fails. qt_http_global_init must have run. */
qt_http_multi *qt_http_multi_new(qt_loop *l);
/* Aborts every transfer still running (each on_done runs with
 * QT_HTTP_ABORTED before this returns; they may not start new ones), closes
 * the connections and frees the client. Not from inside one of its own
 * callbacks. Accepts NULL. */
void qt_http_multi_free(qt_http_multi *m);

/* Starts POSTing body (len bytes) to url with the header lines ("Name:
 * value"; never logged). Headers and body are copied, so the caller may free
 * them at once. timeout_ms bounds the whole transfer (0 = no limit;
 * QT_HTTP_TIMEOUT when it passes). on_data NULL buffers the whole body into
 * resp->body; otherwise a 2xx body goes to on_data as it arrives (a nonzero
 * return aborts the transfer: QT_HTTP_ABORTED) and a non-2xx body is still
 * buffered into resp->body for the error parser. on_done runs exactly once,
 * later (never from inside this call). May be called from any callback on
 * the loop thread, on_data and on_done included.
 * Returns the transfer's handle, valid until on_done starts; NULL only when
 * out of memory, or when m, url or on_done is NULL or body is NULL with
 * len > 0 (then nothing is called). */
qt_http_xfer *qt_http_multi_post(qt_http_multi *m, const char *url,
                                 const char *const *header_lines, size_t n_headers,
                                 const char *body, size_t len, int timeout_ms,
                                 qt_http_on_data on_data, qt_http_on_done on_done, void *ud);

/* Stops a transfer at any point: on_done runs with transport QT_HTTP_ABORTED
 * (at once, or, when called from inside one of m's on_data callbacks, as soon
 * as libcurl returns to the loop; no more on_data calls either way). x must
 * be a handle whose on_done has not started. Accepts NULL. */
void qt_http_multi_abort(qt_http_multi *m, qt_http_xfer *x);

/* Transfers started and not yet done (on_done not yet run). */
size_t qt_http_multi_active(const qt_http_multi *m);

/* Idle connections the cache keeps (CURLMOPT_MAXCONNECTS; default
 * QT_HTTP_MULTI_MAX_CONNECTS). Raise it with the concurrency you run. */
void qt_http_multi_set_max_connects(qt_http_multi *m, long n);

/* No more work is coming but what is in flight (and perhaps a retry): keep
 * no idle connection from now on. Each connection is reset (SO_LINGER 0, no
 * TIME_WAIT left) as its transfer ends, so closing 10,000 connections is
 * spread over their answers instead of piling up in qt_http_multi_free. A
 * later transfer opens a fresh connection (and is not kept either). Loop
 * thread only, not from inside an on_data callback. */
void qt_http_multi_drain(qt_http_multi *m);

#endif /* QT_HTTP_H */
