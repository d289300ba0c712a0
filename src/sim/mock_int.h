/* mock_int.h: private to src/mock*.c. The pieces of the simulated provider:
 *
 *   mock.c        the server: lifecycle, MHD glue, routing, the chat pipeline
 *   mock_reply.c  status + headers + error body of each mock_verdict
 *   mock_ctl.c    /stats, /control/..., /v1/models and their C functions
 *   mock_model.c  the model table: buckets, outage windows, counters
 *   mock_body.c   request parsing and every body the mock answers with
 *   mock_spec.c   model spec parsing, PRNG, Go-style durations, RFC 3339
 *
 * The model table is guarded by qt_mock.lock; the functions of
 * mock_model.c expect the caller to hold it.
 */
#ifndef QT_MOCK_INT_H
#define QT_MOCK_INT_H

#include <pthread.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quotatop/mock.h"

#define MOCK_MAX_MODELS 256          /* declared + created on first use */
#define MOCK_RING_MAX   65536        /* timestamps kept for max_1s */
#define MOCK_MAX_HEADERS 16          /* headers of one mock_reply */
#define MOCK_MAX_PREFIXES 64         /* message prefixes of one request remembered */
#define MOCK_SEEN 512                /* prompt prefixes a model remembers (its cache) */
#define MOCK_CACHE_MIN 1024          /* shortest prefix cached, as OpenAI and Anthropic */
#define MOCK_CACHE_STEP 128          /* cached tokens come in these increments (OpenAI) */

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
    uint64_t seen[MOCK_SEEN];    /* prefix hashes of earlier requests (a ring), 0 = empty */
    unsigned seen_next;
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
    /* agents' shapes */
    unsigned n;               /* choices asked (OpenAI n), 1..16 */
    bool     call_tool;       /* answer with a call of tool_name */
    char     tool_name[64];
    char     tool_args[512];  /* a JSON object made from the tool's parameter schema */
    bool     after_tool;      /* the last message carries a tool result */
    int      api;             /* mock_api: the endpoint asked */
    unsigned n_inputs;        /* embeddings: items of "input" */
    unsigned dimensions;      /* embeddings: length of each vector */
    bool     base64;          /* embeddings: encoding_format "base64" (float32 LE) */
    char     tool_result[96]; /* its first bytes, quoted in the answer */
    /* prompt caching: a hash and the token count of every message prefix
     * (tools and system included), so a later request that repeats one is
     * reported as read from the cache */
    bool     anthropic, cache_control;   /* the shape; cache_control given anywhere */
    unsigned n_prefix;
    uint64_t prefix_hash[MOCK_MAX_PREFIXES], prefix_tokens[MOCK_MAX_PREFIXES];
} mock_req;

/* The endpoints the mock answers. */
typedef enum { MOCK_API_CHAT, MOCK_API_MESSAGES, MOCK_API_RESPONSES, MOCK_API_EMBEDDINGS } mock_api;

/* The endpoint of a POST path, or -1 for none of them. */
int mock_api_of(const char *url);

/* mock_api.c: parses a Responses (input, instructions, tools, stream,
 * max_output_tokens) or an embeddings (input, dimensions) body into *r, as
 * mock_parse_request does for chat; r->api is set. */
void mock_parse_api_request(const char *body, size_t len, mock_api api, mock_req *r);

/* mock_agent.c: reads n, tools, tool_choice and the tool calls and results
 * of the history into r (r->error set on a tool result that answers no
 * call); returns the bytes of tools, arguments and results (prompt). */
struct cJSON;
uint64_t mock_parse_agent(const struct cJSON *root, bool anthropic, mock_req *r);

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
    const mock_req *q;       /* tools, n, tool results (NULL: plain text) */
    uint64_t cached, cache_write;   /* of prompt_tokens (mock_usage_extras) */
} mock_answer;


uint64_t mock_completion_tokens(const qt_mock_model_opts *o, uint64_t prompt,
                                uint64_t max_tokens, bool *truncated);
char *mock_openai_body(const mock_answer *a);
/* The answer's text: the tool result quoted after a tool call, else the
 * cycled sentence. Caller frees. */
char *mock_answer_text(const mock_answer *a);
/* mock_api.c: a Responses answer (object "response"), its stream (the
 * response.* events), and an embeddings list. Same ownership as above. */
char *mock_responses_body(const mock_answer *a);
char **mock_responses_stream(const mock_answer *a, size_t *n);
char *mock_embeddings_body(const mock_answer *a);
char *mock_anthropic_body(const mock_answer *a);
/* SSE streams as a list of events (each a complete "data: ...\n\n" or
 * "event: ...\ndata: ...\n\n" string); *n receives the count. NULL when out
 * of memory. Free with mock_events_free. */
char **mock_openai_stream(const mock_answer *a, bool include_usage, size_t *n);
char **mock_anthropic_stream(const mock_answer *a, size_t *n);
void mock_events_free(char **ev, size_t n);
/* Building a stream: mock_ev_add appends "[event: NAME\n]data: JSON\n\n"
 * (taking o; event NULL for none); mock_ev_finish gives the list (NULL after
 * an allocation failure). mock_each_word calls fn for each word of text,
 * its space kept. */
