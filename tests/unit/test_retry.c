/* test_retry.c: the retry module (suite "retry").
 *
 * DESIGN
 * Parsers are checked with parameter tables (input, expected result) that
 * include malformed inputs; every expectation was computed independently
 * (date -u +%s for the epochs). Classification is a table over every status
 * and code the module names. Backoff uses fixed "random" values, so the
 * jitter bounds are asserted exactly; the retry budget is driven by a
 * simulated clock.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdint.h>
#include <string.h>

#include "quotatop/common.h"
#include "quotatop/retry.h"

#define BAD INT64_MIN   /* expected: the parser returns -1 */

/* ---- Go durations ------------------------------------------------------- */

/* Criterion runs each parameter in a fresh process image (PIE: other
 * addresses), so parameters hold their strings inline, never as pointers. */
struct dur_case { char in[32]; int64_t ms; };

ParameterizedTestParameters(retry, duration)
{
    static struct dur_case cases[] = {
        { "1s", 1000 },          { "6m0s", 360000 },      { "12ms", 12 },
        { "20ms", 20 },          { "1.5s", 1500 },        { "2h3m4.5s", 7384500 },
        { "0s", 0 },             { "0", 0 },              { "250us", 1 },
        { "1ns", 1 },            { "999999ns", 1 },       { "1000000ns", 1 },
        { "1000001ns", 2 },      { "1500us", 2 },         { "250\xc2\xb5s", 1 },
        { "250\xce\xbcs", 1 },   { ".5s", 500 },          { "1.s", 1000 },
        { "1m30.5s", 90500 },    { "0.001s", 1 },         { "0.0001s", 1 },
        { "+3s", 3000 },         { " 7s ", 7000 },        { "1h", 3600000 },
        { "1.25m", 75000 },      { "3ms500us", 4 },       { "59.999s", 59999 },
        /* malformed */
        { "", BAD },             { " ", BAD },            { "s", BAD },
        { "1", BAD },            { "10", BAD },           { "-1s", BAD },
        { "1.5.2s", BAD },       { "1x", BAD },           { "1s2", BAD },
        { ".s", BAD },           { "1 s", BAD },          { "1S", BAD },
        { "1sec", BAD },         { "abc", BAD },          { "1s-", BAD },
        { "9999999999h", BAD },  { "99999999999999999999s", BAD }, { "+", BAD },
    };
    return cr_make_param_array(struct dur_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct dur_case *c, retry, duration)
{
    int64_t out = -42;
    int rc = qt_retry_parse_duration_ms(c->in, &out);
    if (c->ms == BAD) {
        cr_assert_eq(rc, -1, "\"%s\" should be malformed, got %lld", c->in, (long long)out);
        cr_assert_eq(out, -42, "\"%s\": output written on error", c->in);
    } else {
        cr_assert_eq(rc, 0, "\"%s\" should parse", c->in);
        cr_assert_eq(out, c->ms, "\"%s\": %lld ms, expected %lld", c->in, (long long)out,
                     (long long)c->ms);
    }
}

Test(retry, duration_null_args)
{
    int64_t out = 5;
    cr_assert_eq(qt_retry_parse_duration_ms(NULL, &out), -1);
    cr_assert_eq(qt_retry_parse_duration_ms("1s", NULL), -1);
    cr_assert_eq(out, 5);
}

/* ---- Retry-After -------------------------------------------------------- */

#define NOW_2015 1445412480000LL    /* Wed, 21 Oct 2015 07:28:00 GMT */

struct ra_case { char in[48]; int64_t now; int64_t ms; };

ParameterizedTestParameters(retry, retry_after)
{
    static struct ra_case cases[] = {
        /* delta-seconds */
        { "30", NOW_2015, 30000 },
        { "0", NOW_2015, 0 },
        { "1.5", NOW_2015, 1500 },
        { "0.25", NOW_2015, 250 },
        { "0.0001", NOW_2015, 1 },        /* rounded up, never early */
        { "2.0001", NOW_2015, 2001 },
        { "120", 0, 120000 },             /* independent of now */
        { " 7 ", NOW_2015, 7000 },
        /* IMF-fixdate */
        { "Wed, 21 Oct 2015 07:28:30 GMT", NOW_2015, 30000 },
        { "Wed, 21 Oct 2015 08:28:00 GMT", NOW_2015, 3600000 },
        { "Thu, 22 Oct 2015 07:28:00 GMT", NOW_2015, 86400000 },
        { "wed, 21 oct 2015 07:28:30 gmt", NOW_2015, 30000 },
        { "Wed, 21 Oct 2015 07:28:00 GMT", NOW_2015, 0 },          /* now */
        { "Wed, 21 Oct 2015 07:27:00 GMT", NOW_2015, 0 },          /* past */
        { "Sun, 06 Nov 1994 08:49:37 GMT", NOW_2015, 0 },          /* long past */
        { "Sun, 06 Nov 1994 08:49:47 GMT", 784111777000LL, 10000 },
        { "Thu, 29 Feb 2024 23:59:59 GMT", 1709251189000LL, 10000 }, /* leap day */
        /* RFC 850 (two-digit year) */
        { "Wednesday, 21-Oct-15 07:28:30 GMT", NOW_2015, 30000 },
        { "Sunday, 06-Nov-94 08:49:47 GMT", 784111777000LL, 10000 },
        { "Sunday, 06-Nov-94 08:49:37 GMT", NOW_2015, 0 },         /* 1994, past */
        /* asctime */
        { "Wed Oct 21 07:28:30 2015", NOW_2015, 30000 },
        { "Sun Nov  6 08:49:47 1994", 784111777000LL, 10000 },
        { "Sun Nov 06 08:49:47 1994", 784111777000LL, 10000 },
        { "Wed Oct 21 07:00:00 2015", NOW_2015, 0 },               /* past */
        /* garbage */
        { "", NOW_2015, BAD },
        { "soon", NOW_2015, BAD },
        { "-5", NOW_2015, BAD },
        { "30s", NOW_2015, BAD },
        { "1.2.3", NOW_2015, BAD },
        { ".", NOW_2015, BAD },
        { "Wed, 21 Oct 2015 07:28:30 UTC", NOW_2015, BAD },
        { "Wed, 32 Oct 2015 07:28:30 GMT", NOW_2015, BAD },
        { "Wed, 29 Feb 2015 07:28:30 GMT", NOW_2015, BAD },        /* not a leap year */
        { "Wed, 21 Foo 2015 07:28:30 GMT", NOW_2015, BAD },
        { "Wed, 21 Oct 2015 24:00:00 GMT", NOW_2015, BAD },
        { "Wed, 21 Oct 2015 07:28 GMT", NOW_2015, BAD },
        { "Wed, 21 Oct 15 07:28:30 GMT", NOW_2015, BAD },
        { "Wed, 21 Oct 2015 07:28:30 GMT trailing", NOW_2015, BAD },
        { "Xyz, 21 Oct 2015 07:28:30 GMT", NOW_2015, BAD },
        { "Wednesday, 21-Oct-2015 07:28:30 GMT", NOW_2015, BAD },
        { "Wed Oct 21 07:28:30", NOW_2015, BAD },
        { "2015-10-21T07:28:30Z", NOW_2015, BAD },
    };
    return cr_make_param_array(struct ra_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct ra_case *c, retry, retry_after)
{
    int64_t out = -42;
    int rc = qt_retry_parse_retry_after_ms(c->in, c->now, &out);
    if (c->ms == BAD) {
        cr_assert_eq(rc, -1, "\"%s\" should be malformed, got %lld", c->in, (long long)out);
        cr_assert_eq(out, -42);
    } else {
        cr_assert_eq(rc, 0, "\"%s\" should parse", c->in);
        cr_assert_eq(out, c->ms, "\"%s\": %lld ms, expected %lld", c->in, (long long)out,
                     (long long)c->ms);
    }
}

/* RFC 9110: a two-digit year more than 50 years ahead is the previous century. */
Test(retry, retry_after_rfc850_century)
{
    int64_t now_2061 = 2871763200000LL;   /* 2061-01-01T00:00:00Z */
    int64_t out = -1;
    /* From 2061, "99" is 2099: 38 years ahead, within 50, so in the future. */
    cr_assert_eq(qt_retry_parse_retry_after_ms("Thursday, 31-Dec-99 23:59:59 GMT", now_2061, &out), 0);
    cr_assert_gt(out, 0, "2099 is within 50 years of 2061");
    /* From 2015, "99" is 1999 (2099 is 84 years ahead): in the past. */
    cr_assert_eq(qt_retry_parse_retry_after_ms("Friday, 31-Dec-99 23:59:59 GMT", NOW_2015, &out), 0);
    cr_assert_eq(out, 0);
    /* From 2015, "30" is 2030: ahead by exactly 2030-01-01 - now. */
    cr_assert_eq(qt_retry_parse_retry_after_ms("Tuesday, 01-Jan-30 00:00:00 GMT", NOW_2015, &out), 0);
    cr_assert_eq(out, 1893456000000LL - NOW_2015);
}

/* ---- RFC 3339 ----------------------------------------------------------- */

struct rfc_case { char in[40]; int64_t ms; };

ParameterizedTestParameters(retry, rfc3339)
{
    static struct rfc_case cases[] = {
        { "2024-01-01T00:00:30Z", 1704067230000LL },
        { "2024-01-01t00:00:30z", 1704067230000LL },
        { "2024-01-01 00:00:30Z", 1704067230000LL },
        { "2024-01-01T00:00:30.25Z", 1704067230250LL },
        { "2024-01-01T00:00:30.5Z", 1704067230500LL },
        { "2024-01-01T00:00:30.123Z", 1704067230123LL },
        { "2024-01-01T00:00:30.123456789Z", 1704067230124LL },   /* rounded up */
        { "2024-01-01T00:00:30.000000Z", 1704067230000LL },
        { "2024-01-01T02:00:30+02:00", 1704067230000LL },
        { "2023-12-31T22:30:30-01:30", 1704067230000LL },
        { "2024-01-01T00:00:30+00:00", 1704067230000LL },
        { "2024-01-01T00:00:30-00:00", 1704067230000LL },
        { "2024-02-29T23:59:59Z", 1709251199000LL },
        { "2000-03-01T00:00:00Z", 951868800000LL },
        { "1999-12-31T23:59:59.999Z", 946684799999LL },
        { "2015-10-21T07:28:00Z", NOW_2015 },
        { "1970-01-01T00:00:00Z", 0 },
        /* malformed */
        { "2024-01-01T00:00:30", BAD },          /* no offset */
        { "2024-01-01", BAD },
        { "2024-01-01T00:00Z", BAD },
        { "2024-1-01T00:00:30Z", BAD },
        { "2024-13-01T00:00:30Z", BAD },
        { "2023-02-29T00:00:30Z", BAD },
        { "2024-01-01T25:00:30Z", BAD },
        { "2024-01-01T00:00:30.Z", BAD },
        { "2024-01-01T00:00:30+0200", BAD },
        { "2024-01-01T00:00:30+02", BAD },
        { "2024-01-01X00:00:30Z", BAD },
        { "2024-01-01T00:00:30Zjunk", BAD },
        { "", BAD },
        { "1s", BAD },
    };
    return cr_make_param_array(struct rfc_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct rfc_case *c, retry, rfc3339)
{
    int64_t out = -42;
    int rc = qt_retry_parse_rfc3339_ms(c->in, &out);
    if (c->ms == BAD) {
        cr_assert_eq(rc, -1, "\"%s\" should be malformed, got %lld", c->in, (long long)out);
        cr_assert_eq(out, -42);
    } else {
        cr_assert_eq(rc, 0, "\"%s\" should parse", c->in);
        cr_assert_eq(out, c->ms, "\"%s\": %lld, expected %lld", c->in, (long long)out,
                     (long long)c->ms);
    }
}

/* ---- classification ----------------------------------------------------- */

struct cls_case {
    int status;
    char type[32], code[32], msg[128];   /* "" stands for NULL (absent) */
    qt_retry_transport transport;
    qt_retry_class cls;
    int failure;          /* expected upstream_failure */
    int rate_limited;
};

#define R QT_RETRY_RETRYABLE
#define F QT_RETRY_FATAL
#define B QT_RETRY_FALLBACK
#define K QT_RETRY_OK
#define TNONE QT_RETRY_TRANSPORT_NONE

ParameterizedTestParameters(retry, classify)
{
    static struct cls_case cases[] = {
        { 200, "", "", "", TNONE, K, 0, 0 },
        { 201, "", "", "", TNONE, K, 0, 0 },
        /* retryable */
        { 429, "requests", "rate_limit_exceeded", "Rate limit reached", TNONE, R, 0, 1 },
        { 429, "rate_limit_error", "", "Number of request tokens has exceeded", TNONE, R, 0, 1 },
        { 429, "", "", "", TNONE, R, 0, 1 },
        { 408, "", "", "", TNONE, R, 1, 0 },
        { 500, "server_error", "", "", TNONE, R, 1, 0 },
        { 502, "", "", "", TNONE, R, 1, 0 },
        { 503, "", "", "", TNONE, R, 1, 0 },
        { 504, "", "", "", TNONE, R, 1, 0 },
        { 529, "overloaded_error", "", "Overloaded", TNONE, R, 1, 0 },
        { 520, "", "", "", TNONE, R, 1, 0 },
        { 0, "", "", "", QT_RETRY_TRANSPORT_TIMEOUT, R, 1, 0 },
        { 0, "", "", "", QT_RETRY_TRANSPORT_CONNECT, R, 1, 0 },
        { 0, "", "", "", QT_RETRY_TRANSPORT_OTHER, R, 1, 0 },
        { 200, "", "", "", QT_RETRY_TRANSPORT_TIMEOUT, R, 1, 0 },   /* transport wins */
        /* fallback */
        { 400, "invalid_request_error", "context_length_exceeded",
          "This model's maximum context length is 128000 tokens", TNONE, B, 0, 0 },
        { 400, "invalid_request_error", "",
          "prompt is too long: 208000 tokens > 200000 maximum", TNONE, B, 0, 0 },
        { 400, "invalid_request_error", "",
          "input length and max_tokens exceed context limit: 199000 + 4096 > 200000 "
          "(context window)", TNONE, B, 0, 0 },
        { 413, "request_too_large", "", "Prompt is too long", TNONE, B, 0, 0 },
        { 404, "invalid_request_error", "model_not_found",
          "The model `gpt-9` does not exist", TNONE, B, 0, 0 },
        { 404, "not_found_error", "", "model: claude-9", TNONE, B, 0, 0 },
        /* fatal */
        { 400, "invalid_request_error", "", "messages: field required", TNONE, F, 0, 0 },
        { 400, "", "", "", TNONE, F, 0, 0 },
        { 401, "authentication_error", "invalid_api_key", "Incorrect API key", TNONE, F, 0, 0 },
        { 403, "permission_error", "", "", TNONE, F, 0, 0 },
        { 404, "", "", "", TNONE, F, 0, 0 },
        { 404, "not_found_error", "", "Not found", TNONE, F, 0, 0 },
        { 409, "", "", "", TNONE, F, 0, 0 },
        { 413, "", "", "Request exceeds the maximum allowed number of bytes", TNONE, F, 0, 0 },
        { 422, "", "", "", TNONE, F, 0, 0 },
        { 429, "insufficient_quota", "insufficient_quota",
          "You exceeded your current quota", TNONE, F, 0, 0 },
        { 429, "", "insufficient_quota", "", TNONE, F, 0, 0 },
        { 501, "", "", "", TNONE, F, 0, 0 },
        { 505, "", "", "", TNONE, F, 0, 0 },
        { 302, "", "", "", TNONE, F, 0, 0 },
        { 0, "", "", "", TNONE, F, 0, 0 },
    };
    return cr_make_param_array(struct cls_case, cases, sizeof cases / sizeof cases[0]);
}

static const char *nul(const char *s) { return s[0] ? s : ""; }

ParameterizedTest(struct cls_case *c, retry, classify)
{
    qt_retry_verdict v = qt_retry_classify(c->status, nul(c->type), nul(c->code), nul(c->msg),
                                           c->transport);
    cr_assert_eq(v.cls, c->cls, "status %d code %s transport %d: %s (%s), expected %s",
                 c->status, c->code, (int)c->transport,
                 qt_retry_class_name(v.cls), v.reason, qt_retry_class_name(c->cls));
    cr_assert_eq(v.upstream_failure, c->failure, "status %d: upstream_failure", c->status);
    cr_assert_eq(v.rate_limited, c->rate_limited, "status %d: rate_limited", c->status);
    cr_assert(v.reason != NULL && v.reason[0] != '\0');
}

Test(retry, names)
{
    cr_assert_str_eq(qt_retry_class_name(QT_RETRY_FALLBACK), "fallback");
    cr_assert_str_eq(qt_retry_class_name(QT_RETRY_FATAL), "fatal");
    cr_assert_str_eq(qt_retry_decision_name(QT_RETRY_MOVE_ON), "move_on");
    cr_assert_str_eq(qt_retry_decision_name(QT_RETRY_GIVE_UP), "give_up");
}

/* ---- waiting ------------------------------------------------------------ */

static qt_retry_policy policy(void)
{
    qt_retry_policy p = { .max_attempts = 5, .base_ms = 1000, .cap_ms = 60000,
                          .max_retry_after_ms = 120000 };
    return p;
}


Test(retry, full_jitter_bounds)
{
    qt_retry_policy p = policy();
    p.max_attempts = 0;                       /* unlimited: look at high attempts too */
    int64_t ceil_of[] = { 0, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000 };
    uint64_t seed = 42;
    for (int a = 1; a < 10; a++) {
        int64_t w, lo = INT64_MAX, hi = -1;
        /* the extremes of the random range hit both ends exactly */
        cr_assert_eq(qt_retry_wait_ms(&p, a, NULL, 0, &w), QT_RETRY_WAIT);
        cr_assert_eq(w, 0);
        cr_assert_eq(qt_retry_wait_ms(&p, a, NULL, (uint64_t)ceil_of[a], &w), QT_RETRY_WAIT);
        cr_assert_eq(w, ceil_of[a], "attempt %d: top of range %lld, expected %lld", a,
                     (long long)w, (long long)ceil_of[a]);
        for (int i = 0; i < 20000; i++) {
            cr_assert_eq(qt_retry_wait_ms(&p, a, NULL, qt_rand_next(&seed), &w), QT_RETRY_WAIT);
            cr_assert(w >= 0 && w <= ceil_of[a], "attempt %d: wait %lld out of [0, %lld]", a,
                      (long long)w, (long long)ceil_of[a]);
            lo = w < lo ? w : lo;
            hi = w > hi ? w : hi;
        }
        /* full jitter: it really spreads over the whole range */
        cr_assert_lt(lo, ceil_of[a] / 20, "attempt %d: min %lld", a, (long long)lo);
        cr_assert_gt(hi, ceil_of[a] - ceil_of[a] / 20, "attempt %d: max %lld", a, (long long)hi);
    }
}

Test(retry, backoff_cap_and_huge_attempts)
{
    qt_retry_policy p = policy();
    p.max_attempts = 0;
    int64_t w;
    cr_assert_eq(qt_retry_wait_ms(&p, 1000000, NULL, UINT64_MAX, &w), QT_RETRY_WAIT);
    cr_assert(w >= 0 && w <= 60000, "wait %lld above cap", (long long)w);
    cr_assert_eq(qt_retry_wait_ms(&p, 200, NULL, 60000, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 60000);
    p.cap_ms = 0;                             /* uncapped: saturates, never overflows */
    cr_assert_eq(qt_retry_wait_ms(&p, 1000000, NULL, UINT64_MAX, &w), QT_RETRY_WAIT);
    cr_assert_geq(w, 0);
}

Test(retry, give_up_after_max_attempts)
{
    qt_retry_policy p = policy();
    int64_t w = -1;
    for (int a = 1; a < 5; a++)
        cr_assert_eq(qt_retry_wait_ms(&p, a, NULL, 7, &w), QT_RETRY_WAIT, "attempt %d", a);
    cr_assert_eq(qt_retry_wait_ms(&p, 5, NULL, 7, &w), QT_RETRY_GIVE_UP);
    cr_assert_eq(w, 0);
    cr_assert_eq(qt_retry_wait_ms(&p, 6, NULL, 7, &w), QT_RETRY_GIVE_UP);
    /* a hint does not buy extra attempts */
    qt_retry_hints h;
    qt_retry_hints_init(&h);
    h.retry_after_ms = 10;
    cr_assert_eq(qt_retry_wait_ms(&p, 5, &h, 7, &w), QT_RETRY_GIVE_UP);
    p.max_attempts = 1;                       /* no retries at all */
    cr_assert_eq(qt_retry_wait_ms(&p, 1, NULL, 7, &w), QT_RETRY_GIVE_UP);
    cr_assert_eq(qt_retry_wait_ms(NULL, 1, NULL, 7, &w), QT_RETRY_GIVE_UP);
}

Test(retry, hint_precedence)
{
    qt_retry_policy p = policy();
    qt_retry_hints h;
    int64_t w;
    qt_retry_hints_init(&h);
    h.retry_after_ms = 1234;
    h.retry_after_wait_ms = 5000;
    h.reset_requests_ms = 700;
    h.reset_tokens_ms = 800;
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 999, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 1234, "retry-after-ms first");
    h.retry_after_ms = -1;
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 999, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 5000, "then retry-after");
    h.retry_after_wait_ms = -1;
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 999, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 700, "then the earlier reset when none is known exhausted");
    h.remaining_requests = 3;
    h.remaining_tokens = 0;
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 999, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 800, "the exhausted limit's reset");
    h.remaining_requests = 0;
    h.reset_requests_ms = 9000;
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 999, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 9000, "both exhausted: the later reset");
    h.retry_after_ms = 0;                     /* 0 is a real hint, but not "now": the floor */
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 999, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, qt_retry_floor_ms(&p, 999));
    cr_assert_geq(w, p.base_ms / 4);
}

