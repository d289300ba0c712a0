/* fuzz_h1.c: the HTTP/1.x response parser (src/upstream/h1.h), fed bytes
 * as a server would send them.
 *
 * The first byte of the input picks how the rest is read: 1 + (byte & 63)
 * bytes per h1_parse call (the piece size), and, when its top bit is set, a
 * sink that returns nonzero at its ((rest size % 8) + 1)th call. The rest
 * goes to the parser in pieces of that size until it answers something
 * other than H1_MORE, then h1_parse_eof if it still wants more.
 *
 * Checked on every call, abort() on a violation:
 * - *used is set, at most the piece, and the whole piece on H1_MORE;
 * - once a status line is parsed, p->status is 100..999 and not 101;
 * - the body bytes handed on never exceed the bytes fed so far, and come
 *   only after a final (>= 200) status line; no line holds a '\n' or is
 *   longer than H1_MAX_HEAD_BYTES;
 * - no sink call after a sink returned nonzero (and then the answer is
 *   H1_STOP, and H1_STOP only then), none after DONE/ERROR/STOP;
 *   h1_parse_eof never answers H1_MORE; an H1_ERROR has a message.
 * Without a stopping sink the same bytes are also parsed in one piece and
 * both runs must agree (answer, status, lines and body; at H1_DONE also
 * keep_alive and the bytes used): the parser's answer may not depend on
 * where the reads split.
 */
#include "fuzz_common.h"
#include "../../src/upstream/h1.h"

typedef struct {
    const h1_parser *p;
    size_t stop_at;        /* sink call (1-based) that returns nonzero; 0: never */
    size_t calls;          /* sink calls */
    bool stopped;          /* a sink returned nonzero */
    bool closed;           /* the parser gave its last answer: no sink call may follow */
    size_t fed;            /* bytes handed to h1_parse so far */
    size_t body_total;
    size_t n_lines;
    uint64_t line_hash, body_hash;   /* FNV-1a over what the sink got */
} fz;

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211u;
    return h;
}

static int sink_common(fz *f)
{
    if (f->stopped || f->closed)
        abort();
    f->calls++;
    if (f->stop_at && f->calls == f->stop_at) {
        f->stopped = true;
        return 1;
    }
    return 0;
}

static int on_line(void *ud, const char *line, size_t len)
{
    fz *f = ud;
    if (len > H1_MAX_HEAD_BYTES || (len && memchr(line, '\n', len)))
        abort();
    f->n_lines++;
    f->line_hash = fnv(f->line_hash, line, len);
    f->line_hash = fnv(f->line_hash, "\n", 1);
    return sink_common(f);
}

static int on_body(void *ud, const char *p, size_t n)
{
    fz *f = ud;
    if (f->p->status < 200)
        abort();
    f->body_total += n;
    if (f->body_total > f->fed)
        abort();
    f->body_hash = fnv(f->body_hash, p, n);
    return sink_common(f);
}

static void check_status(const h1_parser *p)
{
    if (p->status != 0 && (p->status < 100 || p->status > 999 || p->status == 101))
        abort();
}

/* One parse of buf in pieces of k; returns the last answer, *used_total
 * the bytes consumed. */
static h1_status run(h1_parser *p, fz *f, const char *buf, size_t n, size_t k, size_t *used_total)
{
    h1_sink s = { on_line, on_body, f };
    h1_status st = H1_MORE;
    size_t off = 0;
    *used_total = 0;
    do {
        size_t piece = n - off < k ? n - off : k;
        size_t used = SIZE_MAX;
        f->fed += piece;
        st = h1_parse(p, buf + off, piece, &used, &s);
        if (used > piece || (st == H1_MORE && used != piece))
            abort();
        if ((st == H1_STOP) != f->stopped)
            abort();
        check_status(p);
        *used_total += used;
        off += piece;
    } while (st == H1_MORE && off < n);
    if (st == H1_MORE) {
        st = h1_parse_eof(p);
        if (st != H1_DONE && st != H1_ERROR)
            abort();
        check_status(p);
    }
    f->closed = true;
    if (*used_total > n)
        abort();
    if (st == H1_ERROR && p->error[0] == '\0')
        abort();
    if (st == H1_DONE && p->status < 200)
        abort();
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t k = 1 + (data[0] & 63);
    const char *buf = (const char *)data + 1;
    size_t n = size - 1;

    h1_parser p;
    h1_parser_init(&p);
    fz f = { .p = &p, .line_hash = 14695981039346656037u, .body_hash = 14695981039346656037u };
    if (data[0] & 0x80)
        f.stop_at = n % 8 + 1;
    size_t used;
    h1_status st = run(&p, &f, buf, n, k, &used);

    if (!f.stop_at) {
        h1_parser q;
        h1_parser_init(&q);
        fz g = { .p = &q, .line_hash = 14695981039346656037u, .body_hash = 14695981039346656037u };
        size_t used_q;
        h1_status st_q = run(&q, &g, buf, n, n ? n : 1, &used_q);
        if (st_q != st || q.status != p.status || g.n_lines != f.n_lines ||
            g.line_hash != f.line_hash || g.body_total != f.body_total ||
            g.body_hash != f.body_hash || (st == H1_DONE && (q.keep_alive != p.keep_alive || used_q != used)))
            abort();
        h1_parser_free(&q);
    }
    h1_parser_free(&p);
    return 0;
}
