/* transport_live.c: the live transport of contract C: each engine loop gets
 * a qt_http_multi (libcurl's multi interface driven by that loop), and
 * post / abort map one to one onto qt_http_multi_post / _abort.
 */
#include "quotatop/transport.h"

static void *live_open(const qt_transport *t, qt_loop *loop)
{
    (void)t;
    qt_http_multi *m = qt_http_multi_new(loop);
    if (m)
        qt_http_multi_set_max_connects(m, QT_HTTP_MULTI_MAX_CONNECTS);
    return m;
}

static void live_close(void *conn)
{
    qt_http_multi_free(conn);
}

static void *live_post(void *conn, const char *url, const char *const *header_lines, size_t n_headers,
                       const char *body, size_t len, int timeout_ms, qt_http_on_data on_data,
                       qt_http_on_done on_done, void *ud)
{
    return qt_http_multi_post(conn, url, header_lines, n_headers, body, len, timeout_ms, on_data,
                              on_done, ud);
}

static void live_abort(void *conn, void *xfer)
{
    qt_http_multi_abort(conn, xfer);
}

static void live_drain(void *conn)
{
    qt_http_multi_drain(conn);
}

static const qt_transport live = {
    .open = live_open, .close = live_close, .post = live_post, .abort = live_abort,
    .drain = live_drain,
};

const qt_transport *qt_transport_live(void)
{
    return &live;
}