/* Issue 12, defect 11: "Retry-After: 0" or a date in the past was retried
 * at once (24 requests in 0.1 s). Now the floor applies, with jitter. */
Test(retry, zero_or_past_hint_gets_jittered_floor)
{
    qt_retry_policy p = policy();
    qt_retry_hints h;
    qt_retry_hints_init(&h);
    int64_t w, lo = INT64_MAX, hi = -1;
    cr_assert_eq(qt_retry_parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1704067200000LL,
                                               &h.retry_after_wait_ms), 0);
    cr_assert_eq(h.retry_after_wait_ms, 0, "a date in the past parses to 0");
    uint64_t seed = 42;
    for (int i = 0; i < 5000; i++) {
        cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, qt_rand_next(&seed), &w), QT_RETRY_WAIT);
        cr_assert(w >= p.base_ms / 4 && w <= p.base_ms / 2, "wait %lld", (long long)w);
        lo = w < lo ? w : lo;
        hi = w > hi ? w : hi;
    }
    cr_expect_lt(lo + p.base_ms / 8, hi, "jittered: waits spread (%lld..%lld)", (long long)lo, (long long)hi);
    h.retry_after_wait_ms = 10 * p.base_ms;   /* a real wait is kept as given */
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 0, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 10 * p.base_ms);
}

