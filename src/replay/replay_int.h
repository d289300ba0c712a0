/* replay_int.h: the pieces of `quotatop replay` shared inside src/replay
 * (not a public header).
 *
 * replay_wire.c: what crosses the simulated wire. rp_job_body turns a
 * recorded request into a job object the engine takes like any other, of
 * its recorded endpoint (chat, messages, responses or embeddings; its
 * messages or input hold exactly the recorded number of characters, with a
 * "#r<N> " marker naming the recording's index first); rp_parse_request reads back
 * from a provider-built body what the simulated provider needs (upstream
 * model, max_tokens, the marker); rp_build_response turns a qt_sim_answer
 * into the HTTP response the provider kind really sends (status, the rate
 * limit headers, Retry-After, an OpenAI or Anthropic body), so the engine's
 * own parsing and classification run on it.
 *
 * Thread-safety: pure functions; any thread.
 */
#ifndef QT_REPLAY_INT_H
#define QT_REPLAY_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "quotatop/config.h"
#include "quotatop/http.h"
#include "quotatop/replay.h"

/* The job object of recorded request idx (caller owns it; cJSON_Delete),
 * NULL when out of memory. */
cJSON *rp_job_body(const qt_trace_data *d, size_t idx);

typedef struct {
    char model[128];             /* upstream model, "" when not found */
    int64_t max_tokens;          /* 0 when absent */
    long job;                    /* the marker's index, -1 none */
    size_t chars;                /* body length, a size for unknown requests */
    int stream;                  /* the body asks for a stream ("stream":true) */
} rp_req_info;

/* Reads a request body built by a provider's build_request. 0 on success,
 * -1 when it names no model. */
int rp_parse_request(const char *body, size_t len, rp_req_info *out);

/* Fills *resp (zeroed first; free with qt_http_response_free) with the
 * answer of kind for a: status 200 with a body and usage, 429 with
 * retry-after, a recorded 5xx, or a transport error (status 0 ->
 * QT_HTTP_OTHER). wall_ms dates Anthropic's reset headers. QT_OK or
 * QT_ERR_NOMEM. */
qt_err rp_build_response(qt_provider_kind kind, const char *model, const qt_sim_answer *a,
                         uint64_t wall_ms, uint64_t seq, qt_http_response *resp);

/* Turns a 2xx response built by rp_build_response into the stream the kind
 * sends for the same answer (SSE events with the same usage; content-type
 * text/event-stream); other responses are left as they are. QT_OK or
 * QT_ERR_NOMEM. */
qt_err rp_make_stream(qt_http_response *resp, qt_provider_kind kind, const char *model, const qt_sim_answer *a,
                      uint64_t seq);

#endif
