/* jobs.h: the job and result contracts of DESIGN.md.
 *
 * A job is one JSON object per line: id, workflow, priority, model, messages,
 * max_tokens and any fields passed through to the upstream. qt_job_parse
 * turns a line into a qt_job or into a clear reason naming the line. A result
 * is one JSON object per line; qt_results writes them, flushed per line (or
 * per burst: qt_results_set_buffered), so exactly one line per job reaches
 * the file as soon as the job ends.
 *
 * Thread-safety: qt_job values belong to one thread at a time (the queue
 * hands them over). qt_results_write may be called from any thread (one
 * internal mutex, held only while formatting and writing one line).
 */
#ifndef QT_JOBS_H
#define QT_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"
#include "quotatop/config.h"

typedef struct cJSON cJSON;

/* Where a streamed answer goes (the proxy's client connection). Chunks are
 * OpenAI chat.completion.chunk JSON objects, whatever the upstream kind.
 * Each callback returns 0 to continue, nonzero when the client is gone (the
 * upstream transfer is then aborted). Called from an engine loop thread without
 * engine locks. */
typedef struct {
    int (*on_chunk)(void *ud, const char *json, size_t len);
    void *ud;
} qt_stream_sink;

/* What a job asks of the upstream (the job field "endpoint", the proxy's
 * path). A chat job is an OpenAI chat request; a messages job an Anthropic
 * messages request; a responses job an OpenAI Responses request; an
 * embeddings job an OpenAI embeddings request. The body keeps its own API's
 * shape; the provider carries it (as is to the same kind, translated, or the
 * router skips a model that cannot carry it). */
typedef enum {
    QT_ENDPOINT_CHAT = 0,
    QT_ENDPOINT_MESSAGES,
    QT_ENDPOINT_RESPONSES,
    QT_ENDPOINT_EMBEDDINGS,
} qt_endpoint;
#define QT_ENDPOINT_COUNT 4

/* "chat", "messages", "responses", "embeddings". */
const char *qt_endpoint_name(qt_endpoint e);
/* The endpoint named s, or -1 when s names none. */
int qt_endpoint_parse(const char *s);

typedef struct {
    char *id;             /* from the line, or the line number */
    char *workflow;       /* default "default" */
    int priority;         /* 1 (most urgent) .. 10, default 5 */
    char *model;          /* a configured model name */
    int model_idx;        /* index into qt_config.models */
    cJSON *body;          /* the whole job object (owned); providers build from it */
    int max_tokens;       /* the larger of the job's max_tokens and
                           * max_completion_tokens, 0 when both are absent */
    size_t prompt_chars;  /* characters of all message contents (token estimate input) */
    int n_messages;       /* entries of "messages" (or of a responses "input" list,
                           * or of a batched embeddings "input") */
    qt_endpoint endpoint; /* the job field "endpoint", default chat */
    long line_no;         /* 1-based line in the jobs input, 0 when not from a file */
    uint64_t enqueued_ms; /* monotonic time it entered the queue */
    uint64_t dispatched_ms; /* monotonic time of its first upstream request, 0 before */
    const qt_stream_sink *stream; /* not NULL: stream the answer to it (proxy); not owned */
    int cancel_requested; /* set by qt_engine_cancel while a worker holds it (engine lock) */
    void *user;           /* the submitter's (e.g. the proxy's pending request); not owned */
} qt_job;

/* The error text of a job cancelled by qt_engine_cancel (a key, the
 * control socket): `serve` answers it with a status SDKs do not retry. */
#define QT_CANCELLED_BY_OPERATOR "cancelled by the operator"

/* Status of a result line. */
typedef enum {
    QT_STATUS_OK = 0,
    QT_STATUS_FAILED,     /* retries or chain exhausted, or fatal upstream error */
    QT_STATUS_REJECTED,   /* budget refused it */
    QT_STATUS_CANCELLED,  /* by key or signal */
    QT_STATUS_INVALID,    /* the line could not be used */
} qt_status;

const char *qt_status_name(qt_status s);

