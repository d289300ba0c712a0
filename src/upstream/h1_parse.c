/* h1_parse.c: the HTTP/1.x response parser of h1.h.
 *
 * DESIGN. A state machine fed any number of bytes at a time. Lines (the
 * status line, headers, chunk-size lines, trailers) are handed on straight
 * from the buffer fed when they are whole in it; only a line split across
 * two feeds is copied into p->line, which never grows past the bound of
 * what it holds (H1_MAX_HEAD_BYTES for a head, H1_MAX_CHUNK_LINE for a
 * chunk line), so a server cannot make the parser allocate more. Body bytes
 * go to the sink straight from the buffer fed. The parser reads the
 * headers it needs to frame the body (Content-Length, Transfer-Encoding,
 * Connection); every other header only passes through.
 */
#include "h1.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    S_STATUS,      /* expecting a status line */
    S_HEADER,      /* header lines until the empty one */
    S_BODY_LEN,    /* p->length bytes of body left */
    S_BODY_CLOSE,  /* body until the server closes */
    S_CHUNK_SIZE,  /* a chunk-size line */
    S_CHUNK_DATA,  /* p->length bytes of this chunk left */
    S_CHUNK_CRLF,  /* the line end after a chunk's data */
    S_TRAILER,     /* trailer lines after the last chunk, until the empty one */
    S_DONE,
    S_ERROR,
};

void h1_parser_init(h1_parser *p)
{
    memset(p, 0, sizeof *p);
    p->state = S_STATUS;
}

void h1_parser_free(h1_parser *p)
{
    free(p->line);
    p->line = NULL;
    p->line_len = p->line_cap = 0;
}

static h1_status fail(h1_parser *p, const char *what)
{
    snprintf(p->error, sizeof p->error, "bad HTTP response from the upstream: %s", what);
    p->state = S_ERROR;
    return H1_ERROR;
}

/* fail, with *used set to the bytes consumed before the problem. */
static h1_status fail_at(h1_parser *p, size_t *used, size_t i, const char *what)
{
    if (used)
        *used = i;
    return fail(p, what);
}

/* Appends n bytes of a line that is not whole yet to p->line. */
static bool line_keep(h1_parser *p, const char *b, size_t n)
{
    if (p->line_len + n > p->line_cap) {
        size_t cap = p->line_cap ? p->line_cap : 256;
        while (cap < p->line_len + n)
            cap *= 2;
        char *nb = realloc(p->line, cap);
        if (nb == NULL)
            return false;
        p->line = nb;
        p->line_cap = cap;
    }
    memcpy(p->line + p->line_len, b, n);
    p->line_len += n;
    return true;
}

/* A value that must be a decimal number no larger than H1_MAX_LENGTH. */
static bool parse_length(const char *v, size_t n, int64_t *out)
{
    if (n == 0)
        return false;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (v[i] - '0');
        if (x > H1_MAX_LENGTH)
            return false;
    }
    *out = x;
    return true;
}

/* True when the comma-separated list v (n bytes) has token t. */
static bool has_token(const char *v, size_t n, const char *t)
{
    size_t tl = strlen(t);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && !strncasecmp(v + s, t, tl))
            return true;
    }
    return false;
}

/* True when the last coding of the list v is t. */
static bool last_token_is(const char *v, size_t n, const char *t)
{
    size_t e = n;
    while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
        e--;
    size_t s = e;
    while (s > 0 && v[s - 1] != ',')
        s--;
    while (s < e && (v[s] == ' ' || v[s] == '\t'))
        s++;
    size_t tl = strlen(t);
    return e - s == tl && !strncasecmp(v + s, t, tl);
}

