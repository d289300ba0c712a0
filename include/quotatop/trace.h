/* trace.h: the request trace that `run` and `serve` append and `replay`
 * reads back (docs/ARCHITECTURE.md, "Trace", describes every field).
 *
 * A trace is JSON lines in state_dir/trace.jsonl. Each process that writes
 * to it first appends a header line naming the config it used (absolute
 * path + FNV-1a hash of the file's bytes) and the limits, prices and chains
 * of that config; then one line per finished job, written when its result
 * goes out: arrival time, workflow, priority, model asked, prompt size
 * (characters and messages, the estimator's input; the tokens the provider
 * counted), max_tokens, endpoint, the outcome, and each upstream attempt
 * (model, provider, status, time to first byte and total, tokens,
 * Retry-After / reset hint). Never prompt text, never a key.
 *
 * Bounded: when trace.jsonl passes max_bytes it is renamed trace.1.jsonl
 * (older ones shift to .2, .3, ... up to keep files; the oldest is
 * deleted) and a new file starts with the header line again, so every file
 * reads on its own.
 *
 * Thread-safety: qt_trace_record may be called from any thread at once (an
 * internal mutex guards the file; the line is formatted before taking it).
 * It does disk I/O: never call it with an engine lock held (the engine's
 * on_result callback runs without it). open/close from one thread.
 */
#ifndef QT_TRACE_H
#define QT_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/config.h"
#include "quotatop/engine.h"
#include "quotatop/jobs.h"

#define QT_TRACE_FILE "trace.jsonl"
#define QT_TRACE_VERSION 1
#define QT_TRACE_MAX_BYTES (64u << 20)   /* default rotation size */
#define QT_TRACE_KEEP 3                  /* default rotated files kept */

typedef struct qt_trace qt_trace;

typedef struct {
    const char *dir;             /* state_dir; created (0700) when missing */
    const char *config_path;     /* the config file named in the header (may be NULL) */
    const qt_config *cfg;        /* its limits, prices, chains go in the header */
    const char *command;         /* "run", "serve" */
    uint64_t max_bytes;          /* 0 = QT_TRACE_MAX_BYTES */
    int keep;                    /* rotated files kept, 0 = QT_TRACE_KEEP */
} qt_trace_opts;

/* Opens dir/trace.jsonl for appending and writes the header line. Returns
 * NULL with a reason in err when the directory or file cannot be written
 * (the caller warns and runs without a trace). */
qt_trace *qt_trace_open(const qt_trace_opts *o, char *err, size_t errlen);

/* Appends the line of one finished job (job NULL: an invalid line, not
 * recorded). extra may be NULL. A write failure is counted and reported
 * once on stderr; it never affects the job. */
void qt_trace_record(qt_trace *t, const qt_job *job, const qt_result *res,
                     const qt_result_extra *extra);

/* Lines written, and writes that failed. */
uint64_t qt_trace_lines(const qt_trace *t);

/* Flushes and closes. Accepts NULL. */
void qt_trace_close(qt_trace *t);

/* The one-line JSON of a job as qt_trace_record writes it (no newline),
 * or NULL when out of memory; caller frees. wall_now_ms is the time of the
 * result; mono_now_ms the engine clock's monotonic time then (to date the
 * arrival from job->enqueued_ms when extra does not carry it). */
char *qt_trace_format(const qt_job *job, const qt_result *res, const qt_result_extra *extra,
                      uint64_t wall_now_ms, uint64_t mono_now_ms);

/* An engine on_result callback that records into a trace, then calls the
 * next callback (the results file, the proxy). ud is a qt_trace_tap. */
typedef struct {
    qt_trace *trace;             /* NULL: only forwards */
    qt_engine_on_result next;
    void *next_ud;
} qt_trace_tap;
void qt_trace_on_result(void *ud, const qt_job *job, const qt_result *res,
                        const qt_result_extra *extra);

/* Opens the trace a run/serve of cfg should write (cfg->trace on and a
 * state_dir set), printing a warning on stderr when it cannot; NULL when
 * off or unusable. */
qt_trace *qt_trace_open_for(const qt_config *cfg, const char *config_path, const char *command);

#endif /* QT_TRACE_H */
