/* limiter.h: RPM / TPM / concurrency admission with pacing, reservations,
 * live limit changes, provider feedback, and the prompt-token estimator.
 *
 * The engine registers one key per model and one per provider. A request
 * names the set of keys that apply to it (its model key and its provider key)
 * and every one of them must admit it. Each key paces requests and tokens
 * with GCRA (generic cell rate algorithm) on integer nanoseconds, so
 * admissions are spread evenly over the minute instead of bursting.
 *
 * Pacing guarantee (exact). Let L be a key's limit per minute (requests or
 * tokens), T = 60000/L ms the emission interval (rounded up to a whole ns, so
 * never faster than L), and tau the burst tolerance given to qt_limiter_new,
 * raised to 1 ms (one clock tick) when T < 1 ms. Call the burst
 * B = 1 + tau/T units. For every half-open window [a, a+W) of integer
 * milliseconds, the units admitted through the key in that window (counted
 * as they stand after refunds; see commit) total
 *
 *     less than  W/T + max(B, c)
 *
 * where c is the estimate of the last request admitted in the window.
 * For requests (c = 1) with the default tau = 0 and rpm <= 60000 that is
 * fewer than W*L/60000 + 1, i.e. at most ceil(L/60) requests in any 1000 ms
 * window (L/60 when it is a whole number): at rpm 1188 admissions are 50.505
 * ms apart and no 1 s window holds more than 20. For tokens a 1 s window
 * holds less than tpm/60 + max(B, c): the one request that closes the window
 * may carry the excess; a request larger than the burst is admitted only
 * when the key is fully caught up, and pushes later admissions back by c*T.
 * Over any long run admissions stay within L per minute plus one burst.
 * A charge above the estimate at commit (actual > estimate) is spent
 * already and may exceed the bound once.
 *
 * Reservations are plain values the caller holds (no allocation per
 * request), so the engine may hold thousands and none can leak memory; each
 * must be committed or released exactly once to return its concurrency slot.
 *
 * Thread-safety: not thread-safe; the engine serialises all calls (one mutex).
 * Pure policy: every time-dependent function takes now_ms (a monotonic clock,
 * ms, below 2^63/10^6); no I/O, no clock reads, no globals.
 */
#ifndef QT_LIMITER_H
#define QT_LIMITER_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"

typedef struct qt_limiter qt_limiter;

#define QT_LIMITER_MAX_KEYS 4            /* keys one request may name */
#define QT_LIMITER_NEVER UINT64_MAX      /* "no time is known": wait for a slot */
#define QT_LIMITER_DEFAULT_BURST_MS 0.0  /* perfectly paced; see the guarantee */

/* A reservation. A plain value owned by the caller; its fields are private
 * to limiter.c. After commit or release it is spent (active == 0). */
typedef struct {
    int active;                             /* 1 between reserve and commit/release */
    int nkeys;
    int keys[QT_LIMITER_MAX_KEYS];
    int64_t tokens;                         /* tokens charged now (estimate) */
    uint64_t admit_ms;                      /* time of the admission */
    int64_t req_mark[QT_LIMITER_MAX_KEYS];  /* key's cumulative request charges after this one */
    int64_t tok_mark[QT_LIMITER_MAX_KEYS];  /* same for tokens */
    uint64_t seq[QT_LIMITER_MAX_KEYS];      /* key's admission number of this one */
} qt_limiter_res;

/* What a provider said about its remaining quota (from x-ratelimit-* or
 * anthropic-ratelimit-* headers). -1 / 0 mean unknown. */
typedef struct {
    int64_t remaining_requests;   /* -1 unknown */
    int64_t remaining_tokens;     /* -1 unknown */
    uint64_t reset_requests_ms;   /* absolute, same clock as now_ms; 0 unknown */
    uint64_t reset_tokens_ms;     /* absolute; 0 unknown */
} qt_limit_feedback;