/* Defect 1: a far reset holds a key no longer than max_retry_after_ms. */
Test(retry, hold_is_capped_by_max_retry_after)
{
    qt_retry_policy p = policy();
    int64_t d;
    cr_assert_eq(qt_retry_parse_duration_ms("2000h", &d), 0);
    cr_expect_eq(qt_retry_hold_cap_ms(&p, d), p.max_retry_after_ms);
    cr_expect_eq(qt_retry_hold_cap_ms(&p, 999999999LL * 1000), p.max_retry_after_ms);
    cr_expect_eq(qt_retry_hold_cap_ms(&p, 1500), 1500);
    cr_expect_eq(qt_retry_hold_cap_ms(&p, -1), 0);
    p.max_retry_after_ms = 0;
    cr_expect_eq(qt_retry_hold_cap_ms(&p, 1500), 1500);
}

Test(retry, hint_anthropic_epoch)
{
    qt_retry_policy p = policy();
    qt_retry_hints h;
    int64_t w, epoch;
    qt_retry_hints_init(&h);
    cr_assert_eq(qt_retry_parse_rfc3339_ms("2024-01-01T00:00:30Z", &epoch), 0);
    h.reset_tokens_epoch_ms = epoch;
    h.now_wall_ms = 1704067200000LL;          /* 00:00:00 */
    h.remaining_tokens = 0;
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 999, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 30000);
    h.now_wall_ms = epoch + 5000;             /* reset already passed: the floor */
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 999, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, qt_retry_floor_ms(&p, 999));
    h.reset_tokens_ms = 1500;                 /* a duration beats the epoch */
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 999, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 1500);
    /* no hints at all (every field absent): backoff with the random value */
    qt_retry_hints_init(&h);
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 999, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 999);
}

