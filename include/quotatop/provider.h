/* provider.h: request building and response parsing per upstream API kind.
 *
 * DESIGN. Each kind (openai, anthropic) sits behind a table of functions,
 * qt_provider_ops, as nvtop puts each GPU vendor behind `struct gpu_vendor`.
 * Everything here is pure: no I/O, no locks, no clock (the caller passes the
 * time when one is needed). The engine reads the API key from the
 * environment, asks the ops for a request (path, header lines, JSON body),
 * sends it with http.h, and hands the answer back to the ops: a 2xx body to
 * parse_response, any other to parse_error, and the headers of either to
 * parse_limit_headers.
 *
 * The API key appears only in the header lines of a qt_provider_request.
 * It is never copied into an error message, a body or a result.
 *
 * What goes upstream (a job is the JSON object of DESIGN.md "Job"):
 *
 *   openai: the job object with quotatop's own fields removed and `model`
 *   replaced by the model's upstream_model; every other field passes through
 *   unchanged, in the job's order. Removed: `id`, `workflow`, `priority`,
 *   `stream`, `stream_options` (set by the stream flag instead: with it the
 *   body ends with "stream":true,"stream_options":{"include_usage":true}),
 *   and any key starting with "quotatop_" (reserved for the scheduler).
 *
 *   anthropic: a translation of the job (translate.h lists what crosses
 *   and how: system, text and image parts, tools and tool_choice, tool
 *   calls and tool results, stop, sampling, max tokens). What cannot cross
 *   (n > 1, logprobs, a json_schema response_format, audio and file parts,
 *   non-function tools) makes build_request fail with QT_ERR_INVALID naming
 *   the field; qt_provider_can_carry says so beforehand, cheaply, and the
 *   router skips such a model instead of sending.
 *
 * Answers: an openai-kind 2xx body is parsed once and kept as it came
 * (qt_provider_result.openai_json: every choice, tool call, logprob and
 * usage field, unknown fields too, and `model` as the upstream named it).
 * An anthropic-kind one is translated into an OpenAI chat.completion and read
 * the same way. Results use OpenAI's vocabulary: finish_reason "stop",
 * "length", "tool_calls", "content_filter" (Anthropic end_turn and
 * stop_sequence -> stop, max_tokens -> length, tool_use -> tool_calls,
 * refusal -> content_filter). Anthropic prompt_tokens = input_tokens +
 * cache_creation_input_tokens + cache_read_input_tokens (the cache parts in
 * cache_write_tokens / cached_tokens).
 *
 * Thread-safety: every function is safe from any thread; the objects
 * (qt_sse, qt_provider_stream) belong to one thread at a time.
 */
#ifndef QT_PROVIDER_H
#define QT_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "quotatop/common.h"
#include "quotatop/config.h"
#include "quotatop/http.h"
#include "quotatop/jobs.h"

#define QT_PROVIDER_MAX_HEADERS 4
#define QT_PROVIDER_ERRLEN      256   /* a good size for the err buffers below */

/* What to send. Built by ops->build_request, freed by
 * qt_provider_request_free. */
typedef struct {
    const char *path;                          /* static: "/chat/completions" or "/messages";
                                                * the URL is base_url + path */
    char *headers[QT_PROVIDER_MAX_HEADERS];    /* "Name: value" lines, heap; the auth
                                                * line (with the key) comes first when a
                                                * key was given; hand them to qt_http_post
                                                * as (const char *const *)headers */
    size_t n_headers;
    char *body;                                /* JSON text, heap, NUL-terminated */
    size_t body_len;
} qt_provider_request;

/* A parsed 2xx answer. Strings are heap and never NULL after success. */
typedef struct {
    char *id;                 /* upstream id ("chatcmpl-...", "msg_..."), "" if absent */
    char *model;              /* model named by upstream, "" if absent */
    char *content;            /* the answer text (choices[0]) */
    char *finish_reason;      /* OpenAI vocabulary (see above), "" if absent */
    long prompt_tokens;       /* all input tokens, cached ones included */
    long completion_tokens;   /* reasoning tokens included (billed as output) */
    long cached_tokens;       /* of prompt_tokens: read from the prompt cache (OpenAI
                               * prompt_tokens_details.cached_tokens, Anthropic
                               * cache_read_input_tokens); 0 none */
    long cache_write_tokens;  /* of prompt_tokens: written to it (Anthropic
                               * cache_creation_input_tokens); 0 none */
    long reasoning_tokens;    /* of completion_tokens (completion_tokens_details) */
    char *tool_calls;         /* choices[0].message.tool_calls as JSON text (OpenAI
                               * shape), NULL when none */
    char *choices;            /* every choice as a JSON array text when there is more
                               * than one (n > 1), else NULL */
    char *openai_json;        /* the whole answer as an OpenAI chat.completion: an
                               * openai-kind body exactly as the upstream sent it, an
                               * anthropic-kind one translated; NULL for streams.
                               * For a responses or embeddings job: that answer's
                               * own body, as the upstream sent it */
    char *embeddings;         /* an embeddings answer: its vectors as a JSON array
                               * text (one array per input, in order), else NULL */
    char *native_json;        /* an anthropic-kind body exactly as the upstream
                               * sent it (a messages job gets it), else NULL */
} qt_provider_result;

