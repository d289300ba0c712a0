/* test_h1.c: Criterion suite "h1": the HTTP/1.x response parser of
 * src/upstream/h1.h (h1_parser; the client part is tested elsewhere).
 *
 * Every response goes through feed(), which hands the text to h1_parse in
 * pieces of k bytes (k = 0: all at once) and records what the sink got:
 * the lines joined with '\n' (an empty line shows as "\n\n" after the line
 * before it) and the body. expect_done() runs one response for a set of
 * piece sizes and asserts the same lines, body, *used and keep_alive for
 * each, so the parser's answer is shown not to depend on where the reads
 * split the bytes. Each call checks *used against its contract: at most
 * the piece, and the whole piece on H1_MORE (feed starts it at SIZE_MAX so
 * a call that forgets to set it fails).
 *
 * Covered: framing by Content-Length, chunks (extensions, trailers not
 * reported, bare LF), 1xx interim heads, 204/304, the close (with
 * h1_parse_eof); keep_alive for HTTP/1.1 and 1.0; bytes after a response
 * left unconsumed; every bound of h1.h at and just past its limit; bad
 * status lines, lengths and chunk sizes; eof in each part; a stopping sink.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/upstream/h1.h"

TestSuite(h1, .timeout = 30);

/* ---- the recording sink and the feeder ---------------------------------- */

typedef struct {
    char *lines;           /* every on_line, each followed by '\n'; NUL-terminated */
    size_t lines_len, lines_cap;
    char *body;            /* every on_body byte; NUL-terminated */
    size_t body_len, body_cap;
    size_t n_lines;        /* on_line calls */
    size_t stop_line;      /* on_line call (1-based) that returns nonzero; 0: none */
    bool stop_body;        /* on_body returns nonzero */
    size_t calls_after_stop;   /* sink calls after one returned nonzero */
    bool stopped;
} rec;

static void append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1)
            c *= 2;
        char *nb = realloc(*buf, c);
        cr_assert_not_null(nb);
        *buf = nb;
        *cap = c;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static int rec_line(void *ud, const char *line, size_t len)
{
    rec *r = ud;
    if (r->stopped)
        r->calls_after_stop++;
    append(&r->lines, &r->lines_len, &r->lines_cap, line, len);
    append(&r->lines, &r->lines_len, &r->lines_cap, "\n", 1);
    r->n_lines++;
    if (r->stop_line && r->n_lines == r->stop_line)
        r->stopped = true;
    return r->stop_line && r->n_lines == r->stop_line;
}

static int rec_body(void *ud, const char *p, size_t n)
{
    rec *r = ud;
    if (r->stopped)
        r->calls_after_stop++;
    append(&r->body, &r->body_len, &r->body_cap, p, n);
    if (r->stop_body)
        r->stopped = true;
    return r->stop_body;
}