static h1_status status_line(h1_parser *p, const char *l, size_t n, const h1_sink *s)
{
    /* "HTTP/1.x SP ddd [SP reason]"; an empty line before it (after a
     * body some servers end with an extra CRLF) is skipped. */
    if (n == 0)
        return H1_MORE;
    if (n < 12 || strncmp(l, "HTTP/1.", 7) || !isdigit((unsigned char)l[7]) || l[8] != ' ' ||
        !isdigit((unsigned char)l[9]) || !isdigit((unsigned char)l[10]) ||
        !isdigit((unsigned char)l[11]) || (n > 12 && l[12] != ' '))
        return fail(p, "no HTTP/1.x status line");
    int st = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (st < 100)
        return fail(p, "status code below 100");
    if (st == 101)
        return fail(p, "101 Switching Protocols to a POST");
    p->status = st;
    p->minor = l[7] - '0';
    p->chunked = p->has_length = p->conn_close = p->conn_keep = p->te_close = false;
    p->length = 0;
    p->n_headers = 0;
    p->head_only = st < 200 || st == 204 || st == 304;
    p->state = S_HEADER;
    return s->on_line(s->ud, l, n) ? H1_STOP : H1_MORE;
}

static h1_status header_line(h1_parser *p, const char *l, size_t n, const h1_sink *s)
{
    if (n == 0) {
        if (s->on_line(s->ud, l, 0))
            return H1_STOP;
        if (p->status < 200) {   /* an interim answer: the real one follows */
            if (++p->n_interim > H1_MAX_INTERIM)
                return fail(p, "too many 1xx answers");
            p->status = 0;
            p->head_bytes = 0;
            p->state = S_STATUS;
            return H1_MORE;
        }
        if (p->head_only) {
            p->state = S_DONE;
        } else if (p->chunked) {
            p->state = S_CHUNK_SIZE;
        } else if (p->has_length && !p->te_close) {
            p->state = p->length > 0 ? S_BODY_LEN : S_DONE;
        } else {
            p->state = S_BODY_CLOSE;
        }
        return H1_MORE;
    }
    if (++p->n_headers > H1_MAX_HEADERS)
        return fail(p, "too many header lines");
    const char *colon = memchr(l, ':', n);
    if (colon) {
        size_t nl = (size_t)(colon - l);
        const char *v = colon + 1, *end = l + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t vl = (size_t)(end - v);
        if (nl == 14 && !strncasecmp(l, "Content-Length", 14)) {
            int64_t len;
            if (!parse_length(v, vl, &len))
                return fail(p, "bad Content-Length");
            if (p->has_length && len != p->length)
                return fail(p, "two different Content-Lengths");
            p->has_length = true;
            p->length = len;
        } else if (nl == 17 && !strncasecmp(l, "Transfer-Encoding", 17)) {
            /* Transfer-Encoding overrides any Content-Length; a coding
             * other than chunked last is framed by the close. */
            p->chunked = last_token_is(v, vl, "chunked");
            p->te_close = !p->chunked;
        } else if (nl == 10 && !strncasecmp(l, "Connection", 10)) {
            if (has_token(v, vl, "close"))
                p->conn_close = true;
            if (has_token(v, vl, "keep-alive"))
                p->conn_keep = true;
        }
    }
    return s->on_line(s->ud, l, n) ? H1_STOP : H1_MORE;
}

static h1_status chunk_size_line(h1_parser *p, const char *l, size_t n)
{
    int64_t x = 0;
    size_t i = 0;
    for (; i < n && isxdigit((unsigned char)l[i]); i++) {
        int d = isdigit((unsigned char)l[i]) ? l[i] - '0' : (tolower((unsigned char)l[i]) - 'a' + 10);
        x = x * 16 + d;
        if (x > H1_MAX_LENGTH)
            return fail(p, "chunk too large");
    }
    if (i == 0)
        return fail(p, "bad chunk size");
    while (i < n && (l[i] == ' ' || l[i] == '\t'))
        i++;
    if (i < n && l[i] != ';')
        return fail(p, "bad chunk size");
    p->length = x;
    p->state = x > 0 ? S_CHUNK_DATA : S_TRAILER;
    return H1_MORE;
}

/* One whole line (without its ending) in the current state. */
static h1_status on_line(h1_parser *p, const char *l, size_t n, const h1_sink *s)
{
    switch (p->state) {
    case S_STATUS:
        return status_line(p, l, n, s);
    case S_HEADER:
        return header_line(p, l, n, s);
    case S_CHUNK_SIZE:
        return chunk_size_line(p, l, n);
    case S_CHUNK_CRLF:
        if (n != 0)
            return fail(p, "no line end after a chunk");
        p->state = S_CHUNK_SIZE;
        return H1_MORE;
    case S_TRAILER:
        if (n == 0)
            p->state = S_DONE;
        else if (++p->n_headers > H1_MAX_HEADERS)
            return fail(p, "too many trailer lines");
        return H1_MORE;
    default:
        return fail(p, "internal parser state");
    }
}