/* A parsed non-2xx answer (a value struct; nothing to free). */
typedef struct {
    int status;               /* the HTTP status given to parse_error */
    char type[64];            /* "rate_limit_exceeded"/"overloaded_error"..., "" if absent */
    char code[64];            /* OpenAI's code ("insufficient_quota", ...), "" if absent */
    char message[256];        /* upstream message, else the first printable
                               * characters of the body, else "" */
} qt_provider_error;

/* One rate-limit window announced by the upstream. -1 = not announced. */
typedef struct {
    int64_t limit;
    int64_t remaining;
    int64_t reset_ms;         /* ms from now_wall_ms until the window resets (>= 0) */
} qt_limit_window;

typedef struct {
    qt_limit_window requests;
    qt_limit_window tokens;          /* x-ratelimit-*-tokens, anthropic-ratelimit-tokens-* */
    qt_limit_window input_tokens;    /* anthropic-ratelimit-input-tokens-* */
    qt_limit_window output_tokens;   /* anthropic-ratelimit-output-tokens-* */
    int64_t retry_after_ms;          /* retry-after-ms, else retry-after; -1 if neither */
} qt_provider_limits;

typedef struct {
    const char *name;   /* "openai", "anthropic" */

    /* Builds the request for one job. model gives upstream_model (NULL ->
     * model->name) and default_max_tokens. api_key may be NULL (no auth
     * line: the mock needs none). stream asks for a streamed answer.
     * Returns QT_OK and fills *out (caller frees with
     * qt_provider_request_free); on error returns QT_ERR_INVALID (job not an
     * object, no messages, untranslatable message) or QT_ERR_NOMEM, writes a
     * message (without the key) to err when err is not NULL, and leaves *out
     * zeroed. */
    qt_err (*build_request)(const cJSON *job, const qt_model_cfg *model,
                            const char *api_key, bool stream,
                            qt_provider_request *out, char *err, size_t errlen);

    /* Parses a 2xx body (len bytes, need not be NUL-terminated). Returns
     * QT_OK and fills *out (caller frees with qt_provider_result_free); on a
     * body that is not JSON, truncated, or misses a field, returns
     * QT_ERR_INVALID with a message such as "upstream response is not JSON at
     * byte 17" or "usage.prompt_tokens missing" in err, and *out zeroed. */
    qt_err (*parse_response)(const char *body, size_t len,
                             qt_provider_result *out, char *err, size_t errlen);

    /* Parses a non-2xx body. Never fails: garbage bodies give a message made
     * of their first printable characters. body may be NULL when len is 0. */
    void (*parse_error)(int status, const char *body, size_t len, qt_provider_error *out);

    /* Reads the rate-limit headers of a response (names case-insensitive;
     * both the x-ratelimit-* and anthropic-ratelimit-* families, whatever the
     * kind). now_wall_ms (epoch ms) turns absolute resets and HTTP-dates into
     * delays. Unknown or malformed values stay -1. */
    void (*parse_limit_headers)(const qt_http_header *headers, size_t n,
                                int64_t now_wall_ms, qt_provider_limits *out);
} qt_provider_ops;

/* Returns the table of a kind, or NULL for an unknown kind. The table is
 * static; never free it. */
const qt_provider_ops *qt_provider_ops_for(qt_provider_kind kind);

/* True when a job can be sent to an upstream of this kind without losing
 * what it asks for (openai: always; anthropic: see
 * qt_tr_openai_carries_to_anthropic in translate.h); else false with the
 * reason, naming the field, in why. Cheap (no copies). */
bool qt_provider_can_carry(qt_provider_kind kind, const cJSON *job, char *why, size_t whylen);

/* The answer for the client of a job of endpoint ep, as a new JSON text
 * (caller frees): for messages an Anthropic message (the upstream's own when
 * it was anthropic-kind, else translated), for the others the upstream's
 * body (openai_json). NULL when r holds no answer or out of memory. */
char *qt_provider_answer_json(qt_endpoint ep, const qt_provider_result *r);

/* Frees what r holds (wiping the header lines first, since one carries the
 * key) and zeroes it. Accepts NULL and a zeroed struct. */
