/* retry.h: error classification, wait-hint parsing, backoff and retry budget.
 *
 * Three layers, all pure:
 *   - parsers for what upstreams send about "when may I come back":
 *     Go durations (OpenAI x-ratelimit-reset-*), Retry-After (delta-seconds or
 *     HTTP-date) and RFC 3339 timestamps (Anthropic anthropic-ratelimit-*-reset);
 *   - classification of a response into ok / retryable / fallback / fatal, and
 *     the wait before the next attempt (the most precise hint, else capped
 *     exponential backoff with full jitter from a caller-supplied random value);
 *   - a per-provider retry budget so an outage cannot become a retry storm.
 *
 * Thread-safety: the parsers, qt_retry_classify and qt_retry_wait_ms are
 * thread-safe (no state). qt_retry_budget is not thread-safe; the engine
 * serialises all calls on one budget.
 */
#ifndef QT_RETRY_H
#define QT_RETRY_H

#include <stdint.h>

/* ---- parsers ------------------------------------------------------------ */

/* Parses a Go-style duration ("1s", "6m0s", "12ms", "1.5s", "2h3m4.5s", "0",
 * "0s", "250us", "250µs", "1ns") into milliseconds, rounding up any
 * sub-millisecond part (so "1ns" is 1 ms: never come back early). Units: ns,
 * us, µs, μs, ms, s, m, h; every number but a bare "0" needs a unit; a
 * leading '+' is accepted, a '-' is not (a negative reset means nothing).
 * Surrounding spaces are ignored.
 * Returns 0 and sets *out_ms on success; returns -1 on malformed input or
 * overflow, leaving *out_ms unaltered. */
int qt_retry_parse_duration_ms(const char *s, int64_t *out_ms);

/* Parses a Retry-After value and returns how long to wait from now_wall_ms
 * (Unix epoch milliseconds) in *out_ms:
 *   - delta-seconds: "30", also "1.5" (fractions rounded up to the ms);
 *   - HTTP-date in its three forms: IMF-fixdate "Wed, 21 Oct 2015 07:28:00 GMT",
 *     RFC 850 "Wednesday, 21-Oct-15 07:28:00 GMT" (a two-digit year more than
 *     50 years ahead of now_wall_ms's year is taken as the previous century,
 *     RFC 9110 5.6.7) and asctime "Wed Oct 21 07:28:00 2015".
 * A date in the past gives 0. Month and day names are matched in ASCII
 * (case-insensitive), independent of the locale.
 * Returns 0 on success; -1 on malformed input (*out_ms unaltered). */
int qt_retry_parse_retry_after_ms(const char *s, int64_t now_wall_ms, int64_t *out_ms);

/* Parses an RFC 3339 timestamp ("2024-01-01T00:00:30Z", "...T00:00:30.25Z",
 * "...T02:00:30+02:00"; 't', 'z' and a space separator are accepted) into Unix
 * epoch milliseconds, fractions rounded up to the ms.
 * Returns 0 on success; -1 on malformed input (*out_epoch_ms unaltered). */
int qt_retry_parse_rfc3339_ms(const char *s, int64_t *out_epoch_ms);

/* ---- classification ----------------------------------------------------- */

typedef enum {
    QT_RETRY_OK = 0,         /* success: use the response */
    QT_RETRY_RETRYABLE,      /* transient: wait and try the same model again */
    QT_RETRY_FALLBACK,       /* this model cannot serve it: next model of the chain */
    QT_RETRY_FATAL,          /* retrying or falling back cannot fix it: fail the job */
} qt_retry_class;

/* What went wrong below HTTP (the caller maps its libcurl codes to these). */
typedef enum {
    QT_RETRY_TRANSPORT_NONE = 0,   /* a response with a status arrived */
    QT_RETRY_TRANSPORT_TIMEOUT,    /* connect or transfer timed out */
    QT_RETRY_TRANSPORT_CONNECT,    /* DNS, refused, reset, TLS handshake */
    QT_RETRY_TRANSPORT_OTHER,      /* any other send/receive failure */
} qt_retry_transport;

