/* proxy.h: the OpenAI-compatible HTTP front of `quotatop serve`.
 *
 * Agents point their base URL at http://HOST:PORT/v1 and send
 * POST /v1/chat/completions as they would to OpenAI. Each request becomes a
 * job in the engine's queue (workflow from X-Quotatop-Workflow, priority from
 * X-Quotatop-Priority, else proxy.default_*), runs through router, budget and
 * limiter, and the client gets the upstream's answer in OpenAI's shape with
 * X-Quotatop-Model-Used, X-Quotatop-Attempts and X-Quotatop-Queued-Ms.
 * "stream": true answers are passed through as server-sent events chunk by
 * chunk. Also GET /v1/models, GET /v1/models/{id}, GET /healthz and
 * GET /metrics (Prometheus text).
 *
 * No thread per connection: libmicrohttpd runs on the engine's event loops
 * (one daemon per loop, external epoll), so a request is read, sent upstream
 * and answered on one thread. A request that waits for the engine (queued,
 * waiting for a limit, on the wire) has its connection suspended, and the
 * engine's loop that brings its result or a stream chunk resumes it; a guard
 * thread watches suspended sockets, so a client that hangs up while queued
 * is noticed at once and its job cancelled (nothing reaches the upstream,
 * nothing stays reserved). Each request's headers and body have a total
 * time budget that a client trickling bytes cannot stretch; connections
 * silent for idle_timeout_s are closed; connections per client address can
 * be capped. 10,000 idle connections cost a few KB each.
 *
 * Lifecycle: qt_proxy_new (checks the address and the token rule, binds
 * nothing) -> qt_engine_new with on_result = qt_proxy_on_result and
 * on_result_ud = the proxy -> qt_proxy_start (binds, serves) -> ...
 * -> qt_proxy_quiesce (no new connections) -> qt_engine_shutdown (every job
 * gets its result, which resumes its request) -> qt_proxy_stop (closes every
 * connection) -> qt_engine_free -> qt_proxy_free.
 *
 * Thread-safety: new/start/quiesce/stop/free from one controlling thread;
 * qt_proxy_on_result from any engine thread (it takes only the request's
 * lock and resumes its connection: it never waits on the network);
 * qt_proxy_metrics_text from any thread.
 */
#ifndef QT_PROXY_H
#define QT_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"
#include "quotatop/config.h"
#include "quotatop/engine.h"
#include "quotatop/jobs.h"

typedef struct qt_proxy qt_proxy;

#define QT_PROXY_IDLE_TIMEOUT_S 30   /* default idle_timeout_s */

typedef struct {
    const qt_config *cfg;        /* must outlive the proxy */
    const char *listen;          /* HOST:PORT (or [V6]:PORT); NULL = cfg->proxy.listen */
    const char *token;           /* bearer token clients must send; NULL or "" = none.
                                    Copied. */
    unsigned idle_timeout_s;     /* a connection silent this long is closed; 0 = default */
    unsigned headers_timeout_ms; /* total time from accept to the end of the headers
                                    (and, on a kept-alive connection, idle timeout plus
                                    this for the next request); 0 = 10 s */
    unsigned body_timeout_ms;    /* total time to receive a body; 0 = 60 s */
    unsigned max_conns_per_client; /* open connections per client address; 0 = none on
                                    a loopback address, 256 otherwise */
    unsigned max_connections;    /* 0 = what RLIMIT_NOFILE allows (raised to its hard
                                    limit at start), at most 1,000,000 */
    unsigned threads;            /* 0 = HTTP on the engine's loops (one daemon each);
                                    N = libmicrohttpd's own pool of N epoll threads */
    int verbose;                 /* one stderr line per request (never headers or bodies) */
    /* POST /control (and GET /control/snapshot) behind the token: answers one
     * control request (src/ctl's JSON) with a malloc'd JSON text; NULL = the
     * routes answer 404. Called on the HTTP server's threads (the engine's
     * loops): it must not wait for a loop. */
    char *(*control)(void *ud, const char *req, size_t len);
    void *control_ud;
} qt_proxy_opts;

