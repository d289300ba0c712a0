/* proxy_int.h: helpers shared by proxy.c (the HTTP front), proxy_json.c
 * (OpenAI shapes, addresses) and proxy_metrics.c (Prometheus text). Private
 * to src/. */
#ifndef QT_PROXY_INT_H
#define QT_PROXY_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "quotatop/proxy.h"

/* A growable byte buffer. Functions return 0, or -1 when out of memory
 * (the buffer is then unchanged). */
typedef struct {
    char *s;
    size_t len, cap;
} px_buf;

int px_buf_add(px_buf *b, const void *data, size_t n);
int px_buf_addf(px_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int px_buf_adds(px_buf *b, const char *s);
void px_buf_free(px_buf *b);

/* {"error":{"message":..,"type":..,"param":..,"code":..}} (OpenAI's error
 * shape). param and code may be NULL (JSON null). Heap text or NULL. */
char *px_error_json(const char *message, const char *type, const char *param, const char *code);

/* GET /v1/models (cfg's models) and GET /v1/models/{id} (NULL when unknown). */
char *px_models_json(const qt_config *cfg, int64_t created_s);
char *px_model_json(const qt_config *cfg, const char *name, int64_t created_s);

/* A chat.completion object for an answer known only by its text (a
 * response-cache hit). */
char *px_completion_json(const char *id, const char *model, int64_t created_s, const char *content,
                         long prompt_tokens, long completion_tokens);

/* Appends the SSE events of an answer known only by its text: a role chunk,
 * a content chunk, a finish chunk and, when with_usage, a usage chunk. */
int px_sse_from_content(px_buf *out, const char *id, const char *model, int64_t created_s,
                        const char *content, long prompt_tokens, long completion_tokens,
                        int with_usage);

/* True when an OpenAI chunk carries only usage (an empty "choices" array):
 * the chunk quotatop asked the upstream for, forwarded only when the client
 * asked for stream_options.include_usage. */
int px_chunk_is_usage_only(const char *json, size_t len);

/* The upstream HTTP status named in an engine failure reason
 * ("MODEL via PROVIDER: 400 type: message"), 0 when none. */
int px_upstream_status_of(const char *error);

/* Resolves HOST:PORT ("[::1]:8787" for IPv6; "localhost" resolves) into ss.
 * Returns 0, or -1 with a reason in err. *loopback says whether the
 * address is a loopback one (127/8, ::1). */
int px_resolve_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen,
                      int *loopback, char *err, size_t errlen);

#endif