typedef struct {
    char **v;
    size_t n, cap;
    bool oom;
} mock_evlist;
void mock_ev_add(mock_evlist *l, const char *event, struct cJSON *o);
char **mock_ev_finish(mock_evlist *l, size_t *n);
void mock_each_word(const char *text, void (*fn)(const char *, void *), void *arg);


/* ---- the server (mock.c) and what its parts share ---- */

struct MHD_Connection;

struct qt_mock {
    struct MHD_Daemon *d;
    int      port;
    qt_mock_kind kind;
    qt_mock_model_opts defaults;
    int      only_declared;
    char    *key;                /* required API key or NULL; never printed */
    uint32_t stream_chunk_ms;
    int      verbose;
    uint64_t start_ms;           /* qt_now_ms() at start: origin of outage windows */

    pthread_mutex_t lock;        /* guards table, rng, seq */
    mock_table table;
    uint64_t rng;
    uint64_t seq;

    /* Latency and stream pacing are timers, not sleeping threads: a
     * request whose answer is due later is suspended and its entry put in
     * this heap; the timer thread resumes it at the time (mock.c). */
    pthread_mutex_t timer_lock;  /* guards the heap and stopping */
    pthread_cond_t  timer_cv;    /* the timer thread waits on it */
    struct mock_timer *heap;     /* min-heap by at_ms */
    size_t   nheap, capheap;
    bool     stopping;
    bool     timer_running;
    pthread_t timer_thread;
};

/* A suspended connection to resume at at_ms. */
typedef struct mock_timer {
    uint64_t at_ms;
    struct MHD_Connection *c;
} mock_timer;


typedef struct {
    const char *name;
    char value[48];
} mock_header;

/* What to answer. body is malloc'd (NULL = empty); events, when set, make
 * an SSE stream instead. */
typedef struct {
    unsigned status;
    char    *body;
    const char *ctype;
    mock_header   h[MOCK_MAX_HEADERS];
    int      nh;
    char   **events;
    size_t   nev;
} mock_reply;

typedef enum {
    MOCK_D_OK, MOCK_D_AUTH, MOCK_D_BAD, MOCK_D_TOO_BIG, MOCK_D_NO_MODEL, MOCK_D_TABLE_FULL, MOCK_D_OUTAGE, MOCK_D_CONTEXT,
    MOCK_D_RL_REQ, MOCK_D_RL_TOK, MOCK_D_FAIL_500, MOCK_D_FAIL_503,
} mock_decision;

/* Everything decided under the lock, used after it. */
typedef struct {
    mock_decision d;
    bool     have_limits;
    uint64_t rpm, tpm, rem_req, rem_tok, reset_req_ms, reset_tok_ms;
    uint64_t retry_ms;            /* for 429 */
    uint64_t delay_ms;            /* latency to sleep */
    uint64_t completion;
    bool     truncated;
    uint64_t context_window;
    uint64_t seq;
    uint64_t cached, cache_write;   /* prompt tokens reported as cache reads / writes */
} mock_verdict;

/* The body of one request, gathered across access-handler calls, and what
 * was decided for it while its latency runs. */
typedef struct {
    char  *buf;
    size_t len, cap;
    bool   too_big;
    int    state;                /* 0 new, 1 waiting out its latency */
    bool   anthropic, key_given;
    mock_req q;                  /* valid in state 1 */
    mock_verdict v;              /* decided, valid in state 1 */
} mock_conn;

/* mock_agent.c: the cache counts of an admitted request (the model's
 * ratios, and the longest prefix of at least MOCK_CACHE_MIN tokens an
 * earlier request to md had, in MOCK_CACHE_STEP increments: always for the
 * OpenAI shape, with cache_control for Anthropic's, whose uncached rest is
 * then a cache write), remembering q's prefixes in md; and the size of a
 * tool call's completion (arguments / 4 + 8, never truncated). Caller holds
 * the lock. */
void mock_usage_extras(mock_model *md, const mock_req *q, mock_verdict *v);


/* ---- mock_reply.c ---- */
void mock_add_header(mock_reply *r, const char *name, const char *fmt, unsigned long long v);
void mock_add_header_s(mock_reply *r, const char *name, const char *value);
/* Sets status and a malloc'd JSON body (taken); a NULL body (out of memory) becomes 500. */
void mock_set_json(mock_reply *r, unsigned status, char *body);
/* An error in the Anthropic (atype) or OpenAI (otype, code) shape. */
void mock_kind_error(mock_reply *r, bool anthropic, unsigned status, const char *atype,
                     const char *otype, const char *code, const char *msg);
void mock_not_found(mock_reply *r, bool anthropic, const char *method, const char *url);
void mock_bad_method(mock_reply *r, bool anthropic, const char *method, const char *url,
                     const char *allow);
/* The rate-limit headers of v's model in the endpoint's family. */
void mock_limit_headers(mock_reply *r, const mock_verdict *v, bool anthropic);
/* Status, body and retry headers of a refused or failed request (v->d != MOCK_D_OK). */
void mock_error_reply(mock_reply *r, const mock_verdict *v, const mock_req *q, bool anthropic,
                      bool key_given);

/* ---- mock_ctl.c ---- */
/* POST /control/outage (what = "outage") or /control/model (what = "model"). */
void mock_handle_control(qt_mock *m, const char *what, mock_conn *cx, mock_reply *r);
void mock_handle_models(qt_mock *m, mock_reply *r);

#endif /* QT_MOCK_INT_H */
