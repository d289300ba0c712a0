/* proxy_int.h: what the proxy's files share, private to src/. proxy.c (the
 * HTTP server: setup, routing, the small endpoints, the request object) and
 * proxy_chat.c (POST /v1/chat/completions: submit, wait, answer, stream)
 * share the server and request structs and the answer helpers below;
 * proxy_json.c (OpenAI shapes, addresses) and proxy_metrics.c (Prometheus
 * text) share the byte buffer and the JSON helpers. */
#ifndef QT_PROXY_INT_H
#define QT_PROXY_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "quotatop/loop.h"
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

/* {"type":"error","error":{"type":..,"message":..}} (Anthropic's error
 * shape), the type from the HTTP status. Heap text or NULL. */
char *px_anthropic_error_json(unsigned status, const char *message);

/* GET /v1/models (cfg's models) and GET /v1/models/{id} (NULL when unknown). */
char *px_models_json(const qt_config *cfg, int64_t created_s);
char *px_model_json(const qt_config *cfg, const char *name, int64_t created_s);

/* A chat.completion object for an answer known only by its text (a
 * response-cache hit). */
char *px_completion_json(const char *id, const char *model, int64_t created_s, const char *content,
                         long prompt_tokens, long completion_tokens);
/* The same with the answer's finish reason (NULL: "stop") and tool calls
 * (JSON array text in OpenAI's shape, or NULL), as the cache keeps them. */
char *px_answer_completion_json(const char *id, const char *model, int64_t created_s, const char *content,
                                const char *finish_reason, const char *tool_calls, long prompt_tokens,
                                long completion_tokens);

/* Appends the SSE events of an answer known only by its text: a role chunk,
 * a content chunk, a finish chunk and, when with_usage, a usage chunk. */
int px_sse_from_content(px_buf *out, const char *id, const char *model, int64_t created_s,
                        const char *content, long prompt_tokens, long completion_tokens,
                        int with_usage);
/* The same with a finish reason (NULL: "stop") and tool calls (JSON array
 * text, or NULL: one chunk per call, arguments whole). */
int px_sse_from_answer(px_buf *out, const char *id, const char *model, int64_t created_s,
                       const char *content, const char *finish_reason, const char *tool_calls,
                       long prompt_tokens, long completion_tokens, int with_usage);


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

/* ------------------------------------------------------------ server, connections, requests
 * proxy.c (server, routing), proxy_chat.c (the chat path), proxy_req.c (the
 * request object and answers), proxy_conn.c (connection table, deadlines,
 * suspend/resume, the guard thread). Calls point one way:
 * proxy.c -> proxy_chat.c -> proxy_req.c, proxy_conn.c; nothing calls back
 * up. See proxy.c's DESIGN for ownership and locking. */

typedef struct px_req px_req;

typedef enum { PC_NONE = 0, PC_HEADERS, PC_BODY, PC_IDLE } px_phase;

/* One MHD daemon and who runs it (proxy_drive.c). */
#define PX_MAX_DRIVERS 16
typedef struct px_driver {
    struct MHD_Daemon *daemon;
    qt_loop *loop;                  /* atomic: the engine loop that runs it; NULL for
                                       MHD's own threads, or once qt_proxy_stop drives */
    int mhd_fd;                     /* its epoll set (-1: MHD's own threads) */
    int listen_fd;                  /* its listening socket (MHD's once started; -1
                                       after quiesce) */
    qt_timer *timer;                /* MHD's next timeout (the loop thread only) */
    int wake;                       /* atomic: a run of MHD is posted to the loop */
} px_driver;

/* Connections per client address (proxy_conn.c), under px->ip_mu. */
typedef struct px_ip {
    struct px_ip *next;
    unsigned char key[17];          /* family byte, then 4 or 16 address bytes */
    unsigned count;
} px_ip;
#define PX_IP_BUCKETS 1024