static bool is_line_state(int st)
{
    return st == S_STATUS || st == S_HEADER || st == S_CHUNK_SIZE || st == S_CHUNK_CRLF ||
           st == S_TRAILER;
}

static void set_keep_alive(h1_parser *p)
{
    if (p->state != S_DONE) {
        p->keep_alive = false;
        return;
    }
    bool framed = p->head_only || p->chunked || (p->has_length && !p->te_close);
    p->keep_alive = framed && !p->conn_close && (p->minor >= 1 || p->conn_keep);
}

h1_status h1_parse(h1_parser *p, const char *buf, size_t n, size_t *used, const h1_sink *s)
{
    size_t i = 0;
    h1_status r = H1_MORE;
    if (p->state == S_DONE || p->state == S_ERROR) {
        if (used)
            *used = 0;
        return p->state == S_DONE ? H1_DONE : H1_ERROR;
    }
    while (i < n && r == H1_MORE && p->state != S_DONE) {
        if (is_line_state(p->state)) {
            const char *nl = memchr(buf + i, '\n', n - i);
            size_t take = nl ? (size_t)(nl - (buf + i)) + 1 : n - i;
            bool head = p->state == S_STATUS || p->state == S_HEADER;
            if (head ? p->head_bytes + take > H1_MAX_HEAD_BYTES
                     : p->line_len + take > H1_MAX_CHUNK_LINE)
                return fail_at(p, used, i, head ? "response head too large" : "chunk line too long");
            if (head)
                p->head_bytes += take;
            if (nl == NULL) {   /* keep the start of the line for the next feed */
                if (!line_keep(p, buf + i, take))
                    return fail_at(p, used, i, "out of memory");
                i += take;
                break;
            }
            const char *l = buf + i;
            size_t ll = take - 1;   /* without the '\n' */
            if (p->line_len > 0) {  /* the line began in an earlier feed */
                if (!line_keep(p, buf + i, take))
                    return fail_at(p, used, i, "out of memory");
                l = p->line;
                ll = p->line_len - 1;
            }
            if (ll > 0 && l[ll - 1] == '\r')
                ll--;
            i += take;
            p->line_len = 0;
            r = on_line(p, l, ll, s);
            continue;
        }
        size_t avail = n - i;
        if (p->state == S_BODY_CLOSE) {
            if (s->on_body(s->ud, buf + i, avail))
                r = H1_STOP;
            i = n;
            continue;
        }
        /* S_BODY_LEN or S_CHUNK_DATA: p->length bytes left */
        size_t take = (int64_t)avail < p->length ? avail : (size_t)p->length;
        if (s->on_body(s->ud, buf + i, take))
            r = H1_STOP;
        i += take;
        p->length -= (int64_t)take;
        if (p->length == 0)
            p->state = p->state == S_BODY_LEN ? S_DONE : S_CHUNK_CRLF;
    }
    if (used)
        *used = i;
    if (r != H1_MORE) {
        if (r == H1_STOP)
            p->state = S_ERROR;
        return r;
    }
    if (p->state == S_DONE) {
        set_keep_alive(p);
        return H1_DONE;
    }
    return H1_MORE;
}

h1_status h1_parse_eof(h1_parser *p)
{
    switch (p->state) {
    case S_BODY_CLOSE:
        p->state = S_DONE;
        set_keep_alive(p);
        return H1_DONE;
    case S_DONE:
        return H1_DONE;
    case S_ERROR:
        return H1_ERROR;
    case S_STATUS:
        return fail(p, p->n_interim || p->line_len ? "closed in the middle of the head"
                                                   : "closed before any answer");
    case S_HEADER:
        return fail(p, "closed in the middle of the head");
    default:
        return fail(p, "closed before the end of the body");
    }
}
