/* transport.h: how the engine sends an attempt upstream (contract C).
 *
 * The engine sends every attempt through a qt_transport: a table of
 * functions of the same shape as the curl multi client (http.h, contract
 * B): post one request, abort one, each completing through on_data /
 * on_done on the loop the connection belongs to. The live transport is
 * libcurl's multi interface (qt_transport_live). A simulated provider (the
 * replay) supplies its own table and answers from loop timers, so the same
 * engine runs in virtual time with no network and no sleeping.
 *
 * Life of a transport in an engine: qt_engine_start calls open() once per
 * engine loop (before that loop runs) and the engine keeps the returned
 * connection for that loop; every post / abort on it happens on that
 * loop's thread; close() runs once at shutdown after the loop stopped
 * (it aborts what is still in flight: each on_done then runs).
 *
 * Contract of post: the same as qt_http_multi_post. Headers and body are
 * copied; on_data (NULL = buffer the body) receives a 2xx body as it
 * arrives and returns nonzero to abort; on_done runs exactly once, later
 * (never from inside post), with a response the callee frees with
 * qt_http_response_free. NULL only when out of memory (nothing is called).
 * Contract of abort: on_done runs with QT_HTTP_ABORTED, possibly from
 * inside abort (so the engine never calls it with its lock held).
 *
 * Thread-safety: open/close on one thread while the loop is not running;
 * post/abort on the connection's loop thread only. The table itself is
 * read-only and may be shared.
 */
#ifndef QT_TRANSPORT_H
#define QT_TRANSPORT_H

#include <stddef.h>

#include "quotatop/http.h"
#include "quotatop/loop.h"

typedef struct qt_transport qt_transport;

struct qt_transport {
    /* A connection for one loop (NULL when out of memory). */
    void *(*open)(const qt_transport *t, qt_loop *loop);
    /* Aborts what is in flight on it and frees it. Accepts NULL. */
    void (*close)(void *conn);
    /* Starts one request; returns its handle (valid until on_done starts). */
    void *(*post)(void *conn, const char *url, const char *const *header_lines, size_t n_headers,
                  const char *body, size_t len, int timeout_ms, qt_http_on_data on_data,
                  qt_http_on_done on_done, void *ud);
    /* Stops one request (see above). */
    void (*abort)(void *conn, void *xfer);
    /* Optional (NULL = nothing to do): no new work will come but what is in
     * flight and perhaps a retry, so idle connections need not be kept
     * (qt_http_multi_drain). On the connection's loop thread. */
    void (*drain)(void *conn);
    void *ctx;          /* the transport's own state (for open) */
};

/* The live transport: qt_http_multi on the loop (libcurl multi). */
const qt_transport *qt_transport_live(void);

#endif /* QT_TRANSPORT_H */
