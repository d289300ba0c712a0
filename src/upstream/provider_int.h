/* provider_int.h: helpers shared by the provider files (private to src/).
 *
 * provider.c holds the kind-independent parts (the ops lookup, error and
 * rate-limit header parsing, the OpenAI rendering of a result);
 * provider_openai.c and provider_anthropic.c the per-kind request building
 * and response parsing; provider_stream.c the SSE parser and the stream
 * translators. Thread-safety: as provider.h.
 */
#ifndef QT_PROVIDER_INT_H
#define QT_PROVIDER_INT_H

#include "quotatop/provider.h"

extern const qt_provider_ops qt_provider_openai_ops;
extern const qt_provider_ops qt_provider_anthropic_ops;

/* snprintf into err when err is not NULL and errlen > 0. */
void qt_prov_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses body as one JSON value with nothing but whitespace after it.
 * Returns the tree (caller deletes) or NULL with "upstream response is not
 * JSON at byte N" / "... is truncated (N bytes)" / "... is empty" in err. */
cJSON *qt_prov_parse_json(const char *body, size_t len, char *err, size_t errlen);

/* strdup that returns NULL for NULL. */
char *qt_prov_strdup(const char *s);

/* Copies at most dstlen-1 bytes of src into dst, NUL-terminated. */
void qt_prov_copy(char *dst, size_t dstlen, const char *src);

/* Anthropic stop_reason -> OpenAI finish_reason (static strings, or s). */
const char *qt_prov_finish_from_anthropic(const char *s);

/* Fills *out from an OpenAI chat.completion tree: choices[0]'s content,
 * finish reason and tool calls, every choice when there are several, usage
 * with its cached and reasoning details; openai_json gets raw (raw_len
 * bytes, the body exactly as received) when raw is not NULL, else root
 * printed. QT_ERR_INVALID naming the missing field, QT_ERR_NOMEM; *out is
 * zeroed on error. */
qt_err qt_prov_result_from_openai(const cJSON *root, const char *raw, size_t raw_len,
                                  qt_provider_result *out, char *err, size_t errlen);

/* Kind-independent parse_error and parse_limit_headers (both tolerate both
 * API families). */
void qt_prov_parse_error(int status, const char *body, size_t len, qt_provider_error *out);
void qt_prov_parse_limit_headers(const qt_http_header *headers, size_t n,
                                 int64_t now_wall_ms, qt_provider_limits *out);

/* Appends the header line "name: value" to r. QT_ERR_NOMEM, or QT_ERR_LIMIT
 * when r already holds QT_PROVIDER_MAX_HEADERS lines. */
qt_err qt_prov_add_header(qt_provider_request *r, const char *name, const char *value);

/* Checks what both kinds need of a job: an object with a non-empty
 * "messages" array, and a key (when given) without control characters (it
 * goes into a header line). QT_ERR_INVALID with a message that never
 * includes the key. */
qt_err qt_prov_check_job(const cJSON *job, const char *api_key, char *err, size_t errlen);

/* The largest token count (or max_tokens) believed: 2^31. Above it, a
 * count is absurd (1e15 tokens would bill billions), not a measurement. */
#define QT_PROV_MAX_COUNT 2147483648.0

/* A count field as long: false when absent, not a number, not finite,
 * negative or above QT_PROV_MAX_COUNT (*out unaltered). */
bool qt_prov_get_count(const cJSON *obj, const char *key, long *out);

/* The usage field key of a 2xx answer through qt_prov_get_count; false with
 * "usage.KEY missing" or "malformed usage: usage.KEY is 1e+300 (...)" in
 * err. The one bounds check every usage figure passes (issue 12). */
bool qt_prov_usage_count(const cJSON *usage, const char *key, long *out, char *err, size_t errlen);

/* True when a 2xx body is an error object (OpenAI "error", Anthropic type
 * "error"); err then quotes the upstream's type and message. */
bool qt_prov_error_in_2xx(const cJSON *root, char *err, size_t errlen);

/* A string field, or NULL. */
const char *qt_prov_get_str(const cJSON *obj, const char *key);

/* A growing NUL-terminated string (request translation, stream assembly).
 * Start zeroed; free(b.s) when done. */
typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

/* Appends n bytes of s (n may be 0). false when out of memory (b unchanged). */
bool sb_add(sbuf *b, const char *s, size_t n);
/* Appends a C string. */
bool sb_adds(sbuf *b, const char *s);
/* Replaces the contents with n bytes of s. */
bool sb_set(sbuf *b, const char *s, size_t n);
/* The contents, "" when nothing was ever added. */
const char *sb_str(const sbuf *b);

/* The endpoint a job body names ("endpoint"; chat when absent). */
qt_endpoint qt_prov_endpoint(const cJSON *job);

/* A Responses answer (object "response") / an embeddings answer (object
 * "list") read into *out, as qt_prov_result_from_openai reads a chat
 * completion: openai_json gets raw (raw_len bytes) or, when raw is NULL, root
 * printed. QT_ERR_INVALID with the missing field in err. */
qt_err qt_prov_result_from_responses(const cJSON *root, const char *raw, size_t raw_len,
                                     qt_provider_result *out, char *err, size_t errlen);
qt_err qt_prov_result_from_embeddings(const cJSON *root, const char *raw, size_t raw_len,
                                      qt_provider_result *out, char *err, size_t errlen);

#endif /* QT_PROVIDER_INT_H */
