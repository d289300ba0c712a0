/* http.c: the libcurl layer (see include/quotatop/http.h).
 *
 * DESIGN. One CURL easy handle per qt_http, kept for the life of the worker:
 * libcurl keeps the connection cache (and DNS cache) in the easy handle, so
 * the second request to a host reuses the kept-alive connection. Options
 * are set afresh on every call (no curl_easy_reset, which would be harmless
 * but pointless). The header callback rebuilds the header list at each
 * status line, so the list describes the final response (after any 1xx);
 * the write callback either stores the body or, for the stream variant and
 * a 2xx status, hands the bytes to the caller. A CURLcode is folded into
 * the four transport kinds the retry policy needs. Header lines (one holds
 * the API key) are wiped from curl's copies before they are freed, and
 * CURLOPT_VERBOSE is never set, so the key is never printed.
 */
#include "quotatop/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_MAX_BODY (32u << 20)   /* a stored body larger than this aborts the call */

struct qt_http {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    int (*should_abort)(void *ud);   /* polled during transfers; may be NULL */
    void *abort_ud;
};

/* State of one transfer, shared by the callbacks. */
typedef struct {
    qt_http_response *resp;
    size_t body_cap;
    qt_http_on_data on_data;   /* NULL: store the body */
    void *ud;
    bool aborted;              /* on_data asked to stop */
    bool too_big;              /* stored body passed HTTP_MAX_BODY */
    bool nomem;
} xfer;

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

static bool body_append(xfer *x, const char *p, size_t n)
{
    qt_http_response *r = x->resp;
    if (r->body_len + n > HTTP_MAX_BODY) {
        x->too_big = true;
        return false;
    }
    if (r->body_len + n + 1 > x->body_cap) {
        size_t cap = x->body_cap ? x->body_cap : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (b == NULL) {
            x->nomem = true;
            return false;
        }
        r->body = b;
        x->body_cap = cap;
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    xfer *x = ud;
    qt_http_response *r = x->resp;
    size_t n = size * nitems, len = n;
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
        x->nomem = true;
        return 0;
    }
    r->headers = hs;
    char *name = strndup(buf, nlen), *value = strndup(v, (size_t)(end - v));
    if (name == NULL || value == NULL) {
        free(name);
        free(value);
        x->nomem = true;
        return 0;
    }
    hs[r->n_headers].name = name;
    hs[r->n_headers].value = value;
    r->n_headers++;
    return n;
}

static size_t on_write(char *buf, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    int st = x->resp->status;
    if (x->on_data && st >= 200 && st < 300) {
        if (x->on_data(x->ud, buf, n) != 0) {
            x->aborted = true;
            return 0;   /* makes curl fail with CURLE_WRITE_ERROR */
        }
        return n;
    }
    return body_append(x, buf, n) ? n : 0;
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
        volatile char *c = p->data;
        while (c && *c)
            *c++ = '\0';
    }
    curl_slist_free_all(l);
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
    xfer x = {.resp = resp, .on_data = on_data, .ud = ud};
    if (!body_append(&x, "", 0))
        return QT_ERR_NOMEM;

    struct curl_slist *hl = NULL;
    for (size_t i = 0; i < n_headers; i++) {
        struct curl_slist *t = curl_slist_append(hl, header_lines[i]);
        if (t == NULL) {
            free_slist_wiped(hl);
            return QT_ERR_NOMEM;
        }
        hl = t;
    }
    /* No "Expect: 100-continue" round trip for large bodies. */
    struct curl_slist *t = curl_slist_append(hl, "Expect:");
    if (t == NULL) {
        free_slist_wiped(hl);
        return QT_ERR_NOMEM;
    }
    hl = t;

    CURL *c = h->curl;
    h->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 0));
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");   /* any encoding curl can decode */
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, h->should_abort ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);

    CURLcode rc = curl_easy_perform(c);

    /* Drop our pointers from the handle before freeing what they point to. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    free_slist_wiped(hl);

    long code = 0, connects = 0;
    curl_off_t total_us = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total_us);
    if (code > 0)
        resp->status = (int)code;
    resp->num_connects = connects;
    resp->elapsed_ms = (int64_t)(total_us / 1000);

    if (x.nomem)
        return QT_ERR_NOMEM;
    resp->transport = classify(rc);
    if (rc != CURLE_OK) {
        if (x.aborted || rc == CURLE_ABORTED_BY_CALLBACK)
            resp->transport = QT_HTTP_ABORTED;
        if (x.too_big)
            snprintf(resp->error, sizeof resp->error, "response body larger than %u bytes",
                     HTTP_MAX_BODY);
        else
            snprintf(resp->error, sizeof resp->error, "%s",
                     h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
    }
    return QT_OK;
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
