/* retry.c: classification, wait hints, backoff and the retry budget.
 *
 * DESIGN
 * The parsers are hand-written scanners over ASCII: no strptime (its month
 * names follow the locale) and no timegm (a GNU extension; plain arithmetic
 * is just as short): calendar dates become epoch days with the
 * days-from-civil algorithm. Durations are summed in integer nanoseconds
 * (fractions through a double, which is exact far below one nanosecond for
 * the magnitudes involved) and rounded up to milliseconds: a wait hint that is
 * rounded down makes us come back early and earn another 429.
 */
#include "quotatop/retry.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- small scanning helpers --------------------------------------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

/* Trims spaces: sets *b and *e to the first and one-past-last non-space chars. */
static void trim(const char *s, const char **b, const char **e)
{
    const char *p = s, *q = s + strlen(s);
    while (p < q && is_space(*p))
        p++;
    while (q > p && is_space(q[-1]))
        q--;
    *b = p;
    *e = q;
}

/* Reads exactly n digits at *p (not beyond e) into *v; advances *p. */
static int read_digits(const char **p, const char *e, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (*p + i >= e || !is_digit((*p)[i]))
            return -1;
        x = x * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

/* Reads 1..max digits into *v; advances *p. */
static int read_upto_digits(const char **p, const char *e, int max, int *v)
{
    int x = 0, n = 0;
    while (*p < e && is_digit(**p) && n < max) {
        x = x * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || (*p < e && is_digit(**p)))
        return -1;
    *v = x;
    return 0;
}

static int expect(const char **p, const char *e, char c)
{
    if (*p >= e || **p != c)
        return -1;
    (*p)++;
    return 0;
}

/* Case-insensitive match of the word w at *p; advances on success. */
static int match_word(const char **p, const char *e, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(e - *p) < n)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (lower((*p)[i]) != w[i])
            return -1;
    *p += n;
    return 0;
}

/* ---- calendar ----------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Year of a Unix epoch millisecond instant (inverse of days_from_civil). */
static int64_t year_of_epoch_ms(int64_t ms)
{
    int64_t z = (ms >= 0 ? ms : ms - 86399999) / 86400000 + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    return y + (m <= 2);
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m)
{
    static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Validates the fields and returns epoch seconds in *out. Second 60 (a leap
 * second) is accepted and counts as the next second. */
static int civil_to_epoch_s(int64_t y, int mo, int d, int h, int mi, int s, int64_t *out)
{
    if (y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
        h > 23 || mi > 59 || s > 60 || h < 0 || mi < 0 || s < 0)
        return -1;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return 0;
}

static const char *const month_names[12] = {
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
};
static const char *const day_short[7] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
static const char *const day_long[7] = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
};

/* Reads a three-letter month name; *m = 1..12. */
static int read_month(const char **p, const char *e, int *m)
{
    for (int i = 0; i < 12; i++)
        if (match_word(p, e, month_names[i]) == 0) {
            *m = i + 1;
            return 0;
        }
    return -1;
}

/* Reads "HH:MM:SS". */
static int read_hms(const char **p, const char *e, int *h, int *mi, int *s)
{
    if (read_digits(p, e, 2, h) || expect(p, e, ':') || read_digits(p, e, 2, mi) ||
        expect(p, e, ':') || read_digits(p, e, 2, s))
        return -1;
    return 0;
}

/* ---- Go durations ------------------------------------------------------- */