/* One client connection (MHD's socket context), from accept to close. */
typedef struct px_conn {
    struct px_conn *prev, *next;    /* px->conns, under px->conn_mu */
    int fd;
    int phase;                      /* px_phase (atomic): what the deadline is for */
    uint64_t deadline_ms;           /* atomic: qt_now_ms() after which the guard cuts it; 0 none */
    px_req *req;                    /* the request being handled, under px->conn_mu */
    int guarded;                    /* its fd is in the guard's epoll set */
    unsigned char ip[17];           /* its address's key (px_ip), ip[0] 0: not counted */
} px_conn;

struct qt_proxy {
    const qt_config *cfg;
    qt_engine *engine;
    char *token;                    /* NULL = no auth */
    char *(*control)(void *ud, const char *req, size_t len);   /* /control (quotatop top) */
    void *control_ud;
    unsigned idle_timeout_s;
    unsigned headers_ms, body_ms;   /* total budgets of a request's headers and body */
    unsigned per_ip_limit;          /* 0 = none */
    unsigned conn_limit;            /* MHD_OPTION_CONNECTION_LIMIT */
    unsigned threads;               /* MHD's own pool; 0 = MHD runs on the engine's loop */
    int verbose;
    char listen[300];
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int loopback;
    int port;
    char base_url[340];
    int listening;                  /* started and not quiesced yet */
    px_driver drv[PX_MAX_DRIVERS];  /* the daemons (proxy_drive.c); set up by start */
    int ndrv;
    int64_t started_s;              /* wall seconds, for "created" of models */
    uint64_t next_id;               /* atomic */
    int64_t answering;              /* atomic: submitted requests whose answer is not
                                       complete yet (qt_proxy_stop lets them finish) */
    qt_proxy_stats st;              /* fields updated with __atomic */

    /* proxy_conn.c */
    pthread_mutex_t ip_mu;          /* guards ip_tab: every daemon's accepts */
    px_ip *ip_tab[PX_IP_BUCKETS];
    pthread_mutex_t conn_mu;        /* guards the conns list (not the fields' values) */
    px_conn *conns;
    pthread_mutex_t watch_mu;       /* guards watch[] */
    px_req **watch;                 /* by fd: suspended requests, which a hang-up
                                       the guard sees resumes */
    unsigned char *hup;             /* by fd: the guard saw its peer hang up */
    size_t n_watch;
    int guard_ep;                   /* the guard's epoll set (-1 none) */
    int guard_stop;                 /* atomic */
    int guard_running;
    pthread_t guard;
};

typedef enum { RT_NONE = 0, RT_CHAT, RT_MESSAGES, RT_RESPONSES, RT_EMBEDDINGS, RT_MODELS, RT_MODEL,
               RT_METRICS, RT_HEALTH, RT_CONTROL, RT_CONTROL_SNAP } px_route;

/* True when v looks like an anthropic-version (YYYY-MM-DD). */
static inline int px_anthropic_version_ok(const char *v)
{
    for (int i = 0; i < 10; i++)
        if (i == 4 || i == 7 ? v[i] != '-' : (v[i] < '0' || v[i] > '9'))
            return 0;
    return v[10] == '\0';
}

/* The routes that become jobs (POST with a JSON body), and their endpoint. */
static inline int px_route_is_job(px_route rt) { return rt >= RT_CHAT && rt <= RT_EMBEDDINGS; }
static inline qt_endpoint px_route_endpoint(px_route rt)
{
    return rt == RT_MESSAGES ? QT_ENDPOINT_MESSAGES : rt == RT_RESPONSES ? QT_ENDPOINT_RESPONSES
           : rt == RT_EMBEDDINGS ? QT_ENDPOINT_EMBEDDINGS : QT_ENDPOINT_CHAT;
}