Test(retry, move_on_above_max_retry_after)
{
    qt_retry_policy p = policy();
    qt_retry_hints h;
    int64_t w;
    qt_retry_hints_init(&h);
    h.retry_after_wait_ms = 120000;           /* exactly the limit: still waits */
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 0, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 120000, "hinted waits are not capped by cap_ms");
    h.retry_after_wait_ms = 120001;
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 0, &w), QT_RETRY_MOVE_ON);
    cr_assert_eq(w, 120001);
    /* a 6-minute token reset from OpenAI moves on too */
    qt_retry_hints_init(&h);
    int64_t reset;
    cr_assert_eq(qt_retry_parse_duration_ms("6m0s", &reset), 0);
    h.reset_tokens_ms = reset;
    h.remaining_tokens = 0;
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 0, &w), QT_RETRY_MOVE_ON);
    p.max_retry_after_ms = 0;                 /* 0: never move on */
    cr_assert_eq(qt_retry_wait_ms(&p, 1, &h, 0, &w), QT_RETRY_WAIT);
    cr_assert_eq(w, 360000);
}

/* ---- retry budget ------------------------------------------------------- */

Test(retry, budget_args)
{
    cr_assert_null(qt_retry_budget_new(-0.1, 1000, 1));
    cr_assert_null(qt_retry_budget_new(0.5, 0, 1));
    cr_assert_null(qt_retry_budget_new(0.5, 1000, -1));
    qt_retry_budget_free(NULL);
    cr_assert_eq(qt_retry_budget_try_spend(NULL, 0), 0);
}