void qt_provider_request_free(qt_provider_request *r);

/* Frees what r holds and zeroes it. Accepts NULL and a zeroed struct. */
void qt_provider_result_free(qt_provider_result *r);

/* Renders a result as an OpenAI chat.completion object (what the proxy
 * answers, whichever kind served). model is the name to report (NULL ->
 * r->model); created_s is the "created" epoch seconds. Returns heap JSON text
 * the caller frees with free(), or NULL when out of memory. */
char *qt_provider_to_openai_json(const qt_provider_result *r, const char *model,
                                 int64_t created_s);

/* ---- Streaming ---------------------------------------------------------- */

/* One server-sent event. Pointers are valid during the callback only. */
typedef struct {
    const char *event;   /* the "event:" field, "" when none (= "message") */
    const char *data;    /* the "data:" lines joined by "\n", NUL-terminated */
    size_t data_len;
    const char *id;      /* the last "id:" field seen, "" when none */
} qt_sse_event;

/* Receives one event. Returns 0 to continue, nonzero to stop feeding. */
typedef int (*qt_sse_on_event)(void *ud, const qt_sse_event *ev);

/* An incremental text/event-stream parser: feed it bytes cut anywhere
 * (even inside a CRLF) and it calls back once per complete event. */
typedef struct qt_sse qt_sse;

/* Returns a new parser, or NULL when out of memory. */
qt_sse *qt_sse_new(void);
void qt_sse_free(qt_sse *p);   /* accepts NULL */

/* Parses n more bytes, calling on_event for each event completed by them.
 * Returns QT_OK; QT_ERR_CLOSED when on_event asked to stop (the rest of buf is
 * dropped); QT_ERR_LIMIT when one event grows past 4 MiB; QT_ERR_NOMEM. */
qt_err qt_sse_feed(qt_sse *p, const char *buf, size_t n, qt_sse_on_event on_event, void *ud);

/* Receives one OpenAI chat.completion.chunk as JSON text (no "data: " and
 * no newline). Returns 0 to continue, nonzero to stop. */
typedef int (*qt_provider_on_chunk)(void *ud, const char *json, size_t len);

/* Translates an upstream stream (raw response bytes) into OpenAI
 * chat.completion.chunk objects and collects the content and usage.
 * openai: chunks pass through byte for byte (re-printed only when the model
 * is renamed); the usage chunk (choices: []) requested by build_request is
 * passed on too. anthropic: translated by translate_stream.c (message_start
 * -> delta.role; text deltas -> delta.content; tool_use blocks and their
 * input_json_delta -> delta.tool_calls with arguments pieces; message_delta
 * -> finish_reason; message_stop -> a final chunk with choices [] and usage,
 * cache tokens included). Every chunk is folded into the whole answer for
 * qt_provider_stream_result (tool calls, every choice, usage). */
typedef struct qt_provider_stream qt_provider_stream;

/* model: the name to put in chunks (NULL -> upstream's); created_s: their
 * "created". Returns NULL for an unknown kind or when out of memory. */
qt_provider_stream *qt_provider_stream_new(qt_provider_kind kind, const char *model,
                                           int64_t created_s);
void qt_provider_stream_free(qt_provider_stream *s);   /* accepts NULL */

/* Feeds n raw bytes of the upstream body. Returns QT_OK; QT_ERR_CLOSED when
 * on_chunk asked to stop; QT_ERR_IO when the upstream sent an error event
 * (see qt_provider_stream_error); QT_ERR_INVALID when an event's data is not
 * JSON; QT_ERR_LIMIT / QT_ERR_NOMEM from the SSE parser. */
qt_err qt_provider_stream_feed(qt_provider_stream *s, const char *buf, size_t n,
                               qt_provider_on_chunk on_chunk, void *ud);

/* True once the upstream signalled the end ("data: [DONE]", message_stop). */
bool qt_provider_stream_done(const qt_provider_stream *s);

/* The error event the upstream sent, or NULL. Owned by s. */
const qt_provider_error *qt_provider_stream_error(const qt_provider_stream *s);

/* Fills *out with what was collected (content, tool calls, choices, tokens
 * with their cache and reasoning parts, finish reason, id, model;
 * openai_json stays NULL). Returns QT_OK; QT_ERR_INVALID with a message in err when the
 * stream ended without usage ("stream ended without usage") - *out is then
 * still filled, with the token counts it has (-1 unknown); QT_ERR_NOMEM.
 * Caller frees *out with qt_provider_result_free. */
qt_err qt_provider_stream_result(const qt_provider_stream *s, qt_provider_result *out,
                                 char *err, size_t errlen);

#endif /* QT_PROVIDER_H */
