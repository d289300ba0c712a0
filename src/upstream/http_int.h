/* http_int.h: one HTTP POST's plumbing, shared by the blocking client
 * (http.c, curl_easy_perform) and the event-loop client (http_multi.c, the
 * multi interface). Internal to src/upstream.
 *
 * An http_call holds what libcurl's callbacks fill for one transfer: the
 * response (status and headers of the final response, the stored body), the
 * streaming sink for 2xx bodies, curl's copy of the request header lines and
 * its error buffer. Its life: http_call_init → http_call_setopts on an easy
 * handle → the transfer → http_call_finish (fills status, timings and the
 * transport classification, and wipes the header lines).
 *
 * Thread-safety: an http_call belongs to the thread running its transfer.
 */
#ifndef QT_HTTP_INT_H
#define QT_HTTP_INT_H

#include <curl/curl.h>
#include <stdbool.h>

#include "quotatop/http.h"

#define HTTP_MAX_BODY (32u << 20)   /* a stored body larger than this aborts the call */

typedef struct {
    qt_http_response *resp;
    size_t body_cap;
    qt_http_on_data on_data;     /* NULL: store the body */
    void *ud;
    struct curl_slist *headers;  /* curl's copies of the header lines (+ "Expect:") */
    char errbuf[CURL_ERROR_SIZE];
    bool aborted;                /* on_data asked to stop, or the owner aborted */
    bool too_big;                /* stored body passed HTTP_MAX_BODY */
    bool nomem;
} http_call;

/* Zeroes *resp and prepares c for one transfer into it: an empty body ("")
 * and copies of the header lines. Returns QT_OK or QT_ERR_NOMEM (nothing is
 * left allocated in c; resp may hold the empty body, freed by
 * qt_http_response_free). */
qt_err http_call_init(http_call *c, qt_http_response *resp, const char *const *header_lines,
                      size_t n_headers, qt_http_on_data on_data, void *ud);

/* As http_call_init, for a transfer that does not go through libcurl
 * (h1.h): no copies of the header lines are made. */
qt_err http_call_init_plain(http_call *c, qt_http_response *resp, qt_http_on_data on_data,
                            void *ud);

/* For h1.h, which parses the response itself: one line of the head (status
 * or header line without its ending; an empty line ends a head), and body
 * bytes. Each returns false when the transfer must stop (the owner aborted,
 * the sink refused, the body is too big, out of memory). */
bool http_call_line(http_call *c, const char *line, size_t len);
bool http_call_body(http_call *c, const char *p, size_t n);

/* Ends a transfer with the transport kind, message and timings given:
 * wipes and frees the header lines, fills resp's timings, transport and
 * error (an abort or a body too big wins over the message). h1.h calls it;
 * http_call_finish is it with what libcurl reports. Returns QT_OK, or
 * QT_ERR_NOMEM when a callback ran out of memory. */
qt_err http_call_end(http_call *c, qt_http_transport t, const char *error, int64_t elapsed_ms,
                     int64_t ttfb_ms, long connects);

/* Sets every option of a POST of body (len bytes, not copied: it must stay
 * valid until http_call_finish) to url on e, with c's callbacks. */
void http_call_setopts(http_call *c, CURL *e, const char *url, const char *body, size_t len,
                       int timeout_ms);

/* After the transfer on e ended with rc: drops c's pointers from e, wipes
 * and frees the header lines, and fills resp's status, elapsed_ms,
 * num_connects, transport and error. Returns QT_OK, or QT_ERR_NOMEM when a
 * callback ran out of memory (resp is then incomplete). */
qt_err http_call_finish(http_call *c, CURL *e, CURLcode rc);

#endif /* QT_HTTP_INT_H */
