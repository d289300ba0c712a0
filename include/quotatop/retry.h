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

#endif /* QT_RETRY_H */