typedef struct {
    qt_retry_class cls;
    const char *reason;      /* short static text, e.g. "rate limited (429)"; never NULL */
    int upstream_failure;    /* 1: counts as a circuit-breaker failure (timeouts,
                                connection errors, 5xx, 529); 0 otherwise (429s
                                are rate signals, 4xx are the request's fault) */
    int rate_limited;        /* 1: a retryable 429 (for the limiter and the 429 counter) */
} qt_retry_verdict;

/* Classifies one attempt's outcome. http_status is the response status (0 when
 * there was none); error_type, error_code and message are the fields of the
 * upstream error body (OpenAI error.type/error.code/error.message, Anthropic
 * error.type/-/error.message), each may be NULL; transport is the failure
 * below HTTP, if any (it takes precedence over the status).
 *   OK         2xx
 *   RETRYABLE  transport errors; 408; 429 (except insufficient_quota);
 *              500, 502, 503, 504, 529 and other 5xx except 501 and 505
 *   FALLBACK   context length exceeded (code "context_length_exceeded", or a
 *              400/413 invalid_request_error whose message says the prompt or
 *              context is too long); model not found at this provider (code
 *              "model_not_found", or a 404 not_found_error naming a model)
 *   FATAL      every other status, incl. 400, 401, 403, 404, 501, 505, 1xx/3xx,
 *              and 429 with type or code "insufficient_quota" (billing)
 * Never fails; the verdict's reason is a static string. */
qt_retry_verdict qt_retry_classify(int http_status, const char *error_type,
                                   const char *error_code, const char *message,
                                   qt_retry_transport transport);

/* Static name of a class: "ok", "retryable", "fallback", "fatal". Never NULL. */
const char *qt_retry_class_name(qt_retry_class cls);

/* ---- waiting ------------------------------------------------------------ */

/* Defaults (they match config.h). */
#define QT_RETRY_DEFAULT_MAX_ATTEMPTS        5
#define QT_RETRY_DEFAULT_BASE_MS             1000
#define QT_RETRY_DEFAULT_CAP_MS              60000
#define QT_RETRY_DEFAULT_MAX_RETRY_AFTER_MS  120000

typedef struct {
    int max_attempts;            /* attempts per model incl. the first; 0 = unlimited */
    int64_t base_ms;             /* backoff ceiling of the first retry (> 0) */
    int64_t cap_ms;              /* largest backoff ceiling; 0 = uncapped */
    int64_t max_retry_after_ms;  /* a hinted wait above this: MOVE_ON; 0 = never */
} qt_retry_policy;

/* What the failed response said about when to come back. Every field is -1
 * when absent (0 is a real value: "come back now"): start from
 * qt_retry_hints_init(). Waits are relative to the response, in ms. */
typedef struct {
    int64_t retry_after_ms;          /* "retry-after-ms" header (OpenAI, Azure) */
    int64_t retry_after_wait_ms;     /* "retry-after", via qt_retry_parse_retry_after_ms */
    int64_t reset_requests_ms;       /* x-ratelimit-reset-requests (Go duration) */
    int64_t reset_tokens_ms;         /* x-ratelimit-reset-tokens (Go duration) */
    int64_t reset_requests_epoch_ms; /* anthropic-ratelimit-requests-reset (RFC 3339) */
    int64_t reset_tokens_epoch_ms;   /* anthropic-ratelimit-(input-|output-)tokens-reset,
                                        the latest of them */
    int64_t now_wall_ms;             /* wall time of the response, for the epoch fields */
    int64_t remaining_requests;      /* x-ratelimit-remaining-requests / anthropic-... */
    int64_t remaining_tokens;        /* x-ratelimit-remaining-tokens / anthropic-... */
} qt_retry_hints;

/* Sets every field of *h to -1 (absent). */
void qt_retry_hints_init(qt_retry_hints *h);

typedef enum {
    QT_RETRY_WAIT = 0,    /* wait *wait_ms, then try the same model again */
    QT_RETRY_GIVE_UP,     /* max_attempts used up on this model */
    QT_RETRY_MOVE_ON,     /* the upstream asks for a wait above max_retry_after_ms:
                             go down the fallback chain instead of waiting */
} qt_retry_decision;