int qt_retry_parse_duration_ms(const char *s, int64_t *out_ms)
{
    static const struct { const char *name; int64_t ns; } units[] = {
        { "ns", 1 },
        { "us", 1000 },
        { "\xc2\xb5s", 1000 },   /* U+00B5 micro sign */
        { "\xce\xbcs", 1000 },   /* U+03BC greek mu */
        { "ms", 1000000 },
        { "s", 1000000000LL },
        { "m", 60LL * 1000000000LL },
        { "h", 3600LL * 1000000000LL },
    };
    if (!s || !out_ms)
        return -1;
    const char *p, *e;
    trim(s, &p, &e);
    if (p < e && *p == '+')
        p++;
    if (p == e)
        return -1;
    if (e - p == 1 && *p == '0') {           /* Go's special case: bare "0" */
        *out_ms = 0;
        return 0;
    }
    int64_t total_ns = 0;
    while (p < e) {
        /* number: digits [ '.' digits ], at least one digit on some side */
        int64_t whole = 0;
        int nwhole = 0;
        while (p < e && is_digit(*p)) {
            int d = *p - '0';
            if (whole > (INT64_MAX - d) / 10)
                return -1;
            whole = whole * 10 + d;
            p++;
            nwhole++;
        }
        double frac = 0.0, scale = 1.0;
        int nfrac = 0;
        if (p < e && *p == '.') {
            p++;
            while (p < e && is_digit(*p)) {
                if (nfrac < 18) {            /* further digits are below 1 ns */
                    frac = frac * 10.0 + (*p - '0');
                    scale *= 10.0;
                }
                p++;
                nfrac++;
            }
        }
        if (nwhole == 0 && nfrac == 0)
            return -1;
        /* unit: everything up to the next digit or '.' */
        const char *u = p;
        while (p < e && !is_digit(*p) && *p != '.')
            p++;
        size_t ulen = (size_t)(p - u);
        int64_t unit = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strlen(units[i].name) == ulen && memcmp(units[i].name, u, ulen) == 0)
                unit = units[i].ns;
        if (unit == 0)
            return -1;
        if (whole > INT64_MAX / unit)
            return -1;
        int64_t v = whole * unit;
        if (nfrac > 0)
            v += (int64_t)(frac * ((double)unit / scale));   /* < unit: no overflow of this term */
        if (v < 0 || total_ns > INT64_MAX - v)
            return -1;
        total_ns += v;
    }
    *out_ms = total_ns / 1000000 + (total_ns % 1000000 != 0);
    return 0;
}

/* ---- Retry-After -------------------------------------------------------- */

/* Parses the HTTP-date forms of RFC 9110 5.6.7 into epoch seconds. */
static int parse_http_date(const char *p, const char *e, int64_t now_wall_ms, int64_t *out_s)
{
    int wday = -1, long_name = 0;
    for (int i = 0; i < 7 && wday < 0; i++) {
        if (match_word(&p, e, day_long[i]) == 0) {
            wday = i;
            long_name = 1;
        } else if (match_word(&p, e, day_short[i]) == 0) {
            wday = i;
        }
    }
    if (wday < 0)
        return -1;
    int d, mo, h, mi, sec;
    int64_t y;
    if (p < e && *p == ',') {
        p++;
        if (expect(&p, e, ' '))
            return -1;
        if (!long_name) {
            /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
            int yy;
            if (read_digits(&p, e, 2, &d) || expect(&p, e, ' ') || read_month(&p, e, &mo) ||
                expect(&p, e, ' ') || read_digits(&p, e, 4, &yy) || expect(&p, e, ' ') ||
                read_hms(&p, e, &h, &mi, &sec) || expect(&p, e, ' ') || match_word(&p, e, "gmt"))
                return -1;
            y = yy;
        } else {
            /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
            int yy;
            if (read_digits(&p, e, 2, &d) || expect(&p, e, '-') || read_month(&p, e, &mo) ||
                expect(&p, e, '-') || read_digits(&p, e, 2, &yy) || expect(&p, e, ' ') ||
                read_hms(&p, e, &h, &mi, &sec) || expect(&p, e, ' ') || match_word(&p, e, "gmt"))
                return -1;
            int64_t now_y = year_of_epoch_ms(now_wall_ms);
            y = now_y - now_y % 100 + yy;
            if (y > now_y + 50)
                y -= 100;
        }
    } else if (!long_name && p < e && *p == ' ') {
        /* asctime: "Sun Nov  6 08:49:37 1994" (day space-padded or 2 digits) */
        int yy;
        p++;
        if (read_month(&p, e, &mo) || expect(&p, e, ' '))
            return -1;
        if (p < e && *p == ' ')
            p++;
        if (read_upto_digits(&p, e, 2, &d) || expect(&p, e, ' ') ||
            read_hms(&p, e, &h, &mi, &sec) || expect(&p, e, ' ') || read_digits(&p, e, 4, &yy))
            return -1;
        y = yy;
    } else {
        return -1;
    }
    if (p != e)
        return -1;
    return civil_to_epoch_s(y, mo, d, h, mi, sec, out_s);
}

