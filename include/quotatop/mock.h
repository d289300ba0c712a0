/* mock.h: the simulated provider (`quotatop mock`, the demo, every integration
 * test).
 *
 * A qt_mock is a real HTTP server (libmicrohttpd, one thread per connection)
 * that answers like a provider:
 *   POST /v1/chat/completions   OpenAI shapes, x-ratelimit-* headers
 *   POST /v1/messages           Anthropic shapes, anthropic-ratelimit-* headers
 *   GET  /v1/models             the declared models (OpenAI list shape)
 *   GET  /stats                 what it saw, as JSON; POST /stats/reset or
 *                               DELETE /stats zeroes it
 *   GET  /healthz               200 "ok"
 *   POST /control/outage        {"model":M|null,"start_ms":S,"duration_ms":D}
 *   POST /control/model         body: a model spec (qt_mock_parse_model)
 * Both endpoints always work; `kind` only picks the shape of answers that
 * belong to neither (404, 405 on other paths).
 *
 * Agents' shapes: given tools (and a tool_choice other than none), the
 * answer is a call of the named tool or else the first one, with arguments
 * made from its parameter schema (finish_reason tool_calls / stop_reason
 * tool_use; streamed as tool-call argument deltas / input_json_delta). A
 * request whose last message is a tool result is answered with text quoting
 * that result, so agent loops end. A tool result whose id matches no earlier
 * tool call is refused with 400, as the real APIs do. OpenAI `n` gives n
 * choices. Prompt caching: a request repeating a prefix of >= 1024 tokens
 * the model saw before reports it cached (steps of 128; Anthropic shape only
 * with cache_control, the rest then a cache write), besides the model's
 * cache / cache_write ratios.
 *
 * Each model has its own limits and faults (qt_mock_model_opts); a model not
 * declared gets opts->defaults on first use. Per-minute limits are enforced
 * the way providers do, over short sub-windows too: each limit L is a token
 * bucket of capacity max(1, L/60) refilled continuously at L/60 per second,
 * so 1200 RPM admits about 20 requests in any second and any 60 s admits at
 * most L + L/60. A request costs 1 request and prompt + max_tokens tokens;
 * a request larger than the bucket is admitted only when the bucket is full
 * (it then runs into debt). Nothing is refunded after the response.
 * Responses about a known model carry the limit headers of its kind; a limit
 * of 0 (unlimited) sends none of its headers, and a request whose model is
 * unknown (malformed body) carries none. 429s add retry-after (seconds,
 * rounded up) and retry-after-ms.
 *
 * In-process use (the demo, tests):
 *     qt_mock_opts o;
 *     qt_mock_opts_init(&o);
 *     o.kind = QT_MOCK_ANTHROPIC;
 *     o.defaults.rpm = 50;
 *     char err[256];
 *     qt_mock *m = qt_mock_start(&o, err, sizeof err);   // listens on 127.0.0.1:<any>
 *     ... base_url = "http://127.0.0.1:<qt_mock_port(m)>/v1" ...
 *     qt_mock_set_outage(m, NULL, 10000, 5000);   // 5 s outage, 10 s from now
 *     qt_mock_stop(m);
 *
 * Thread-safety: every function may be called from any thread, on
 * different mocks or on the same one (one mutex per mock guards its model
 * table); there is no global mutable state, so several mocks can run in one
 * process. qt_mock_stop must be called once, by one thread, last.
 */
#ifndef QT_MOCK_H
#define QT_MOCK_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"

typedef struct qt_mock qt_mock;

#define QT_MOCK_NAME_MAX 128   /* longest model name, with the NUL */

typedef enum {
    QT_MOCK_OPENAI = 0,
    QT_MOCK_ANTHROPIC = 1,
} qt_mock_kind;

typedef enum {
    QT_MOCK_JITTER_UNIFORM = 0,   /* latency + uniform [0, jitter] */
    QT_MOCK_JITTER_EXP = 1,       /* latency + exponential, mean jitter (capped at 10x) */
} qt_mock_jitter;

/* One model's behaviour. 0 means "none / unlimited" everywhere. */
typedef struct {
    char     name[QT_MOCK_NAME_MAX]; /* "" in qt_mock_opts.defaults */
    uint64_t rpm;               /* requests per minute */
    uint64_t tpm;               /* tokens per minute (prompt + max_tokens) */
    double   fail_rate;         /* 0..1: chance of an injected 500/503 (529) */
    uint32_t latency_ms;        /* base latency of admitted requests */
    uint32_t jitter_ms;         /* random extra latency, see jitter_dist */
    qt_mock_jitter jitter_dist;
    uint64_t outage_start_ms;   /* outage window in ms after qt_mock_start; */
    uint64_t outage_end_ms;     /*   none when end <= start */
    uint64_t context_window;    /* prompt + max_tokens above it -> 400 */
    uint64_t completion_tokens; /* completion length wanted (capped by
                                   max_tokens); 0 = 12 + prompt % 32 */
    double   cache_ratio;       /* 0..1: share of the prompt reported as read from
                                   the prompt cache (OpenAI cached_tokens,
                                   Anthropic cache_read_input_tokens) */
    double   cache_write_ratio; /* 0..1: share reported as written to it
                                   (Anthropic cache_creation_input_tokens) */
} qt_mock_model_opts;

