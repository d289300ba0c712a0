/* http_call.c: one HTTP POST's libcurl plumbing, shared by the blocking
 * client (http.c) and the event-loop client (http_multi.c); see http_int.h.
 *
 * DESIGN. The header callback rebuilds the header list at each status line,
 * so the list describes the final response (after any 1xx); the write
 * callback either stores the body or, when a streaming sink is set and the
 * status is 2xx, hands the bytes to it. A CURLcode is folded into the four
 * transport kinds the retry policy needs. Header lines (one holds the API
 * key) are wiped from curl's copies before they are freed, and
 * CURLOPT_VERBOSE is never set, so the key is never printed.
 */
#include "http_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void free_headers(qt_http_response *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    r->headers = NULL;
    r->n_headers = 0;
}

void qt_http_response_free(qt_http_response *resp)
{
    if (resp == NULL)
        return;
    free_headers(resp);
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}

const char *qt_http_response_header(const qt_http_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->n_headers; i++)
        if (!strcasecmp(resp->headers[i].name, name))
            return resp->headers[i].value;
    return NULL;
}

static bool body_append(http_call *c, const char *p, size_t n)
{
    qt_http_response *r = c->resp;
    if (r->body_len + n > HTTP_MAX_BODY) {
        c->too_big = true;
        return false;
    }
    if (r->body_len + n + 1 > c->body_cap) {
        /* The empty body of a request still on the wire costs one byte,
         * not a page (10,000 in flight: 40 MB less); answers start at 1 KB. */
        size_t cap = c->body_cap > 1 ? c->body_cap : n == 0 ? 1 : 1024;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (b == NULL) {
            c->nomem = true;
            return false;
        }
        r->body = b;
        c->body_cap = cap;
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    http_call *c = ud;
    qt_http_response *r = c->resp;
    size_t n = size * nitems, len = n;
    if (c->aborted)
        return 0;
    while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n'))
        len--;
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
        /* A new response begins (after 1xx or a redirect): start over. */
        free_headers(r);
        const char *sp = memchr(buf, ' ', len);
        r->status = sp ? atoi(sp + 1) : 0;
        return n;
    }
    const char *colon = memchr(buf, ':', len);
    if (colon == NULL || colon == buf)
        return n;   /* blank line at the end of the headers, or junk */
    size_t nlen = (size_t)(colon - buf);
    const char *v = colon + 1, *end = buf + len;
    while (v < end && isspace((unsigned char)*v))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    qt_http_header *hs = realloc(r->headers, (r->n_headers + 1) * sizeof *hs);
    if (hs == NULL) {
        c->nomem = true;
        return 0;
    }
    r->headers = hs;
    char *name = strndup(buf, nlen), *value = strndup(v, (size_t)(end - v));
    if (name == NULL || value == NULL) {
        free(name);
        free(value);
        c->nomem = true;
        return 0;
    }
    hs[r->n_headers].name = name;
    hs[r->n_headers].value = value;
    r->n_headers++;
    return n;
}

static size_t on_write(char *buf, size_t size, size_t nmemb, void *ud)
{
    http_call *c = ud;
    size_t n = size * nmemb;
    int st = c->resp->status;
    if (c->aborted)
        return 0;   /* the owner aborted: makes curl fail with CURLE_WRITE_ERROR */
    if (c->on_data && st >= 200 && st < 300) {
        if (c->on_data(c->ud, buf, n) != 0) {
            c->aborted = true;
            return 0;
        }
        return n;
    }
    return body_append(c, buf, n) ? n : 0;
}

static qt_http_transport classify(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return QT_HTTP_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return QT_HTTP_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return QT_HTTP_CONNECT;
    default:
        return QT_HTTP_OTHER;
    }
}

/* Frees curl's copies of the header lines, wiping them first (one holds the
 * API key). */
static void free_slist_wiped(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next) {
        volatile char *ch = p->data;
        while (ch && *ch)
            *ch++ = '\0';
    }
    curl_slist_free_all(l);
}

qt_err http_call_init_plain(http_call *c, qt_http_response *resp, qt_http_on_data on_data,
                            void *ud)
{
    memset(resp, 0, sizeof *resp);
    *c = (http_call){.resp = resp, .on_data = on_data, .ud = ud};
    return body_append(c, "", 0) ? QT_OK : QT_ERR_NOMEM;
}

bool http_call_line(http_call *c, const char *line, size_t len)
{
    return on_header((char *)line, 1, len, c) == len && !c->aborted && !c->nomem;
}

bool http_call_body(http_call *c, const char *p, size_t n)
{
    if (n == 0)
        return !c->aborted;
    return on_write((char *)p, 1, n, c) == n;
}

qt_err http_call_end(http_call *c, qt_http_transport t, const char *error, int64_t elapsed_ms,
                     int64_t ttfb_ms, long connects)
{
    qt_http_response *resp = c->resp;
    free_slist_wiped(c->headers);
    c->headers = NULL;
    resp->num_connects = connects;
    resp->elapsed_ms = elapsed_ms;
    resp->ttfb_ms = ttfb_ms;
    if (c->nomem)
        return QT_ERR_NOMEM;
    resp->transport = t;
    if (t != QT_HTTP_OK) {
        if (c->aborted)
            resp->transport = QT_HTTP_ABORTED;
        if (c->too_big)
            snprintf(resp->error, sizeof resp->error, "response body larger than %u bytes",
                     HTTP_MAX_BODY);
        else
            snprintf(resp->error, sizeof resp->error, "%s", error && *error ? error : "transfer failed");
    }
    return QT_OK;
}

qt_err http_call_init(http_call *c, qt_http_response *resp, const char *const *header_lines,
                      size_t n_headers, qt_http_on_data on_data, void *ud)
{
    if (http_call_init_plain(c, resp, on_data, ud) != QT_OK)
        return QT_ERR_NOMEM;
    struct curl_slist *hl = NULL;
    for (size_t i = 0; i <= n_headers; i++) {
        /* The last line turns off the "Expect: 100-continue" round trip. */
        struct curl_slist *t = curl_slist_append(hl, i < n_headers ? header_lines[i] : "Expect:");
        if (t == NULL) {
            free_slist_wiped(hl);
            return QT_ERR_NOMEM;
        }
        hl = t;
    }
    c->headers = hl;
    return QT_OK;
}

void http_call_setopts(http_call *c, CURL *e, const char *url, const char *body, size_t len,
                       int timeout_ms)
{
    c->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 0));
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");   /* any encoding curl can decode */
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 1L);
}

qt_err http_call_finish(http_call *c, CURL *e, CURLcode rc)
{
    qt_http_response *resp = c->resp;
    /* Drop our pointers from the handle before freeing what they point to. */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);

    long code = 0, connects = 0;
    curl_off_t total_us = 0, first_us = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total_us);
    curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &first_us);
    if (code > 0)
        resp->status = (int)code;
    qt_http_transport t = rc == CURLE_ABORTED_BY_CALLBACK ? QT_HTTP_ABORTED : classify(rc);
    return http_call_end(c, t, c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc),
                         (int64_t)(total_us / 1000), (int64_t)(first_us / 1000), connects);
}