/* Dashboard view of one key. */
typedef struct {
    const char *name;             /* owned by the limiter, valid until free */
    double rpm, tpm;              /* effective limits now (0 = unlimited) */
    int max_concurrent;           /* effective (0 = unlimited) */
    double cfg_rpm, cfg_tpm;      /* as registered */
    int cfg_max_concurrent;
    int changed_live;             /* 1 after qt_limiter_set_limits until restore */
    uint64_t requests_60s;        /* requests admitted in the last 60 s (released ones removed) */
    uint64_t tokens_60s;          /* tokens charged in the last 60 s (reserved, then actual) */
    int in_flight;                /* reservations holding a slot */
    uint64_t held_until_ms;       /* 0 when not held; else hold / provider reset time */
    uint64_t wait_ms;             /* wait for a 1-request, 0-token admission now */
    int64_t remaining_requests;   /* provider's last word minus admissions since; -1 unknown */
    int64_t remaining_tokens;     /* same for tokens; -1 unknown */
} qt_limiter_stats;

/* Returns a new limiter with no keys, or NULL when out of memory or when
 * burst_ms is negative or not finite. burst_ms is the GCRA tolerance tau of
 * every key (see the guarantee above); QT_LIMITER_DEFAULT_BURST_MS paces
 * perfectly. The caller frees it with qt_limiter_free. */
qt_limiter *qt_limiter_new(double burst_ms);

/* Frees the limiter and every key. Accepts NULL. Outstanding reservations
 * become meaningless (they own no memory). */
void qt_limiter_free(qt_limiter *l);

/* Registers a key with its limits (already after headroom; 0 = unlimited).
 * Returns the key id (0, 1, 2, ... in order of registration), or -1 when name
 * is NULL or already registered, a limit is negative or not finite, or memory
 * runs out; on error the limiter is unaltered. The name is copied. */
int qt_limiter_add_key(qt_limiter *l, const char *name, double rpm, double tpm,
                       int max_concurrent);

/* Returns the id of the key called name, or -1. */
int qt_limiter_key_find(const qt_limiter *l, const char *name);

/* Number of registered keys. */
size_t qt_limiter_key_count(const qt_limiter *l);

/* Name of a key (owned by the limiter), or NULL for a bad id. */
const char *qt_limiter_key_name(const qt_limiter *l, int key);

/* Tries to admit one request of est_tokens tokens through every key of
 * keys[0..nkeys-1] at now_ms (nkeys in 1..QT_LIMITER_MAX_KEYS, no repeats).
 * - QT_OK: admitted; *res holds the reservation (one request, est_tokens,
 *   and a concurrency slot taken on every key at once). *earliest_ms = now_ms.
 * - QT_ERR_LIMIT: nothing is taken on any key. *earliest_ms is the exact
 *   earliest time at which the same call would succeed if nothing else
 *   changes (a call at *earliest_ms - 1 fails), the maximum over keys of
 *   pacing, holds and provider resets; QT_LIMITER_NEVER when a key is at its
 *   concurrency limit (retry after a commit or release).
 * - QT_ERR_INVALID: bad arguments (bad key id, repeat, negative tokens); *res
 *   is marked inactive.
 * A request larger than a key's token burst is admitted when that key is
 * fully caught up, and pushes that key's later admissions back.
 * earliest_ms may be NULL. */
qt_err qt_limiter_reserve(qt_limiter *l, const int *keys, size_t nkeys,
                          int64_t est_tokens, uint64_t now_ms,
                          qt_limiter_res *res, uint64_t *earliest_ms);

/* The request was sent and used actual_tokens (from the response; pass the
 * estimate when unknown). Reconciles every key of the reservation: a smaller
 * actual refunds the difference (later admissions may come sooner, as far
 * as the pacing guarantee allows: tokens whose time has passed are not given
 * back), a larger one charges the difference (pushes later admissions back).
 * Releases the concurrency slots and marks *res inactive.
 * Returns QT_ERR_INVALID (and changes nothing) when *res is not active or
 * actual_tokens is negative. */
