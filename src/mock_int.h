/* mock_int.h: private to src/mock*.c. The pieces of the simulated provider:
 *
 *   mock.c        the server: lifecycle, routing, the request pipeline
 *   mock_model.c  the model table: buckets, outage windows, counters, stats
 *   mock_body.c   request parsing and every body the mock answers with
 *   mock_spec.c   model spec parsing, PRNG, Go-style durations, RFC 3339
 *
 * The model table is guarded by qt_mock.lock (taken in mock.c); the
 * functions of mock_model.c expect the caller to hold it.
 */
#ifndef QT_MOCK_INT_H
#define QT_MOCK_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quotatop/mock.h"

#define MOCK_MAX_MODELS 256          /* declared + created on first use */
#define MOCK_RING_MAX   65536        /* timestamps kept for max_1s */

/* A token bucket of capacity max(1, L/60) refilled at L/60 per second. The
 * level may go negative (debt) after an oversize request. */
typedef struct {
    double   level;     /* available units now (cap when full) */
    uint64_t last_ms;   /* when level was last brought up to date */
} mock_bucket;

typedef struct {
    uint64_t requests, ok, rate_limited, rl_requests, rl_tokens;
    uint64_t s4xx, s5xx, prompt_tokens, completion_tokens;
    uint64_t in_flight, max_in_flight, max_1s;
    uint64_t *ring;     /* arrival times (ms) of the last second, oldest first */
    size_t   rcap, rhead, rlen;
} mock_counts;

typedef struct {
    qt_mock_model_opts o;
    uint64_t out_from, out_to;   /* runtime outage window, absolute ms; none when to <= from */
    mock_bucket req, tok;
    mock_counts c;
} mock_model;

/* The table of models of one mock. */
typedef struct {
    mock_model **v;      /* models never move or go away before the table */
    size_t n, cap;
    mock_counts total;
    uint64_t out_from, out_to;   /* outage of every model (set_outage NULL) */
} mock_table;

/* ---- mock_model.c (caller holds the mock's lock) ---- */
void mock_table_free(mock_table *t);
/* Returns the model named name, creating it from *defaults when create is
 * true; NULL when absent (create false), the table is full or out of memory. */
mock_model *mock_table_get(mock_table *t, const char *name, bool create,
                           const qt_mock_model_opts *defaults, uint64_t now_ms);
bool mock_in_outage(const mock_table *t, const mock_model *md, uint64_t start_ms,
                    uint64_t now_ms);
void mock_counts_arrive(mock_counts *c, uint64_t now_ms);
void mock_counts_reset(mock_counts *c);

/* Bucket arithmetic. limit 0 = unlimited (always admits). */
double mock_bucket_cap(uint64_t limit);
void mock_bucket_refill(mock_bucket *b, uint64_t limit, uint64_t now_ms);
/* After refill: true when cost fits; else *wait_ms = ms until it would. */
bool mock_bucket_fits(const mock_bucket *b, uint64_t limit, uint64_t cost, uint64_t *wait_ms);
/* What the headers report: remaining of the per-minute quota, ms to full. */
uint64_t mock_bucket_remaining(const mock_bucket *b, uint64_t limit);
uint64_t mock_bucket_reset_ms(const mock_bucket *b, uint64_t limit);

/* ---- mock_spec.c ---- */
uint64_t mock_rand(uint64_t *state);          /* splitmix64 */
double mock_rand01(uint64_t *state);          /* [0, 1) */
/* Go time.Duration.String() of a millisecond count: 0s, 12ms, 1.5s, 6m0s. */
void mock_go_duration(uint64_t ms, char *buf, size_t len);
/* RFC 3339 UTC timestamp of wall-clock ms: 2024-05-01T12:00:03Z. */
void mock_rfc3339(uint64_t wall_ms, char *buf, size_t len);

/* ---- mock_body.c ---- */
typedef struct {
    char     model[QT_MOCK_NAME_MAX];
    bool     has_model;
    bool     has_max_tokens;
    uint64_t max_tokens;
    uint64_t prompt_tokens;   /* ceil(bytes of all text / 4), at least 1 */
    bool     stream, include_usage;
    const char *error;        /* static: why the body is unusable, or NULL */
} mock_req;

/* Parses a chat/completions (anthropic false) or messages body. Always fills
 * *r; r->error is set when the request must be answered with 400. */
void mock_parse_request(const char *body, size_t len, bool anthropic, mock_req *r);

/* Error bodies, malloc'd NUL-terminated JSON (NULL when out of memory). */
char *mock_openai_error(const char *message, const char *type, const char *param,
                        const char *code);
char *mock_anthropic_error(const char *type, const char *message);

/* The answer of an admitted request. */
typedef struct {
    const char *model;
    uint64_t prompt_tokens, completion_tokens;
    bool     truncated;      /* completion hit max_tokens */
    uint64_t seq;            /* makes ids unique */
    uint64_t created_s;
} mock_answer;

uint64_t mock_completion_tokens(const qt_mock_model_opts *o, uint64_t prompt,
                                uint64_t max_tokens, bool *truncated);
char *mock_openai_body(const mock_answer *a);
char *mock_anthropic_body(const mock_answer *a);
/* SSE streams as a list of events (each a complete "data: ...\n\n" or
 * "event: ...\ndata: ...\n\n" string); *n receives the count. NULL when out
 * of memory. Free with mock_events_free. */
char **mock_openai_stream(const mock_answer *a, bool include_usage, size_t *n);
char **mock_anthropic_stream(const mock_answer *a, size_t *n);
void mock_events_free(char **ev, size_t n);

#endif /* QT_MOCK_INT_H */