Test(retry, budget_fresh_provider_min_retries)
{
    qt_retry_budget *b = qt_retry_budget_new(0.5, 10000, 3);
    cr_assert_not_null(b);
    cr_assert_eq(qt_retry_budget_available(b, 0), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(qt_retry_budget_try_spend(b, 100), 1, "min retry %d", i);
    cr_assert_eq(qt_retry_budget_try_spend(b, 100), 0);
    cr_assert_eq(qt_retry_budget_available(b, 100), 0);
    /* 4 first attempts buy 2 more retries at ratio 0.5 */
    for (int i = 0; i < 4; i++)
        qt_retry_budget_record_request(b, 200);
    cr_assert_eq(qt_retry_budget_try_spend(b, 300), 1);
    cr_assert_eq(qt_retry_budget_try_spend(b, 300), 1);
    cr_assert_eq(qt_retry_budget_try_spend(b, 300), 0);
    /* after the window everything has aged out: the minimum is back */
    cr_assert_eq(qt_retry_budget_available(b, 10300), 3);
    qt_retry_budget_free(b);
}

/* An outage: 100 requests/s all fail, each would retry 4 times. Without the
 * budget that is 500 attempts/s; with it, retries stay near ratio * requests. */
Test(retry, budget_limits_storm)
{
    const double ratio = 0.2;
    const int min_retries = 10;
    qt_retry_budget *b = qt_retry_budget_new(ratio, 10000, min_retries);
    cr_assert_not_null(b);
    int64_t requests = 0, retries = 0, refused = 0;
    int64_t per_sec_retries[600] = { 0 };
    for (uint64_t t = 0; t < 600000; t += 10) {      /* 600 simulated seconds */
        qt_retry_budget_record_request(b, t);
        requests++;
        for (int r = 0; r < 4; r++) {
            if (qt_retry_budget_try_spend(b, t)) {
                retries++;
                per_sec_retries[t / 1000]++;
            } else {
                refused++;
            }
        }
    }
    /* over the run: at most ratio * requests plus the per-window minimum */
    double bound = ratio * (double)requests + (double)min_retries * (600.0 / 10.0 + 1.0);
    cr_assert_leq((double)retries, bound, "%lld retries for %lld requests", (long long)retries,
                  (long long)requests);
    cr_assert_gt(refused, 0);
    /* and the budget is actually used, not just refusing everything */
    cr_assert_geq((double)retries, ratio * (double)requests * 0.8);
    /* no second ever carries a storm: 100 requests/s -> at most ~ 0.2*100*10 + 10 in any window */
    for (int s = 10; s < 600; s++) {
        int64_t win = 0;
        for (int k = s - 9; k <= s; k++)
            win += per_sec_retries[k];
        cr_assert_leq(win, (int64_t)(ratio * 100 * 10) + min_retries + 20,
                      "window ending at %ds: %lld retries", s, (long long)win);
    }
    qt_retry_budget_free(b);
}

Test(retry, budget_time_backwards)
{
    qt_retry_budget *b = qt_retry_budget_new(1.0, 1000, 0);
    cr_assert_not_null(b);
    qt_retry_budget_record_request(b, 5000);
    qt_retry_budget_record_request(b, 100);       /* taken as 5000 */
    cr_assert_eq(qt_retry_budget_available(b, 5000), 2);
    cr_assert_eq(qt_retry_budget_available(b, 6000), 0);
    qt_retry_budget_free(b);
}