struct px_req {
    qt_proxy *px;
    struct MHD_Connection *conn;
    px_driver *drv;                 /* the daemon that has the connection */
    px_conn *pc;                    /* the connection's entry (NULL if MHD gave none) */
    int sock;                       /* the client's socket */
    px_route route;
    const char *model_path;         /* RT_MODEL: the id in the URL (MHD's memory) */
    int early;                      /* an answer was queued at the first call */
    px_buf body;
    int too_big;
    uint64_t t0;
    int status_sent;                /* for the access log */
    int refs;                       /* atomic */
    int watched;                    /* in px->watch (MHD thread of this connection only) */
    int waiting;                    /* submitted; the handler resumes at px_chat_resume */

    /* set before submit, read by the worker */
    char id[32];
    int stream, include_usage;
    struct qt_tr_stream *tr;        /* messages: chunks -> Anthropic events (under mu) */
    struct qt_tr_rstream *rtr;      /* responses: chunks -> Responses events (under mu), or NULL */
    qt_stream_sink sink;
    const qt_job *job;              /* valid while the engine holds it (worker side only) */

    pthread_mutex_t mu;             /* guards everything below */
    int suspended;                  /* MHD_suspend_connection done, no resume yet */
    int submitted;                  /* the engine has (had) the job */
    int client_gone;
    int have_result;
    int chunks;                     /* chunks forwarded */
    int stream_started;             /* the SSE response was queued */
    px_buf out;                     /* SSE bytes not yet sent, from out_off */
    size_t out_off;
    long first_queued_ms;           /* at the first chunk */
    qt_status status;
    char *error, *model_used, *openai_json, *content;
    char *finish_reason, *tool_calls;   /* a cache hit's (its answer is rebuilt from them) */
    int attempts, cached, http_status;
    long queued_ms, prompt_tokens, completion_tokens;
};

/* Appends one SSE event to r->out ("event: NAME\n" only when name is not
 * NULL). Caller holds r->mu. 0, or -1 when out of memory. */
int px_put_event(px_req *r, const char *name, const char *json, size_t len);

/* ---- proxy_responses.c: a /v1/responses client's stream ---- */

/* One chunk of the engine's stream for a Responses client: a Responses
 * event (an openai-kind upstream) goes on as it is, with its type as the
 * event name; a chat.completion.chunk (an anthropic-kind upstream, the
 * cache) is translated into Responses events (r->rtr, made on the first).
 * Caller holds r->mu. 0, or -1 when out of memory. */
int px_responses_chunk(px_req *r, const char *json, size_t len);
/* The stream went well to its end: response.completed (or .incomplete)
 * when chunks were translated. Caller holds r->mu. */
void px_responses_end(px_req *r);
/* A whole chat.completion (a cache hit) as a response object (takes
 * completion_json; NULL when out of memory or not a completion). */
char *px_responses_from_completion(char *completion_json);

/* Counters of qt_proxy_stats and px->answering (relaxed atomics). */
static inline void px_count(uint64_t *c, uint64_t n) { __atomic_add_fetch(c, n, __ATOMIC_RELAXED); }
static inline void px_gauge(int64_t *g, int64_t d) { __atomic_add_fetch(g, d, __ATOMIC_RELAXED); }

/* ---- proxy_req.c: the request object and the answers (MHD threads) ---- */

/* A request for connection c, one reference (the connection's). NULL when
 * out of memory. */
px_req *px_req_new(qt_proxy *px, struct MHD_Connection *c);
void px_req_ref(px_req *r);
/* Drops one reference to r; the last one frees it. Any thread. */
void px_req_unref(px_req *r);

/* One stderr line per request with --verbose. */
void px_log_line(px_req *r, const char *method, const char *url, unsigned status);

/* Queues a JSON answer (takes ownership of body; NULL = out of memory). */
enum MHD_Result px_answer_json(px_req *r, struct MHD_Connection *c, unsigned status, char *body,
                               const char *const *headers);

/* Queues an OpenAI error answer with a printf-style message; headers is a
 * NULL-terminated list of name, value pairs (or NULL). */
