/* common.h: the one error enum of quotatop and small shared helpers.
 *
 * Every fallible function returns a qt_err (QT_OK = 0) or NULL, in the manner
 * of curl's CURLcode; qt_strerror() names the code. There is no global error
 * state. Thread-safety: everything here is safe from any thread.
 */
#ifndef QT_COMMON_H
#define QT_COMMON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    QT_OK = 0,
    QT_ERR_NOMEM,      /* allocation failed */
    QT_ERR_INVALID,    /* bad argument or malformed input */
    QT_ERR_NOTFOUND,   /* no such id / name */
    QT_ERR_IO,         /* file or socket error */
    QT_ERR_LIMIT,      /* a limit (rate, budget, size) refuses it */
    QT_ERR_CLOSED,     /* the object was closed / shut down */
    QT_ERR_TIMEOUT,    /* a wait ran out */
    QT_ERR_BACKEND,    /* shared backend (Redis) failed */
} qt_err;

/* Returns a static, human-readable name for an error code. Never NULL. */
const char *qt_strerror(qt_err err);

/* FNV-1a offset basis: the seed of a fresh hash. */
#define QT_HASH_SEED 1469598103934665603ull

/* FNV-1a of the string s continued from h (QT_HASH_SEED for a fresh hash),
 * for hash tables and cache keys. Not for anything adversarial. */
uint64_t qt_hash_str(uint64_t h, const char *s);

/* splitmix64: the next value of a seeded, reproducible pseudo-random stream
 * whose state the caller owns (jitter, weighted choices, simulations, tests).
 * Not for anything adversarial. */
uint64_t qt_rand_next(uint64_t *state);

/* A uniform double in [0, 1) from the same stream (53 random bits). */
double qt_rand01(uint64_t *state);

/* Redacts secrets in place: every occurrence in s of each of the n
 * secrets (NULL or shorter than 4 characters are skipped) becomes
 * "[redacted]" when the secret is at least that long, else '*'s, so the
 * text only shrinks. Returns how many were replaced. For upstream text
 * (errors that echo the API key) before it reaches results, clients or
 * logs. Thread-safe (no state). */
size_t qt_redact(char *s, const char *const *secrets, size_t n);

/* The local port a socket is bound to (IPv4 or IPv6), 0 when getsockname
 * fails. */
int qt_bound_port(int fd);

/* Number of elements of a true array. */
#define QT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* QT_COMMON_H */