typedef struct {
    const char *listen;           /* "HOST:PORT" (port 0 = any); NULL = "127.0.0.1:0" */
    qt_mock_kind kind;            /* shape of 404/405 answers on other paths */
    qt_mock_model_opts defaults;  /* behaviour of models not declared */
    const qt_mock_model_opts *models; /* declared models (copied) */
    size_t   nmodels;
    int      only_declared;       /* undeclared model -> 404 model_not_found */
    const char *require_key;      /* NULL or "" = none; copied, never printed */
    uint64_t seed;                /* PRNG seed of faults and jitter */
    uint32_t stream_chunk_ms;     /* pause between SSE events of a stream */
    int      verbose;             /* one stderr line per request */
} qt_mock_opts;

/* Fills *o with the defaults: 127.0.0.1:0, openai, everything unlimited,
 * no faults, seed 0x5eed. */
void qt_mock_opts_init(qt_mock_opts *o);

/* Parses a model spec "NAME[:key=value[,key=value...]]" into *out, starting
 * from *defaults (the name is cleared first). Keys: rpm, tpm, fail (0..1),
 * latency (ms), jitter (ms), dist (uniform|exp), outage (START-END, seconds
 * after start, decimals allowed), context (tokens), completion (tokens),
 * cache and cache_write (0..1, shares of the prompt reported as cached).
 * The name ends at the last ':' before the first '=' so names such as
 * "llama3:8b" work. Returns QT_OK, or QT_ERR_INVALID with a message in err
 * (*out then unspecified). */
qt_err qt_mock_parse_model(const char *spec, const qt_mock_model_opts *defaults,
                           qt_mock_model_opts *out, char *err, size_t errlen);

/* Binds opts->listen and starts serving. Returns the running mock, which the
 * caller stops with qt_mock_stop, or NULL with a message in err (bad listen
 * address, port in use, out of memory). opts and everything it points to are
 * copied; the caller may free them afterwards. */
qt_mock *qt_mock_start(const qt_mock_opts *opts, char *err, size_t errlen);

/* Returns the TCP port the mock listens on (the real one when 0 was asked). */
int qt_mock_port(const qt_mock *m);

/* Adds a model, or replaces the behaviour of an existing one (its buckets
 * and counters are kept; its outage window is taken as relative to the
 * mock's start, as in opts). Returns QT_OK, QT_ERR_INVALID (empty name) or
 * QT_ERR_NOMEM. */
qt_err qt_mock_set_model(qt_mock *m, const qt_mock_model_opts *mo);

/* Schedules an outage relative to now: from now + start_in_ms for
 * duration_ms, every request to `model` (NULL = every model) gets 503
 * (OpenAI shape) or 529 overloaded_error (Anthropic shape). A later call
 * replaces the earlier window; duration_ms 0 cancels it. Returns QT_OK,
 * QT_ERR_NOMEM, or QT_ERR_LIMIT when the model table is full. */
qt_err qt_mock_set_outage(qt_mock *m, const char *model, uint64_t start_in_ms,
                          uint64_t duration_ms);

/* Returns what GET /stats returns, as a NUL-terminated JSON string the caller
 * frees with free(), or NULL when out of memory:
 * {"kind":..,"uptime_ms":..,"models":{NAME:{COUNTS}},"total":{COUNTS}} with
 * COUNTS = requests, ok, rate_limited (429), rate_limited_requests,
 * rate_limited_tokens, status_4xx (other 4xx), status_5xx (incl. 529),
 * prompt_tokens and completion_tokens (of ok answers), max_1s (most
 * requests that arrived in any 1 s), in_flight, max_in_flight; models also
 * carry rpm, tpm and in_outage. Only the two chat endpoints are counted; a
 * request without a usable model counts in total only. requests = ok +
 * rate_limited + status_4xx + status_5xx. */
char *qt_mock_stats_json(qt_mock *m);

/* Zeroes every counter (not the buckets, not the outage windows). */
void qt_mock_stats_reset(qt_mock *m);

/* Stops serving (in-flight requests are cut short), joins every thread and
 * frees the mock. Accepts NULL. */
void qt_mock_stop(qt_mock *m);

#endif /* QT_MOCK_H */