int qt_retry_parse_retry_after_ms(const char *s, int64_t now_wall_ms, int64_t *out_ms)
{
    if (!s || !out_ms)
        return -1;
    const char *p, *e;
    trim(s, &p, &e);
    if (p == e)
        return -1;
    if (is_digit(*p) || *p == '.') {
        /* delta-seconds, with an optional fraction */
        int64_t whole = 0;
        int nwhole = 0, nfrac = 0;
        int64_t frac_ms = 0;       /* first three fraction digits */
        int frac_rest = 0;         /* any non-zero digit beyond them */
        while (p < e && is_digit(*p)) {
            if (whole > (INT64_MAX / 1000 - 9) / 10)
                return -1;
            whole = whole * 10 + (*p - '0');
            p++;
            nwhole++;
        }
        if (p < e && *p == '.') {
            p++;
            while (p < e && is_digit(*p)) {
                if (nfrac < 3)
                    frac_ms = frac_ms * 10 + (*p - '0');
                else if (*p != '0')
                    frac_rest = 1;
                p++;
                nfrac++;
            }
        }
        if (p != e || (nwhole == 0 && nfrac == 0))
            return -1;
        for (int i = nfrac; i < 3; i++)
            frac_ms *= 10;
        *out_ms = whole * 1000 + frac_ms + frac_rest;
        return 0;
    }
    int64_t when_s;
    if (parse_http_date(p, e, now_wall_ms, &when_s))
        return -1;
    int64_t wait = when_s * 1000 - now_wall_ms;
    *out_ms = wait > 0 ? wait : 0;
    return 0;
}

/* ---- RFC 3339 ----------------------------------------------------------- */

