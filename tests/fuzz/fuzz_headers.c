/* fuzz_headers.c: rate-limit and Retry-After header parsing. The input is
 * "name: value" lines; they go through qt_prov_parse_limit_headers (both
 * families), and every value through the retry.h parsers (Go durations,
 * Retry-After, RFC 3339). Every number that comes out must be in range:
 * limits and resets are -1 (absent) or >= 0, waits are never negative, and
 * qt_retry_wait_ms on the parsed hints never waits below 0 or holds a key
 * beyond max_retry_after_ms (defect 1 of issue 12). */
#include "fuzz_common.h"
#include "quotatop/http.h"
#include "quotatop/retry.h"
#include "../../src/upstream/provider_int.h"

#define MAX_H 32

static void check_window(const qt_limit_window *w)
{
    if (w->limit < -1 || w->remaining < -1 || w->reset_ms < -1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    qt_http_header h[MAX_H];
    size_t n = 0;
    const int64_t now_wall = 1704067200000LL;
    for (char *line = text, *next; line && n < MAX_H; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *value = colon + 1;
        while (*value == ' ')
            value++;
        h[n].name = line;
        h[n].value = value;
        n++;
        int64_t v;
        if (qt_retry_parse_duration_ms(value, &v) == 0 && v < 0)
            abort();
        if (qt_retry_parse_retry_after_ms(value, now_wall, &v) == 0 && v < 0)
            abort();
        (void)qt_retry_parse_rfc3339_ms(value, &v);
    }
    qt_provider_limits l;
    qt_prov_parse_limit_headers(h, n, now_wall, &l);
    check_window(&l.requests);
    check_window(&l.tokens);
    check_window(&l.input_tokens);
    check_window(&l.output_tokens);
    if (l.retry_after_ms < -1)
        abort();
    qt_retry_hints hints;
    qt_retry_hints_init(&hints);
    hints.now_wall_ms = now_wall;
    hints.retry_after_ms = l.retry_after_ms;
    hints.reset_requests_ms = l.requests.reset_ms;
    hints.reset_tokens_ms = l.tokens.reset_ms;
    hints.remaining_requests = l.requests.remaining;
    hints.remaining_tokens = l.tokens.remaining;
    qt_retry_policy pol = { 5, 1000, 60000, 120000 };
    int64_t wait;
    qt_retry_decision d = qt_retry_wait_ms(&pol, 1, &hints, (uint64_t)size * 2654435761u, &wait);
    if (wait < 0 || (d == QT_RETRY_WAIT && wait > pol.max_retry_after_ms && wait > pol.cap_ms))
        abort();
    if (qt_retry_hold_cap_ms(&pol, wait) > pol.max_retry_after_ms)
        abort();
    free(text);
    return 0;
}