static void rec_free(rec *r)
{
    free(r->lines);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* One parse: the parser, what the sink got, the last status and the sum of
 * *used over the calls. */
typedef struct {
    h1_parser p;
    rec r;
    h1_status st;
    size_t used;
    size_t calls;          /* h1_parse calls made */
} run;

/* Feeds n bytes of text to x->p in pieces of k bytes (0: one piece) until
 * the parser answers something other than H1_MORE or the text ends; then,
 * when eof and still H1_MORE, calls h1_parse_eof. Asserts *used on every
 * call as the file's opening says. */
static void feed(run *x, const char *text, size_t n, size_t k, bool eof)
{
    h1_sink s = { rec_line, rec_body, &x->r };
    size_t off = 0;
    x->st = H1_MORE;
    do {
        size_t piece = (k == 0 || n - off < k) ? n - off : k;
        size_t used = SIZE_MAX;
        x->st = h1_parse(&x->p, text + off, piece, &used, &s);
        x->calls++;
        cr_assert_leq(used, piece, "k=%zu: *used %zu for a %zu-byte piece at offset %zu (status %d)",
                      k, used, piece, off, x->st);
        if (x->st == H1_MORE)
            cr_assert_eq(used, piece, "k=%zu: H1_MORE but *used %zu of %zu at offset %zu", k, used,
                         piece, off);
        x->used += used;
        off += piece;
    } while (x->st == H1_MORE && off < n);
    if (eof && x->st == H1_MORE)
        x->st = h1_parse_eof(&x->p);
}

static void run_start(run *x)
{
    memset(x, 0, sizeof *x);
    h1_parser_init(&x->p);
}

static void run_free(run *x)
{
    h1_parser_free(&x->p);
    rec_free(&x->r);
}

/* A fresh parse of text in pieces of k. */
static void run_text(run *x, const char *text, size_t n, size_t k, bool eof)
{
    run_start(x);
    feed(x, text, n, k, eof);
}

static const size_t piece_sizes[] = { 0, 1, 2, 3, 5, 7, 16, 64 };
#define N_PIECES (sizeof piece_sizes / sizeof piece_sizes[0])

/* text (NUL-terminated) must give H1_DONE for every piece size, with the
 * given lines, body, bytes consumed (used; 0: all of text), keep_alive and
 * status. eof: h1_parse_eof is called once the text is fed. */
static void expect_done(const char *text, bool eof, const char *lines, const char *body,
                        size_t used, bool keep, int status)
{
    size_t n = strlen(text);
    if (used == 0)
        used = n;
    for (size_t i = 0; i < N_PIECES; i++) {
        size_t k = piece_sizes[i];
        run x;
        run_text(&x, text, n, k, eof);
        cr_assert_eq(x.st, H1_DONE, "k=%zu: status %d, error \"%s\"", k, x.st, x.p.error);
        cr_assert_str_eq(x.r.lines ? x.r.lines : "", lines, "k=%zu: lines", k);
        cr_assert_str_eq(x.r.body ? x.r.body : "", body, "k=%zu: body", k);
        cr_assert_eq(x.r.body_len, strlen(body), "k=%zu", k);
        cr_assert_eq(x.used, used, "k=%zu: used %zu, want %zu", k, x.used, used);
        cr_assert_eq(x.p.keep_alive, keep, "k=%zu: keep_alive %d", k, x.p.keep_alive);
        cr_assert_eq(x.p.status, status, "k=%zu: status %d", k, x.p.status);
        run_free(&x);
    }
}

/* text (n bytes) must give H1_ERROR with a message for every piece size. */
static void expect_error_n(const char *text, size_t n, bool eof, const char *why)
{
    for (size_t i = 0; i < N_PIECES; i++) {
        size_t k = piece_sizes[i];
        run x;
        run_text(&x, text, n, k, eof);
        cr_assert_eq(x.st, H1_ERROR, "%s, k=%zu: status %d, want H1_ERROR", why, k, x.st);
        cr_assert_neq(x.p.error[0], '\0', "%s, k=%zu: no message", why, k);
        run_free(&x);
    }
}

static void expect_error(const char *text, bool eof, const char *why)
{
    expect_error_n(text, strlen(text), eof, why);
}

/* ---- framing ------------------------------------------------------------- */

Test(h1, content_length_whole_and_byte_by_byte)
{
    const char *text = "HTTP/1.1 200 OK\r\n"
                       "Content-Type: application/json\r\n"
                       "Content-Length: 13\r\n"
                       "x-ratelimit-remaining-requests: 99\r\n"
                       "\r\n"
                       "{\"ok\": true}\n";
    expect_done(text, false,
                "HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 13\n"
                "x-ratelimit-remaining-requests: 99\n\n",
                "{\"ok\": true}\n", 0, true, 200);

    /* and the pieces are really one byte each: one call per byte */
    run x;
    run_text(&x, text, strlen(text), 1, false);
    cr_assert_eq(x.calls, strlen(text));
    cr_assert_eq(x.p.length, 0);
    cr_assert(x.p.has_length);
    cr_assert_not(x.p.chunked);
    run_free(&x);
}

Test(h1, content_length_zero_is_done_at_the_head)
{
    expect_done("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false,
                "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "", 0, true, 200);
}

Test(h1, bare_lf_line_ends)
{
    expect_done("HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", false,
                "HTTP/1.1 200 OK\nContent-Length: 3\n\n", "abc", 0, true, 200);
    expect_done("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n", false,
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n", "abc", 0, true, 200);
}

Test(h1, status_line_without_reason)
{
    expect_done("HTTP/1.1 404\r\nContent-Length: 2\r\n\r\nno", false,
                "HTTP/1.1 404\nContent-Length: 2\n\n", "no", 0, true, 404);
}

Test(h1, chunked_with_extensions_and_trailers)
{
    const char *text = "HTTP/1.1 200 OK\r\n"
                       "Transfer-Encoding: chunked\r\n"
                       "\r\n"
                       "5;name=value\r\n"
                       "hello\r\n"
                       "A;a=1;b=\"two\"\r\n"
                       ", world!!!\r\n"
                       "1a\r\n"
                       "abcdefghijklmnopqrstuvwxyz\r\n"
                       "0;last\r\n"
                       "X-Trailer: t\r\n"
                       "Server-Timing: db;dur=53\r\n"
                       "\r\n";
    expect_done(text, false, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n",
                "hello, world!!!abcdefghijklmnopqrstuvwxyz", 0, true, 200);
}

Test(h1, chunked_without_trailers)
{
    expect_done("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\n\r\n", false,
                "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n", "Wiki", 0, true, 200);
}

Test(h1, chunked_is_the_last_coding)
{
    /* chunked last: chunked, whatever came before it (and a Content-Length
     * next to it does not count) */
    expect_done("HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                "2\r\nzz\r\n0\r\n\r\n",
                false,
                "HTTP/1.1 200 OK\nContent-Length: 99\nTransfer-Encoding: gzip, chunked\n\n", "zz", 0,
                true, 200);
    /* chunked not last: the body lasts to the close */
    expect_done("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nzz\r\n0\r\n\r\n",
                true, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked, gzip\n\n",
                "2\r\nzz\r\n0\r\n\r\n", 0, false, 200);
}

Test(h1, continue_then_ok)
{
    const char *text = "HTTP/1.1 100 Continue\r\n"
                       "\r\n"
                       "HTTP/1.1 103 Early Hints\r\n"
                       "Link: </style.css>; rel=preload\r\n"
                       "\r\n"
                       "HTTP/1.1 200 OK\r\n"
                       "Content-Length: 2\r\n"
                       "\r\n"
                       "ok";
    expect_done(text, false,
                "HTTP/1.1 100 Continue\n\nHTTP/1.1 103 Early Hints\nLink: </style.css>; rel=preload\n\n"
                "HTTP/1.1 200 OK\nContent-Length: 2\n\n",
                "ok", 0, true, 200);
    run x;
    run_text(&x, text, strlen(text), 0, false);
    cr_assert_eq(x.p.n_interim, 2);
    run_free(&x);
}

Test(h1, status_is_the_final_answers)
{
    h1_parser p;
    h1_parser_init(&p);
    rec r = { 0 };
    h1_sink s = { rec_line, rec_body, &r };
    cr_assert_eq(p.status, 0);
    const char *a = "HTTP/1.1 100 Continue\r\n\r\n";
    cr_assert_eq(h1_parse(&p, a, strlen(a), NULL, &s), H1_MORE);
    cr_assert_eq(p.status, 0, "a 100 is not the answer");
    const char *b = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n";
    cr_assert_eq(h1_parse(&p, b, strlen(b), NULL, &s), H1_MORE);
    cr_assert_eq(p.status, 200);
    h1_parser_free(&p);
    rec_free(&r);
}

Test(h1, no_content_has_no_body)
{
    /* the bytes after a 204's head are the next response, not its body */
    const char *text = "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\n";
    size_t head = strlen("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n");
    expect_done(text, false, "HTTP/1.1 204 No Content\nContent-Length: 10\n\n", "", head, true, 204);
    expect_done("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", false,
                "HTTP/1.1 304 Not Modified\nETag: \"x\"\n\n", "", 0, true, 304);
}

Test(h1, close_delimited_body_ends_at_eof)
{
    const char *text = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc\r\ndef";
    for (size_t i = 0; i < N_PIECES; i++) {
        size_t k = piece_sizes[i];
        run x;
        run_text(&x, text, strlen(text), k, false);
        cr_assert_eq(x.st, H1_MORE, "k=%zu: without the close it goes on", k);
        cr_assert_str_eq(x.r.body, "abc\r\ndef", "k=%zu", k);
        const char *more = "ghi";
        feed(&x, more, 3, k, false);
        cr_assert_eq(x.st, H1_MORE);
        cr_assert_eq(h1_parse_eof(&x.p), H1_DONE, "k=%zu: %s", k, x.p.error);
        cr_assert_not(x.p.keep_alive);
        cr_assert_str_eq(x.r.body, "abc\r\ndefghi");
        cr_assert_str_eq(x.r.lines, "HTTP/1.1 200 OK\nContent-Type: text/plain\n\n");
        run_free(&x);
    }
    /* an empty close-delimited body is fine too */
    expect_done("HTTP/1.1 500 Oops\r\n\r\n", true, "HTTP/1.1 500 Oops\n\n", "", 0, false, 500);
}

/* ---- keep_alive ---------------------------------------------------------- */

struct keep_case {
    char name[40];
    char text[160];
    bool eof;      /* framed by the close: h1_parse_eof ends it */
    bool keep;
};

ParameterizedTestParameters(h1, keep_alive_rules)
{
    static struct keep_case cases[] = {
        { "1.1 length", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false, true },
        { "1.1 chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
          false, true },
        { "1.1 204", "HTTP/1.1 204 No Content\r\n\r\n", false, true },
        { "1.1 length close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
          false, false },
        { "1.1 chunked close",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nconnection: Close\r\n\r\n0\r\n\r\n", false,
          false },
        { "1.1 close in a list",
          "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\nx", false,
          false },
        { "1.1 204 close", "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", false, false },
        { "1.1 to the close", "HTTP/1.1 200 OK\r\n\r\nxyz", true, false },
        { "1.0 length", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false, false },
        { "1.0 length keep-alive",
          "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", false, true },
        { "1.0 to the close keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nxyz",
          true, false },
        { "1.0 to the close", "HTTP/1.0 200 OK\r\n\r\nxyz", true, false },
    };
    return cr_make_param_array(struct keep_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct keep_case *kc, h1, keep_alive_rules)
{
    for (size_t i = 0; i < N_PIECES; i++) {
        size_t k = piece_sizes[i];
        run x;
        run_text(&x, kc->text, strlen(kc->text), k, kc->eof);
        cr_assert_eq(x.st, H1_DONE, "%s, k=%zu: status %d \"%s\"", kc->name, k, x.st, x.p.error);
        cr_assert_eq(x.p.keep_alive, kc->keep, "%s, k=%zu: keep_alive %d", kc->name, k,
                     x.p.keep_alive);
        cr_assert_eq(x.used, strlen(kc->text), "%s, k=%zu", kc->name, k);
        run_free(&x);
    }
}

/* ---- *used: what follows a response is not consumed ----------------------- */

Test(h1, bytes_after_the_response_are_not_consumed)
{
    static const struct {
        const char *first, *next, *body;
    } cases[] = {
        { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 200 OK\r\n\r\n", "hello" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
          "garbage that is not HTTP", "abc" },
        { "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n", "x", "" },
        { "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "\r\n", "" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char text[256];
        snprintf(text, sizeof text, "%s%s", cases[c].first, cases[c].next);
        for (size_t i = 0; i < N_PIECES; i++) {
            size_t k = piece_sizes[i];
            run x;
            run_text(&x, text, strlen(text), k, false);
            cr_assert_eq(x.st, H1_DONE, "case %zu, k=%zu: status %d \"%s\"", c, k, x.st, x.p.error);
            cr_assert_eq(x.used, strlen(cases[c].first), "case %zu, k=%zu: used %zu", c, k, x.used);
            cr_assert_str_eq(x.r.body ? x.r.body : "", cases[c].body, "case %zu, k=%zu", c, k);
            run_free(&x);
        }
    }
}

Test(h1, empty_feed_is_more)
{
    h1_parser p;
    h1_parser_init(&p);
    rec r = { 0 };
    h1_sink s = { rec_line, rec_body, &r };
    size_t used = 7;
    cr_assert_eq(h1_parse(&p, "", 0, &used, &s), H1_MORE);
    cr_assert_eq(used, 0);
    cr_assert_eq(r.n_lines, 0);
    h1_parser_free(&p);
}

/* ---- errors -------------------------------------------------------------- */

struct err_case {
    char name[40];
    char text[200];
    bool eof;
};

ParameterizedTestParameters(h1, errors)
{
    static struct err_case cases[] = {
        /* status lines */
        { "not http", "ICY 200 OK\r\n\r\n", false },
        { "http/2", "HTTP/2 200 OK\r\n\r\n", false },
        { "http/2.0", "HTTP/2.0 200 OK\r\n\r\n", false },
        { "lower case", "http/1.1 200 OK\r\n\r\n", false },
        { "minor not a digit", "HTTP/1.x 200 OK\r\n\r\n", false },
        { "two digits", "HTTP/1.1 20 OK\r\n\r\n", false },
        { "four digits", "HTTP/1.1 2000 OK\r\n\r\n", false },
        { "letters", "HTTP/1.1 abc OK\r\n\r\n", false },
        { "no space", "HTTP/1.1200 OK\r\n\r\n", false },
        { "two spaces", "HTTP/1.1  200 OK\r\n\r\n", false },
        { "code then junk", "HTTP/1.1 200OK\r\n\r\n", false },
        { "below 100", "HTTP/1.1 099 Low\r\n\r\n", false },
        { "101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", false },
        { "101 after 100", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n", false },
        { "header line first", "Content-Length: 0\r\n\r\n", false },
        /* Content-Length */
        { "length 12abc", "HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n", false },
        { "length -1", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false },
        { "length +1", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", false },
        { "length empty", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", false },
        { "length hex", "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", false },
        { "length list", "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\nx", false },
        { "two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
          false },
        { "length overflows", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
          false },
        { "length 2^64", "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n", false },
        { "length max+1", "HTTP/1.1 200 OK\r\nContent-Length: 1125899906842625\r\n\r\n", false },
        /* chunks */
        { "chunk fffff...", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
          false },
        { "chunk max+1", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4000000000001\r\n",
          false },
        { "chunk -1", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", false },
        { "chunk 0x5", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n", false },
        { "chunk not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false },
        { "chunk size empty", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", false },
        { "chunk size junk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n",
          false },
        { "chunk data too long",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", false },
        /* eof before the end */
        { "eof before anything", "", true },
        { "eof in the status line", "HTTP/1.1 200", true },
        { "eof in the head", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", true },
        { "eof after a 100", "HTTP/1.1 100 Continue\r\n\r\n", true },
        { "eof in a length body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhell", true },
        { "eof in a chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", true },
        { "eof after a chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
          true },
        { "eof before the last crlf",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello", true },
        { "eof in the trailers",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n", true },
    };
    return cr_make_param_array(struct err_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct err_case *ec, h1, errors)
{
    expect_error(ec->text, ec->eof, ec->name);
}

Test(h1, same_length_twice_is_accepted)
{
    expect_done("HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length:5 \r\n\r\nhello", false,
                "HTTP/1.1 200 OK\nContent-Length: 5\ncontent-length:5 \n\n", "hello", 0, true, 200);
}

Test(h1, length_and_chunk_at_the_bound_are_accepted)
{
    /* exactly H1_MAX_LENGTH: accepted, the body just goes on */
    run x;
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 1125899906842624\r\n\r\nabc";
    run_text(&x, a, strlen(a), 0, false);
    cr_assert_eq(x.st, H1_MORE, "%s", x.p.error);
    cr_assert_eq(x.p.length, H1_MAX_LENGTH - 3);
    cr_assert_str_eq(x.r.body, "abc");
    cr_assert_eq(h1_parse_eof(&x.p), H1_ERROR);
    cr_assert_neq(x.p.error[0], '\0');
    run_free(&x);

    const char *b = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4000000000000\r\nxy";
    run_text(&x, b, strlen(b), 0, false);
    cr_assert_eq(x.st, H1_MORE, "%s", x.p.error);
    cr_assert_eq(x.p.length, H1_MAX_LENGTH - 2);
    cr_assert_str_eq(x.r.body, "xy");
    run_free(&x);
}

/* ---- bounds -------------------------------------------------------------- */

/* A head of exactly total bytes: a status line, Content-Length: 0 and one
 * header padded to fit (malloc'd, NUL-terminated). */
static char *head_of(size_t total)
{
    const char *pre = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: ";
    const char *post = "\r\n\r\n";
    size_t fixed = strlen(pre) + strlen(post);
    cr_assert_gt(total, fixed);
    char *t = malloc(total + 1);
    cr_assert_not_null(t);
    memcpy(t, pre, strlen(pre));
    memset(t + strlen(pre), 'p', total - fixed);
    memcpy(t + total - strlen(post), post, strlen(post) + 1);
    cr_assert_eq(strlen(t), total);
    return t;
}

Test(h1, head_bytes_bound)
{
    char *ok = head_of(H1_MAX_HEAD_BYTES);
    for (size_t i = 0; i < N_PIECES; i++) {
        run x;
        run_text(&x, ok, H1_MAX_HEAD_BYTES, piece_sizes[i], false);
        cr_assert_eq(x.st, H1_DONE, "k=%zu: a head of exactly the bound: %d \"%s\"", piece_sizes[i],
                     x.st, x.p.error);
        cr_assert_eq(x.r.n_lines, 4);
        run_free(&x);
    }
    free(ok);
    char *big = head_of(H1_MAX_HEAD_BYTES + 1);
    expect_error_n(big, H1_MAX_HEAD_BYTES + 1, false, "head one byte over");
    free(big);

    /* a status line that never ends is cut at the bound, whatever the pieces */
    size_t n = H1_MAX_HEAD_BYTES + 100;
    char *endless = malloc(n);
    cr_assert_not_null(endless);
    memcpy(endless, "HTTP/1.1 200 ", 13);
    memset(endless + 13, 'r', n - 13);
    expect_error_n(endless, n, false, "endless status line");
    free(endless);
}

/* A head with n header lines: Content-Length: 0 and n - 1 "X-H: v"
 * (malloc'd; *len its length). */
static char *headers_of(size_t n, size_t *len)
{
    size_t cap = 64 + n * 8;
    char *t = malloc(cap);
    cr_assert_not_null(t);
    size_t o = (size_t)snprintf(t, cap, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
    for (size_t i = 1; i < n; i++)
        o += (size_t)snprintf(t + o, cap - o, "X-H: v\r\n");
    o += (size_t)snprintf(t + o, cap - o, "\r\n");
    *len = o;
    return t;
}

Test(h1, header_count_bound)
{
    size_t len;
    char *ok = headers_of(H1_MAX_HEADERS, &len);
    for (size_t i = 0; i < N_PIECES; i++) {
        run x;
        run_text(&x, ok, len, piece_sizes[i], false);
        cr_assert_eq(x.st, H1_DONE, "k=%zu: %d \"%s\"", piece_sizes[i], x.st, x.p.error);
        cr_assert_eq(x.r.n_lines, H1_MAX_HEADERS + 2, "status + headers + empty");
        cr_assert_eq(x.used, len);
        run_free(&x);
    }
    free(ok);
    char *over = headers_of(H1_MAX_HEADERS + 1, &len);
    expect_error_n(over, len, false, "one header too many");
    free(over);
}

/* n 1xx heads, then a 200 with no body. */
static char *interims_of(int n, size_t *len)
{
    const char *one = "HTTP/1.1 100 Continue\r\n\r\n";
    const char *fin = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    size_t cap = (size_t)n * strlen(one) + strlen(fin) + 1;
    char *t = malloc(cap);
    cr_assert_not_null(t);
    size_t o = 0;
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(t + o, cap - o, "%s", one);
    o += (size_t)snprintf(t + o, cap - o, "%s", fin);
    *len = o;
    return t;
}

Test(h1, interim_count_bound)
{
    size_t len;
    char *ok = interims_of(H1_MAX_INTERIM, &len);
    for (size_t i = 0; i < N_PIECES; i++) {
        run x;
        run_text(&x, ok, len, piece_sizes[i], false);
        cr_assert_eq(x.st, H1_DONE, "k=%zu: %d \"%s\"", piece_sizes[i], x.st, x.p.error);
        cr_assert_eq(x.p.status, 200);
        cr_assert_eq(x.p.n_interim, H1_MAX_INTERIM);
        cr_assert_eq(x.r.n_lines, 2 * H1_MAX_INTERIM + 3);
        run_free(&x);
    }
    free(ok);
    char *over = interims_of(H1_MAX_INTERIM + 1, &len);
    expect_error_n(over, len, false, "one 1xx too many");
    free(over);
}

/* A chunked response whose first chunk-size line is "1;" + ext padding,
 * ext_len bytes of extension in all, then "x" and the last chunk. */
static char *chunk_line_of(size_t ext_len, size_t *len)
{
    const char *pre = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;";
    const char *post = "\r\nx\r\n0\r\n\r\n";
    size_t cap = strlen(pre) + ext_len + strlen(post) + 1;
    char *t = malloc(cap);
    cr_assert_not_null(t);
    size_t o = (size_t)snprintf(t, cap, "%s", pre);
    memset(t + o, 'e', ext_len);
    o += ext_len;
    o += (size_t)snprintf(t + o, cap - o, "%s", post);
    *len = o;
    return t;
}

Test(h1, chunk_line_bound)
{
    size_t len;
    char *ok = chunk_line_of(4000, &len);   /* a 4,002-byte line, well inside 4,096 */
    for (size_t i = 0; i < N_PIECES; i++) {
        run x;
        run_text(&x, ok, len, piece_sizes[i], false);
        cr_assert_eq(x.st, H1_DONE, "k=%zu: %d \"%s\"", piece_sizes[i], x.st, x.p.error);
        cr_assert_str_eq(x.r.body, "x");
        run_free(&x);
    }
    free(ok);
    char *over = chunk_line_of(H1_MAX_CHUNK_LINE, &len);   /* a line of bound + 2 bytes */
    expect_error_n(over, len, false, "chunk line over the bound");
    free(over);

    /* a chunk-size line that never ends is cut at the bound */
    size_t n = 64 + 3 * H1_MAX_CHUNK_LINE;
    char *endless = malloc(n);
    cr_assert_not_null(endless);
    const char *pre = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    memcpy(endless, pre, strlen(pre));
    memset(endless + strlen(pre), '0', n - strlen(pre));
    expect_error_n(endless, n, false, "endless chunk-size line");
    free(endless);
}

Test(h1, trailer_lines_are_bounded)
{
    /* trailers are not reported, but a server cannot send them forever */
    const char *pre = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
    size_t n_tr = H1_MAX_HEADERS + 10;
    size_t cap = strlen(pre) + n_tr * 8 + 3;
    char *t = malloc(cap);
    cr_assert_not_null(t);
    size_t o = (size_t)snprintf(t, cap, "%s", pre);
    for (size_t i = 0; i < n_tr; i++)
        o += (size_t)snprintf(t + o, cap - o, "T-X: v\r\n");
    o += (size_t)snprintf(t + o, cap - o, "\r\n");
    expect_error_n(t, o, false, "too many trailers");
    free(t);
}

/* ---- a sink that stops ---------------------------------------------------- */

Test(h1, sink_stop)
{
    const char *text = "HTTP/1.1 100 Continue\r\n\r\n"
                       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    /* stopping at each on_line call: the status line, a header, an empty line */
    for (size_t stop = 1; stop <= 5; stop++) {
        for (size_t i = 0; i < N_PIECES; i++) {
            size_t k = piece_sizes[i];
            run x;
            run_start(&x);
            x.r.stop_line = stop;
            feed(&x, text, strlen(text), k, false);
            cr_assert_eq(x.st, H1_STOP, "stop at line %zu, k=%zu: %d", stop, k, x.st);
            cr_assert_eq(x.r.n_lines, stop, "no line after the stop");
            cr_assert_eq(x.r.calls_after_stop, 0);
            cr_assert_eq(x.r.body_len, 0);
            run_free(&x);
        }
    }
    /* stopping at the first body bytes */
    for (size_t i = 0; i < N_PIECES; i++) {
        size_t k = piece_sizes[i];
        run x;
        run_start(&x);
        x.r.stop_body = true;
        feed(&x, text, strlen(text), k, false);
        cr_assert_eq(x.st, H1_STOP, "k=%zu: %d", k, x.st);
        cr_assert_eq(x.r.calls_after_stop, 0);
        cr_assert_gt(x.r.body_len, 0);
        cr_assert_leq(x.r.body_len, k ? k : 5);
        cr_assert_eq(x.r.n_lines, 5);
        run_free(&x);
    }
    /* and in a chunked body and a close-delimited one */
    const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    const char *cl = "HTTP/1.1 200 OK\r\n\r\nabc";
    const char *texts[] = { ch, cl };
    for (size_t t = 0; t < 2; t++) {
        run x;
        run_start(&x);
        x.r.stop_body = true;
        feed(&x, texts[t], strlen(texts[t]), 0, false);
        cr_assert_eq(x.st, H1_STOP, "text %zu: %d", t, x.st);
        cr_assert_str_eq(x.r.body, "abc");
        run_free(&x);
    }
}