/* Resolves the listen address and checks the start-up rules: a non-loopback
 * address needs a token. Binds nothing. Returns NULL with a one-line reason
 * in err (a usage/config error: exit 2) when the address is not HOST:PORT,
 * does not resolve, or is not loopback while no token is set. */
qt_proxy *qt_proxy_new(const qt_proxy_opts *opts, char *err, size_t errlen);

/* The engine's on_result callback (ud = the proxy): hands a finished job's
 * result to the request waiting for it. Jobs the proxy did not submit
 * (job->user NULL) are ignored. */
void qt_proxy_on_result(void *ud, const qt_job *job, const qt_result *res,
                        const qt_result_extra *extra);

/* Binds the address and starts serving requests into e (which must be
 * started and outlive the serving). QT_ERR_IO with a reason in err when the
 * address cannot be bound; QT_ERR_NOMEM. */
qt_err qt_proxy_start(qt_proxy *p, qt_engine *e, char *err, size_t errlen);

/* The bound port (after qt_proxy_start), 0 before. */
int qt_proxy_port(const qt_proxy *p);

/* The base URL clients use, e.g. "http://127.0.0.1:8787/v1". Static storage
 * inside p; valid after qt_proxy_start. */
const char *qt_proxy_base_url(const qt_proxy *p);

/* Stops accepting connections; requests already received go on. While the
 * engine runs (it waits for each loop to let go of its socket), or after
 * qt_engine_shutdown. */
void qt_proxy_quiesce(qt_proxy *p);

/* Stops accepting, waits up to 3 s for the answers being written (the 503s
 * and stream ends that qt_engine_shutdown produced), then closes every
 * connection and joins the HTTP threads. Call it after qt_engine_shutdown
 * (the engine's loops have stopped: from then on this thread drives the
 * HTTP server); every submitted job must have its result first, or requests
 * waiting for one are cut. Idempotent. */
void qt_proxy_stop(qt_proxy *p);

/* Stops if needed and frees. Accepts NULL. */
void qt_proxy_free(qt_proxy *p);

/* Counters of the HTTP front itself, for /metrics. */
typedef struct {
    uint64_t responses[600];     /* by HTTP status code */
    uint64_t rejected_queue_full, rejected_wait;   /* backpressure 429s */
    uint64_t by_endpoint[QT_ENDPOINT_COUNT];       /* job requests received, by qt_endpoint */
    uint64_t gone_queued;        /* clients that hung up before their answer began */
    uint64_t gone_streaming;     /* clients that hung up mid-stream */
    uint64_t cut_headers, cut_body, cut_idle; /* connections cut at their deadline */
    int64_t connections;         /* open now */
    int64_t streams;             /* event streams open now */
} qt_proxy_stats;

/* Copies the proxy's counters (consistent enough for monitoring: each
 * field is read atomically). p may be NULL (zeroes). */
void qt_proxy_stats_get(const qt_proxy *p, qt_proxy_stats *out);

/* Renders the Prometheus text exposition (format 0.0.4) of e's counters,
 * limits, queue, circuits, spend and latency histograms plus ps (may be
 * NULL); cfg (e's config) names each model's providers. Names are prefixed quotatop_; every family has HELP and TYPE lines;
 * label values are escaped. Returns heap text the caller frees, or NULL when
 * out of memory. */
char *qt_proxy_metrics_text(qt_engine *e, const qt_config *cfg, const qt_proxy_stats *ps);

/* Appends `s` escaped as a Prometheus label value (\\, \", \n) to out
 * (up to outlen-1 bytes, always terminated). Returns the length it needed. */
size_t qt_proxy_label_escape(const char *s, char *out, size_t outlen);

/* Compares a presented token with the expected one in time that depends
 * only on the expected token's length. 1 when equal. */
int qt_proxy_token_equal(const char *given, size_t given_len, const char *expected);

#endif /* QT_PROXY_H */