int qt_retry_parse_rfc3339_ms(const char *s, int64_t *out_epoch_ms)
{
    if (!s || !out_epoch_ms)
        return -1;
    const char *p, *e;
    trim(s, &p, &e);
    int y, mo, d, h, mi, sec;
    if (read_digits(&p, e, 4, &y) || expect(&p, e, '-') || read_digits(&p, e, 2, &mo) ||
        expect(&p, e, '-') || read_digits(&p, e, 2, &d))
        return -1;
    if (p >= e || (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    if (read_hms(&p, e, &h, &mi, &sec))
        return -1;
    int64_t frac_ms = 0;
    if (p < e && *p == '.') {
        int n = 0, rest = 0;
        p++;
        while (p < e && is_digit(*p)) {
            if (n < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            else if (*p != '0')
                rest = 1;
            n++;
            p++;
        }
        if (n == 0)
            return -1;
        for (int i = n; i < 3; i++)
            frac_ms *= 10;
        frac_ms += rest;
    }
    int64_t off_s = 0;
    if (p < e && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < e && (*p == '+' || *p == '-')) {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (read_digits(&p, e, 2, &oh) || expect(&p, e, ':') || read_digits(&p, e, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
        off_s = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (p != e)
        return -1;
    int64_t t;
    if (civil_to_epoch_s(y, mo, d, h, mi, sec, &t))
        return -1;
    *out_epoch_ms = (t - off_s) * 1000 + frac_ms;
    return 0;
}

/* ---- classification ----------------------------------------------------- */

static int str_eq(const char *a, const char *b) { return a && strcmp(a, b) == 0; }

/* Case-insensitive substring search in ASCII; NULL haystack never matches. */
static int contains_ci(const char *hay, const char *needle)
{
    if (!hay)
        return 0;
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && lower(p[i]) == needle[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* Does this error say the prompt does not fit the model's context window?
 * OpenAI: code "context_length_exceeded" ("This model's maximum context length
 * is ..."); Anthropic: invalid_request_error "prompt is too long: N tokens > M
 * maximum". Other phrasings are approximated by keywords. */
static int is_context_length(int status, const char *type, const char *code, const char *msg)
{
    if (str_eq(code, "context_length_exceeded") || str_eq(type, "context_length_exceeded"))
        return 1;
    if (status != 400 && status != 413)
        return 0;
    if (type && !str_eq(type, "invalid_request_error") && !str_eq(type, "request_too_large"))
        return 0;
    return contains_ci(msg, "prompt is too long") || contains_ci(msg, "context length") ||
           contains_ci(msg, "context window") || contains_ci(msg, "maximum context") ||
           (contains_ci(msg, "too many tokens") && !contains_ci(msg, "per min"));
}

static int is_model_not_found(int status, const char *type, const char *code, const char *msg)
{
    if (str_eq(code, "model_not_found") || str_eq(type, "model_not_found"))
        return status >= 400 && status < 500;
    /* Anthropic: 404 {"type":"not_found_error","message":"model: claude-x"} */
    return status == 404 && str_eq(type, "not_found_error") && contains_ci(msg, "model");
}

static qt_retry_verdict verdict(qt_retry_class cls, const char *reason, int failure, int rl)
{
    qt_retry_verdict v = { cls, reason, failure, rl };
    return v;
}

qt_retry_verdict qt_retry_classify(int http_status, const char *error_type,
                                   const char *error_code, const char *message,
                                   qt_retry_transport transport)
{
    switch (transport) {
    case QT_RETRY_TRANSPORT_NONE:
        break;
    case QT_RETRY_TRANSPORT_TIMEOUT:
        return verdict(QT_RETRY_RETRYABLE, "timeout", 1, 0);
    case QT_RETRY_TRANSPORT_CONNECT:
        return verdict(QT_RETRY_RETRYABLE, "connection failed", 1, 0);
    default:
        return verdict(QT_RETRY_RETRYABLE, "transport error", 1, 0);
    }
    int st = http_status;
    if (st >= 200 && st < 300)
        return verdict(QT_RETRY_OK, "ok", 0, 0);
    if (st == 0)
        return verdict(QT_RETRY_FATAL, "no status and no transport error", 0, 0);
    if (is_context_length(st, error_type, error_code, message))
        return verdict(QT_RETRY_FALLBACK, "context length exceeded", 0, 0);
    if (is_model_not_found(st, error_type, error_code, message))
        return verdict(QT_RETRY_FALLBACK, "model not found at this provider", 0, 0);
    switch (st) {
    case 408:
        return verdict(QT_RETRY_RETRYABLE, "request timeout (408)", 1, 0);
    case 429:
        if (str_eq(error_code, "insufficient_quota") || str_eq(error_type, "insufficient_quota"))
            return verdict(QT_RETRY_FATAL, "insufficient quota (429, billing)", 0, 0);
        return verdict(QT_RETRY_RETRYABLE, "rate limited (429)", 0, 1);
    case 500: return verdict(QT_RETRY_RETRYABLE, "server error (500)", 1, 0);
    case 502: return verdict(QT_RETRY_RETRYABLE, "bad gateway (502)", 1, 0);
    case 503: return verdict(QT_RETRY_RETRYABLE, "unavailable (503)", 1, 0);
    case 504: return verdict(QT_RETRY_RETRYABLE, "gateway timeout (504)", 1, 0);
    case 529: return verdict(QT_RETRY_RETRYABLE, "overloaded (529)", 1, 0);
    case 400: return verdict(QT_RETRY_FATAL, "bad request (400)", 0, 0);
    case 401: return verdict(QT_RETRY_FATAL, "unauthorized (401)", 0, 0);
    case 403: return verdict(QT_RETRY_FATAL, "forbidden (403)", 0, 0);
    case 404: return verdict(QT_RETRY_FATAL, "not found (404)", 0, 0);
    case 501: return verdict(QT_RETRY_FATAL, "not implemented (501)", 0, 0);
    case 505: return verdict(QT_RETRY_FATAL, "HTTP version not supported (505)", 0, 0);
    default:
        break;
    }
    if (st >= 500 && st < 600)
        return verdict(QT_RETRY_RETRYABLE, "server error (5xx)", 1, 0);
    if (st >= 400 && st < 500)
        return verdict(QT_RETRY_FATAL, "client error (4xx)", 0, 0);
    return verdict(QT_RETRY_FATAL, "unexpected status", 0, 0);
}

const char *qt_retry_class_name(qt_retry_class cls)
{
    switch (cls) {
    case QT_RETRY_OK:        return "ok";
    case QT_RETRY_RETRYABLE: return "retryable";
    case QT_RETRY_FALLBACK:  return "fallback";
    case QT_RETRY_FATAL:     return "fatal";
    }
    return "unknown";
}

/* ---- waiting ------------------------------------------------------------ */

void qt_retry_hints_init(qt_retry_hints *h)
{
    if (!h)
        return;
    h->retry_after_ms = -1;
    h->retry_after_wait_ms = -1;
    h->reset_requests_ms = -1;
    h->reset_tokens_ms = -1;
    h->reset_requests_epoch_ms = -1;
    h->reset_tokens_epoch_ms = -1;
    h->now_wall_ms = -1;
    h->remaining_requests = -1;
    h->remaining_tokens = -1;
}

/* The wait one reset hint asks for: the duration if given, else the epoch
 * minus the response's wall time (never negative); -1 when absent. */
static int64_t reset_wait(int64_t dur_ms, int64_t epoch_ms, int64_t now_wall_ms)
{
    if (dur_ms >= 0)
        return dur_ms;
    if (epoch_ms >= 0 && now_wall_ms >= 0)
        return epoch_ms > now_wall_ms ? epoch_ms - now_wall_ms : 0;
    return -1;
}

/* The hinted wait, or -1 when the response gave none (see the header). */
static int64_t hinted_wait(const qt_retry_hints *h)
{
    if (!h)
        return -1;
    if (h->retry_after_ms >= 0)
        return h->retry_after_ms;
    if (h->retry_after_wait_ms >= 0)
        return h->retry_after_wait_ms;
    int64_t rq = reset_wait(h->reset_requests_ms, h->reset_requests_epoch_ms, h->now_wall_ms);
    int64_t tk = reset_wait(h->reset_tokens_ms, h->reset_tokens_epoch_ms, h->now_wall_ms);
    int rq_out = rq >= 0 && h->remaining_requests == 0;
    int tk_out = tk >= 0 && h->remaining_tokens == 0;
    if (rq_out || tk_out)     /* the exhausted limit(s): wait for the later one */
        return rq_out && tk_out ? (rq > tk ? rq : tk) : (rq_out ? rq : tk);
    if (rq >= 0 && tk >= 0)   /* unknown which one: the earlier, backoff covers the rest */
        return rq < tk ? rq : tk;
    return rq >= 0 ? rq : tk;
}

int64_t qt_retry_floor_ms(const qt_retry_policy *p, uint64_t rnd)
{
    if (!p || p->base_ms <= 0)
        return 0;
    int64_t hi = p->base_ms / 2;
    if (p->cap_ms > 0 && hi > p->cap_ms)
        hi = p->cap_ms;
    int64_t lo = hi / 2;
    return lo + (int64_t)(rnd % (uint64_t)(hi - lo + 1));
}

int64_t qt_retry_hold_cap_ms(const qt_retry_policy *p, int64_t hinted_ms)
{
    if (hinted_ms < 0)
        return 0;
    if (p && p->max_retry_after_ms > 0 && hinted_ms > p->max_retry_after_ms)
        return p->max_retry_after_ms;
    return hinted_ms;
}

qt_retry_decision qt_retry_wait_ms(const qt_retry_policy *p, int attempts,
                                   const qt_retry_hints *h, uint64_t rnd, int64_t *wait_ms)
{
    if (!p || !wait_ms) {
        if (wait_ms)
            *wait_ms = 0;
        return QT_RETRY_GIVE_UP;
    }
    if (attempts < 1)
        attempts = 1;
    if (p->max_attempts > 0 && attempts >= p->max_attempts) {
        *wait_ms = 0;
        return QT_RETRY_GIVE_UP;
    }
    int64_t hint = hinted_wait(h);
    if (hint >= 0) {
        if (p->max_retry_after_ms > 0 && hint > p->max_retry_after_ms) {
            *wait_ms = hint;
            return QT_RETRY_MOVE_ON;
        }
        /* "Retry-After: 0" or a date in the past is no reason to come back
         * at once (a burst of retries in lockstep): never below the floor,
         * jittered so waiting jobs spread out. */
        int64_t floor = qt_retry_floor_ms(p, rnd);
        *wait_ms = hint > floor ? hint : floor;
        return QT_RETRY_WAIT;
    }
    /* Full jitter: ceiling = min(cap, base * 2^(attempts-1)), saturating. */
    int64_t ceil_ms = p->base_ms > 0 ? p->base_ms : 0;
    for (int i = 1; i < attempts && ceil_ms < INT64_MAX / 4; i++) {
        ceil_ms *= 2;
        if (p->cap_ms > 0 && ceil_ms >= p->cap_ms)
            break;
    }
    if (p->cap_ms > 0 && ceil_ms > p->cap_ms)
        ceil_ms = p->cap_ms;
    *wait_ms = (int64_t)(rnd % ((uint64_t)ceil_ms + 1));
    return QT_RETRY_WAIT;
}

const char *qt_retry_decision_name(qt_retry_decision d)
{
    switch (d) {
    case QT_RETRY_WAIT:    return "wait";
    case QT_RETRY_GIVE_UP: return "give_up";
    case QT_RETRY_MOVE_ON: return "move_on";
    }
    return "unknown";
}

/* ---- retry budget ------------------------------------------------------- */

#define BUDGET_BUCKETS 10

struct qt_retry_budget {
    double ratio;                /* retries allowed per first attempt */
    int min_retries;             /* retries allowed per window regardless */
    uint64_t width_ms;           /* one bucket's span: ceil(window_ms / BUDGET_BUCKETS) */
    uint64_t last_ms;            /* latest time seen (time never runs backwards here) */
    struct {
        uint64_t id;             /* bucket number + 1 (time / width_ms + 1); 0 = empty */
        int64_t requests, retries;
    } b[BUDGET_BUCKETS];
};

qt_retry_budget *qt_retry_budget_new(double ratio, uint64_t window_ms, int min_retries)
{
    if (!(ratio >= 0.0) || window_ms == 0 || min_retries < 0)
        return NULL;
    qt_retry_budget *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->ratio = ratio;
    b->min_retries = min_retries;
    b->width_ms = (window_ms + BUDGET_BUCKETS - 1) / BUDGET_BUCKETS;
    return b;
}

void qt_retry_budget_free(qt_retry_budget *b) { free(b); }

static uint64_t budget_now(const qt_retry_budget *b, uint64_t now_ms)
{
    return now_ms > b->last_ms ? now_ms : b->last_ms;
}

/* Sums the live buckets (the current one and the BUDGET_BUCKETS-1 before it). */
static void budget_sum(const qt_retry_budget *b, uint64_t now_ms, int64_t *req, int64_t *ret)
{
    uint64_t cur = now_ms / b->width_ms + 1;
    *req = *ret = 0;
    for (int i = 0; i < BUDGET_BUCKETS; i++)
        if (b->b[i].id != 0 && b->b[i].id + BUDGET_BUCKETS > cur && b->b[i].id <= cur) {
            *req += b->b[i].requests;
            *ret += b->b[i].retries;
        }
}

/* Returns the bucket for now_ms, emptied if it held an older period. */
static int budget_slot(qt_retry_budget *b, uint64_t now_ms)
{
    uint64_t id = now_ms / b->width_ms + 1;
    int i = (int)(id % BUDGET_BUCKETS);
    if (b->b[i].id != id) {
        b->b[i].id = id;
        b->b[i].requests = b->b[i].retries = 0;
    }
    return i;
}

void qt_retry_budget_record_request(qt_retry_budget *b, uint64_t now_ms)
{
    if (!b)
        return;
    now_ms = b->last_ms = budget_now(b, now_ms);
    b->b[budget_slot(b, now_ms)].requests++;
}

int64_t qt_retry_budget_available(const qt_retry_budget *b, uint64_t now_ms)
{
    if (!b)
        return 0;
    int64_t req, ret;
    budget_sum(b, budget_now(b, now_ms), &req, &ret);
    int64_t allowed = b->min_retries + (int64_t)(b->ratio * (double)req);
    return allowed > ret ? allowed - ret : 0;
}

int qt_retry_budget_try_spend(qt_retry_budget *b, uint64_t now_ms)
{
    if (!b || qt_retry_budget_available(b, now_ms) <= 0)
        return 0;
    now_ms = b->last_ms = budget_now(b, now_ms);
    b->b[budget_slot(b, now_ms)].retries++;
    return 1;
}
