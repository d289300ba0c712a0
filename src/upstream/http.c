/* http.c: the blocking libcurl client (see include/quotatop/http.h).
 *
 * DESIGN. One CURL easy handle per qt_http, kept for the life of the worker:
 * libcurl keeps the connection cache (and DNS cache) in the easy handle, so
 * the second request to a host reuses the kept-alive connection. Options
 * are set afresh on every call (no curl_easy_reset, which would be harmless
 * but pointless). What the callbacks do (headers, body, streaming, the
 * transport classification, wiping the header lines) is shared with the
 * event-loop client and lives in http_call.c; this file adds
 * curl_easy_perform and the owner's abort check, polled from libcurl's
 * progress callback.
 */
#include "quotatop/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

struct qt_http {
    CURL *curl;
    int (*should_abort)(void *ud);   /* polled during transfers; may be NULL */
    void *abort_ud;
};

qt_err qt_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? QT_OK : QT_ERR_IO;
}

void qt_http_global_cleanup(void)
{
    curl_global_cleanup();
}

qt_http *qt_http_new(void)
{
    qt_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->curl = curl_easy_init();
    if (h->curl == NULL) {
        free(h);
        return NULL;
    }
    return h;
}

void qt_http_free(qt_http *h)
{
    if (h == NULL)
        return;
    curl_easy_cleanup(h->curl);
    free(h);
}

/* libcurl's progress callback: polls the owner's abort check (about once a
 * second while idle, more often while data flows). */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    qt_http *h = ud;
    (void)dt; (void)dn; (void)ut; (void)un;
    return h->should_abort && h->should_abort(h->abort_ud) ? 1 : 0;
}

void qt_http_set_abort(qt_http *h, int (*should_abort)(void *ud), void *ud)
{
    if (!h)
        return;
    h->should_abort = should_abort;
    h->abort_ud = ud;
}

static qt_err do_post(qt_http *h, const char *url, const char *const *header_lines,
                      size_t n_headers, const char *body, size_t len, int timeout_ms,
                      qt_http_on_data on_data, void *ud, qt_http_response *resp)
{
    if (resp == NULL)
        return QT_ERR_INVALID;
    memset(resp, 0, sizeof *resp);
    if (h == NULL || url == NULL || (body == NULL && len > 0)) {
        snprintf(resp->error, sizeof resp->error, "invalid arguments");
        resp->transport = QT_HTTP_OTHER;
        return QT_ERR_INVALID;
    }
    http_call call;
    if (http_call_init(&call, resp, header_lines, n_headers, on_data, ud) != QT_OK)
        return QT_ERR_NOMEM;
    CURL *c = h->curl;
    http_call_setopts(&call, c, url, body, len, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, h->should_abort ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
    CURLcode rc = curl_easy_perform(c);
    return http_call_finish(&call, c, rc);
}

qt_err qt_http_post(qt_http *h, const char *url, const char *const *header_lines,
                    size_t n_headers, const char *body, size_t len, int timeout_ms,
                    qt_http_response *resp)
{
    return do_post(h, url, header_lines, n_headers, body, len, timeout_ms, NULL, NULL, resp);
}

qt_err qt_http_post_stream(qt_http *h, const char *url, const char *const *header_lines,
                           size_t n_headers, const char *body, size_t len, int timeout_ms,
                           qt_http_on_data on_data, void *ud, qt_http_response *resp)
{
    if (on_data == NULL) {
        if (resp)
            memset(resp, 0, sizeof *resp);
        return QT_ERR_INVALID;
    }
    return do_post(h, url, header_lines, n_headers, body, len, timeout_ms, on_data, ud, resp);
}