qt_err qt_limiter_commit(qt_limiter *l, qt_limiter_res *res,
                         int64_t actual_tokens, uint64_t now_ms);

/* The request never reached the provider: gives back its request, its tokens
 * (as commit with zero usage, and the request unit too) and its slots, and
 * marks *res inactive. Returns QT_ERR_INVALID when *res is not active. */
qt_err qt_limiter_release(qt_limiter *l, qt_limiter_res *res, uint64_t now_ms);

/* How long a reserve of this request would wait from now_ms: 0 when it would
 * be admitted now, QT_LIMITER_NEVER when blocked on concurrency or when the
 * arguments are invalid. No side effects. */
uint64_t qt_limiter_wait_ms(const qt_limiter *l, const int *keys, size_t nkeys,
                            int64_t est_tokens, uint64_t now_ms);

/* Changes a key's limits live (the throttle keys). A negative value keeps
 * the current one; 0 means unlimited. The debt the key already carries is
 * rescaled to the new rate, so the very next admission is paced at the new
 * limit. Sets the changed-live flag. Returns QT_ERR_INVALID for a bad key or a
 * non-finite value (nothing changed). */
qt_err qt_limiter_set_limits(qt_limiter *l, int key, double rpm, double tpm,
                             int max_concurrent, uint64_t now_ms);

/* Back to the limits given to qt_limiter_add_key (debt rescaled as above),
 * clears the changed-live flag. QT_ERR_INVALID for a bad key. */
qt_err qt_limiter_restore(qt_limiter *l, int key, uint64_t now_ms);

/* Provider feedback from response headers at now_ms. When a remaining count
 * is known and its reset time is in the future, the key admits at most that
 * many more requests / tokens (by estimate) before the reset, so a remaining
 * of 0 holds the key until the reset. Newer feedback replaces older.
 * QT_ERR_INVALID for a bad key or NULL fb. */
qt_err qt_limiter_feedback(qt_limiter *l, int key, const qt_limit_feedback *fb,
                           uint64_t now_ms);

/* Holds a key until until_ms (a 429 with Retry-After): no request through it
 * is admitted before then. A hold only ever extends. QT_ERR_INVALID for a bad
 * key. */
qt_err qt_limiter_hold(qt_limiter *l, int key, uint64_t until_ms);

/* Fills *st for the dashboard. QT_ERR_INVALID for a bad key or NULL st. */
qt_err qt_limiter_key_stats(const qt_limiter *l, int key, uint64_t now_ms,
                            qt_limiter_stats *st);

/* ---- token estimator ------------------------------------------------------
 * Prompt tokens from characters: ceil(chars/4) for a model never seen, then a
 * per-model tokens-per-char ratio, an EWMA of observed prompt_tokens/chars
 * (each observation moves it 20% of the way), clamped to [0.05, 2.0], so the
 * estimate converges on the provider's tokenizer. Thread-safety: not thread-safe; the engine
 * serialises all calls. */
typedef struct qt_estimator qt_estimator;

/* Returns a new estimator or NULL when out of memory. */
qt_estimator *qt_estimator_new(void);

/* Frees it. Accepts NULL. */
void qt_estimator_free(qt_estimator *e);

/* Estimated prompt tokens for chars characters of model's prompt (model may
 * be NULL: the default ratio 0.25). Returns 0 for 0 chars. */
int64_t qt_estimator_estimate(const qt_estimator *e, const char *model, uint64_t chars);

/* Records that chars characters were billed as prompt_tokens by model.
 * Pairs with a zero are ignored (QT_OK). QT_ERR_NOMEM when a new model
 * cannot be stored (the estimator is unaltered), QT_ERR_INVALID for NULL. */
qt_err qt_estimator_observe(qt_estimator *e, const char *model, uint64_t chars,
                            int64_t prompt_tokens);

/* Current tokens-per-char ratio of a model (0.25 when never observed). */
double qt_estimator_ratio(const qt_estimator *e, const char *model);

#endif /* QT_LIMITER_H */
