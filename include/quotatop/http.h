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
 * Thread-safety: a qt_http belongs to one thread (one per worker).
 * qt_http_global_init() must run once, before any thread creates a handle;
 * qt_http_global_cleanup() once, after every handle is freed.
 */
#ifndef QT_HTTP_H
#define QT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"

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

#endif /* QT_HTTP_H */