/* Decides what follows a RETRYABLE outcome. attempts is the number of attempts
 * already sent on this model (>= 1). h may be NULL (no hints). rnd is a
 * uniformly random 64-bit value supplied by the caller (tests pass fixed ones).
 *   - attempts >= max_attempts (when max_attempts > 0): GIVE_UP;
 *   - else the most precise hint present wins: retry-after-ms, then
 *     retry-after, then the rate-limit reset: of the requests/tokens resets,
 *     the one(s) whose remaining count is 0; when none is known to be 0, the
 *     smallest given (durations before epochs). A hinted wait above
 *     max_retry_after_ms gives MOVE_ON (with *wait_ms set to it), else WAIT
 *     with that wait (not capped by cap_ms: the upstream knows), raised to
 *     qt_retry_floor_ms(p, rnd) when shorter (a hint of 0 is not "now");
 *   - without hints, full jitter: WAIT uniformly in
 *     [0, min(cap_ms, base_ms * 2^(attempts-1))].
 * *wait_ms is set for WAIT and MOVE_ON, and 0 for GIVE_UP. Returns GIVE_UP
 * with *wait_ms = 0 when p or wait_ms is NULL (wait_ms NULL: untouched). */
qt_retry_decision qt_retry_wait_ms(const qt_retry_policy *p, int attempts,
                                   const qt_retry_hints *h, uint64_t rnd, int64_t *wait_ms);

/* The least wait before a retry, whatever the upstream hints: uniformly in
 * [base_ms / 4, base_ms / 2] (capped by cap_ms) from rnd, so "Retry-After: 0"
 * or a reset in the past cannot make a burst of retries in lockstep. 0 when
 * p is NULL or base_ms <= 0. */
int64_t qt_retry_floor_ms(const qt_retry_policy *p, uint64_t rnd);

/* How long a key may be held for an upstream's hinted wait (a rate-limit
 * reset, a Retry-After): the hint, at most max_retry_after_ms (when > 0), so
 * a reset of 999999999 s or "2000h" cannot hold a model for good. Negative
 * hints give 0. */
int64_t qt_retry_hold_cap_ms(const qt_retry_policy *p, int64_t hinted_ms);

/* Static name of a decision: "wait", "give_up", "move_on". Never NULL. */
const char *qt_retry_decision_name(qt_retry_decision d);

/* ---- retry budget ------------------------------------------------------- */

/* Per provider: over a rolling window, retries may be at most
 * min_retries + ratio * (first attempts recorded), so an outage cannot turn
 * into a retry storm while a fresh or quiet provider may still retry a few
 * times. The window is kept as 10 time buckets: it spans window_ms to within
 * one bucket (window_ms / 10). Defaults: ratio 0.5 (config.h), window 10 s,
 * 10 retries of slack per window. */
#define QT_RETRY_BUDGET_DEFAULT_RATIO        0.5
#define QT_RETRY_BUDGET_DEFAULT_WINDOW_MS    10000
#define QT_RETRY_BUDGET_DEFAULT_MIN_RETRIES  10

typedef struct qt_retry_budget qt_retry_budget;

/* Creates a budget. ratio >= 0, window_ms > 0, min_retries >= 0.
 * Returns NULL on invalid arguments or allocation failure. The caller owns
 * the result and frees it with qt_retry_budget_free(). */
qt_retry_budget *qt_retry_budget_new(double ratio, uint64_t window_ms, int min_retries);

/* Frees b. NULL is a no-op. */
void qt_retry_budget_free(qt_retry_budget *b);

/* Records one request's first attempt at now_ms (never the retries: they would
 * feed the budget that limits them). Time that goes backwards is taken as the
 * latest time seen. */
void qt_retry_budget_record_request(qt_retry_budget *b, uint64_t now_ms);

/* Returns 1 and counts one retry when a retry may go now; returns 0 (and
 * counts nothing) when the budget is spent. */
int qt_retry_budget_try_spend(qt_retry_budget *b, uint64_t now_ms);

/* Returns how many retries try_spend would allow now. No side effects. */
int64_t qt_retry_budget_available(const qt_retry_budget *b, uint64_t now_ms);

#endif /* QT_RETRY_H */