typedef struct {
    const char *id;
    const char *workflow;
    qt_status status;
    const char *model;         /* requested model (may be NULL for invalid lines) */
    const char *model_used;    /* model that answered, NULL if none */
    const char *provider;      /* provider that answered, NULL if none */
    int attempts;              /* upstream requests made for this job */
    long prompt_tokens, completion_tokens;
    double cost_usd;
    long queued_ms, latency_ms;
    int cached;
    const char *error;         /* NULL when ok */
    const char *content;       /* NULL when not ok */
    const char *finish_reason; /* "stop", "length", "tool_calls", ...; NULL unknown */
    const char *tool_calls;    /* JSON array text (OpenAI shape), NULL when none */
    const char *choices;       /* JSON array text of every choice when n > 1, else NULL */
    long cached_tokens;        /* of prompt_tokens, read from the prompt cache */
    long cache_write_tokens;   /* of prompt_tokens, written to it (Anthropic) */
    long reasoning_tokens;     /* of completion_tokens */
    qt_endpoint endpoint;      /* the job's; written when not chat */
    const char *upstream_id;   /* the answer's id ("resp_..." is what a later
                                * previous_response_id names); written for responses */
    const char *embeddings;    /* JSON array text of the vectors (embeddings), else NULL */
} qt_result;

/* Parses one job line. On success returns QT_OK and *out (free with
 * qt_job_free). On failure returns QT_ERR_INVALID, *out is NULL, err holds a
 * reason naming the line ("line 4: malformed JSON at column 12"), and
 * *id_out and *workflow_out receive what could be read of the id and workflow
 * (heap strings the caller frees; the id defaults to the line number) so the
 * invalid result line can still name the job. cfg resolves the model. */
qt_err qt_job_parse(const char *line, size_t len, long line_no, const qt_config *cfg,
                    qt_job **out, char **id_out, char **workflow_out, char *err, size_t errlen);

/* Builds a job from an already parsed object (the proxy's request body).
 * Takes ownership of body on success and on failure. Same contract as
 * qt_job_parse otherwise; id_out and workflow_out may be NULL. */
qt_err qt_job_from_json(cJSON *body, long line_no, const qt_config *cfg, qt_job **out,
                        char **id_out, char **workflow_out, char *err, size_t errlen);

void qt_job_free(qt_job *job);   /* accepts NULL */

typedef struct qt_results qt_results;

/* Opens path for writing results: truncates, or appends when append is set.
 * "-" writes to stdout. Returns NULL with errno set on failure. */
qt_results *qt_results_open(const char *path, int append);

/* Writes one result line and flushes it (buffered: leaves it in the
 * stream's buffer for qt_results_flush). Returns QT_OK or QT_ERR_IO. */
qt_err qt_results_write(qt_results *r, const qt_result *res);
/* Buffered (on): qt_results_write does not flush; the caller calls
 * qt_results_flush after each burst of results (cmd_run: the engine's
 * on_results_flush). Off (the default): flushed per line. */
void qt_results_set_buffered(qt_results *r, int on);
/* Writes out what buffered writes left. QT_OK or QT_ERR_IO. Any thread. */
qt_err qt_results_flush(qt_results *r);

/* Formats one result as a JSON line without the newline; caller frees. */
char *qt_result_to_json(const qt_result *res);

/* Flushes and closes (accepts NULL). Returns QT_ERR_IO when the flush or the
 * close failed (a full disk shows here), else QT_OK. */
qt_err qt_results_close(qt_results *r);

/* Byte offset of the first byte of s[0..len) that is not part of well-formed
 * UTF-8, or -1 when all of it is. */
long qt_utf8_invalid_at(const char *s, size_t len);

/* Returns s (a heap string) with every byte that is not well-formed UTF-8
 * replaced by U+FFFD: s itself when it is already valid, else a new string
 * (s is freed). NULL gives NULL. */
char *qt_utf8_sanitize(char *s);

/* A set of job ids (for --resume). */
typedef struct qt_idset qt_idset;

/* Reads an existing results file and returns the set of ids that have an
 * "ok" line (each with the line number of that line). A missing file gives
 * an empty set. Lines that are not result objects (a torn last line after a
 * kill, foreign text) are skipped and counted: see qt_idset_bad_lines.
 * Returns NULL only when out of memory. */
qt_idset *qt_results_ok_ids(const char *path);
qt_idset *qt_idset_new(void);   /* empty; NULL when out of memory */
/* Adds id with val: returns 1 when added, 0 when id was there already
 * (*old_val, if not NULL, gets the value stored with it), -1 out of memory. */
int qt_idset_add(qt_idset *s, const char *id, long val, long *old_val);
/* Lines qt_results_ok_ids skipped as not result objects; *first_bad gets the
 * first one's line number and *torn_tail 1 when one of them is a last line
 * without a newline (either may be NULL). */
long qt_idset_bad_lines(const qt_idset *s, long *first_bad, int *torn_tail);
int qt_idset_has(const qt_idset *s, const char *id);
size_t qt_idset_count(const qt_idset *s);
void qt_idset_free(qt_idset *s);

#endif /* QT_JOBS_H */