enum MHD_Result px_answer_error(px_req *r, struct MHD_Connection *c, unsigned status,
                                const char *type, const char *code, const char *param,
                                const char *const *headers, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* A request header, NULL when absent. */
const char *px_hdr(struct MHD_Connection *c, const char *name);

/* ---- proxy_conn.c: connections, deadlines, suspend/resume, the guard ---- */

/* Starts the guard thread (hang-ups of suspended requests, deadlines).
 * 0, or -1 with errno. */
int px_guard_start(qt_proxy *px);
/* Stops and joins it; frees the watch table. Idempotent. */
void px_guard_stop(qt_proxy *px);

/* MHD_OPTION_ACCEPT_POLICY (every daemon): refuses a connection from an
 * address that has px->per_ip_limit open already, else counts it (the
 * connection's entry takes the count over in px_conn_notify). */
enum MHD_Result px_conn_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
/* Frees the per-address table. */
void px_conn_ips_free(qt_proxy *px);
/* MHD_OPTION_NOTIFY_CONNECTION: adds / removes the connection's entry. */
void px_conn_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
                    enum MHD_ConnectionNotificationCode code);
/* Sets what pc's deadline is for: PC_BODY (now + body budget), PC_IDLE (now
 * + idle timeout + headers budget), PC_NONE (quotatop makes it wait). */
void px_conn_phase(qt_proxy *px, px_conn *pc, px_phase phase);

/* Suspends r's connection (MHD thread, from the access handler or a content
 * reader) and puts it in the guard's watch[], so a hang-up resumes it.
 * Caller holds r->mu. */
void px_suspend_locked(px_req *r);
/* Resumes r's connection if suspended (any thread). Caller holds r->mu. */
void px_resume_locked(px_req *r);
/* Stops watching r's socket (MHD thread of r's connection, after a resume
 * or when the request ends). Idempotent; takes only px->watch_mu, so r->mu
 * may be held. */
void px_unwatch(px_req *r);
/* Resumes every suspended request, marking it gone (before MHD_stop_daemon,
 * which must not meet a suspended connection). */
void px_resume_all(qt_proxy *px);

/* ---- proxy_drive.c: who runs MHD (see its DESIGN) ---- */

/* Watches d's epoll set from loop and runs MHD there from now on (posted
 * to the loop). 0, or -1 (no epoll set, or the post failed). */
int px_drive_attach(px_driver *d, qt_loop *loop);
/* After a resume: posts one run of d's daemon to its loop (any thread; a
 * no-op for MHD's own threads or d NULL). */
void px_wake(px_driver *d);
/* The driver of c's daemon (the first one when MHD does not say). */
px_driver *px_driver_of(qt_proxy *px, struct MHD_Connection *c);
/* Runs fn(d) for every driver on the thread that runs it and waits for all
 * of them (on the calling thread for MHD's own threads or once detached). */
void px_on_mhd_threads(qt_proxy *px, void (*fn)(px_driver *));
/* While the loops run (a start that failed half way): each loop stops
 * running its daemon, then px_detach. */
void px_undrive(qt_proxy *px);
/* qt_proxy_stop, after the engine's loops have stopped: the calling
 * thread drives every daemon from now on. */
void px_detach(qt_proxy *px);
/* Up to ms of MHD's work on the calling thread (a sleep with MHD's own threads). */
void px_drive_here(qt_proxy *px, int ms);

/* ---- proxy_chat.c ---- */

/* POST /v1/chat/completions at its last handler call (body complete):
 * validates, submits the job and suspends the connection (or answers at
 * once: an error, a result that was ready). */
enum MHD_Result px_chat(px_req *r, struct MHD_Connection *c);
/* The handler's call after a resume: answers, re-suspends, or closes. */
enum MHD_Result px_chat_resume(px_req *r, struct MHD_Connection *c);

#endif
