/* ctl.h: the control plane: what a dashboard sees of a running `run` or
 * `serve` (a frame) and what it may ask of it (commands), locally or from
 * another process (`quotatop top`).
 *
 * A qt_ctl sits beside one engine. It keeps what the engine forgets (the
 * latest not-ok results, for the FAILED view), takes frames (snapshot + job
 * views + queue counts + newest events + failures) and runs commands (pause,
 * cancel, reprioritize, limits, whole-workflow actions); with the shared
 * backend a frame also carries the fleet's view (every process sharing the
 * quota, fleet-wide usage per key, today's spend). qt_ctl_listen opens
 * the control socket: a unix socket (mode 0600) that answers one JSON
 * request line with one JSON line: {"op":"frame"}, {"op":"detail","id":ID},
 * {"op":"cmd",...}. qt_ctl_handle answers the same requests for the proxy's
 * /control/ routes.
 *
 * A qt_ctl_source is where a dashboard gets frames and sends commands: the
 * local qt_ctl (run, serve, demo) or a remote one (a socket path or the
 * proxy's http://HOST:PORT with its token). The dashboard draws from either
 * the same way.
 *
 * Thread-safety: qt_ctl_* may be called from any thread (an internal mutex
 * guards the failure ring; the engine serialises itself); the listener runs
 * on its own thread. A qt_ctl_source belongs to one thread (the dashboard's).
 * Frame and JSON helpers touch only their arguments.
 */
#ifndef QT_CTL_H
#define QT_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/backend.h"
#include "quotatop/common.h"
#include "quotatop/engine.h"
#include "quotatop/events.h"
#include "quotatop/jobs.h"
#include "quotatop/queue.h"

#define QT_CTL_MAX_JOBS 500      /* job views per frame (most urgent first) */
#define QT_CTL_MAX_EVENTS 200    /* newest events per frame */
#define QT_CTL_MAX_FAILED 200    /* newest not-ok results kept */

/* A job that ended without `ok`. */
typedef struct {
    char id[64], workflow[64], model[64], model_used[64], provider[64];
    char status[16];             /* failed, rejected, invalid, cancelled */
    char error[240];             /* secrets were never in it (the engine redacts) */
    int attempts;
    double cost_usd;
    uint64_t wall_ms;            /* when the result was written */
} qt_ctl_failed;

/* What a dashboard draws in one frame. Arrays are heap copies owned by the
 * frame (qt_ctl_frame_free). */
typedef struct {
    char mode[16];               /* "run", "serve", "demo" */
    int finished;                /* run: every job has its result (intake closed) */
    qt_engine_snapshot snap;
    qt_job_view *jobs;           /* up to QT_CTL_MAX_JOBS, most urgent first */
    size_t n_jobs, jobs_total;   /* copied / without a result */
    qt_queue_counts qcounts;
    qt_event *events;            /* newest QT_CTL_MAX_EVENTS, oldest first */
    size_t n_events;
    qt_ctl_failed *failed;       /* oldest first */
    size_t n_failed;
    uint64_t failed_total;       /* not-ok results since start (may exceed n_failed) */
    int has_fleet;               /* backend.kind "redis": fleet is the fleet as this process
                                    last saw it (processes, fleet-wide figures per key, today's
                                    spend, pauses); 0 with the local backend */
    qt_backend_view fleet;
} qt_ctl_frame;

void qt_ctl_frame_free(qt_ctl_frame *f);   /* frees the arrays; accepts NULL */

/* Commands: what a dashboard key asks of the process. */
typedef enum {
    QT_CTL_PAUSE = 0,    /* flag: 1 pause all dispatch, 0 resume */
    QT_CTL_PAUSE_WF,     /* name = workflow, flag */
    QT_CTL_CANCEL,       /* name = job id (any state) */
    QT_CTL_PRIO,         /* name = job id, value = priority 1..10 */
    QT_CTL_SCALE,        /* name = model/provider, flag = is_provider, which, value = factor
                            (<= 0 restores the configured limits) */
    QT_CTL_SET_LIMIT,    /* name, flag = is_provider, which, value = the new limit per minute */
    QT_CTL_WF_CANCEL,    /* name = workflow: cancel every queued job of it */
    QT_CTL_WF_PRIO,      /* name = workflow, value = priority for every job of it */
    QT_CTL__COUNT
} qt_ctl_op;

typedef struct {
    qt_ctl_op op;
    char name[96];
    int flag;
    char which;          /* 'r' RPM, 't' TPM */
    double value;
} qt_ctl_cmd;

typedef struct qt_ctl qt_ctl;

/* A control plane for mode ("run", "serve", "demo"). NULL when out of memory. */
qt_ctl *qt_ctl_new(const char *mode);
/* The engine it reports on and commands (set once, before frames are taken). */
void qt_ctl_attach(qt_ctl *c, qt_engine *e);
/* Stops the listener, removes the socket file, frees. Accepts NULL. */
void qt_ctl_free(qt_ctl *c);

/* Records a result: keeps the newest QT_CTL_MAX_FAILED that are not ok.
 * Call from the engine's on_result (any thread). */
void qt_ctl_note_result(qt_ctl *c, const qt_result *res);

/* Fills *out (the caller frees it with qt_ctl_frame_free). QT_ERR_NOMEM. */
qt_err qt_ctl_frame_take(qt_ctl *c, qt_ctl_frame *out);
/* Runs a command; msg gets a one-line human answer either way. */
qt_err qt_ctl_exec(qt_ctl *c, const qt_ctl_cmd *cmd, char *msg, size_t len);

/* Answers one JSON request ({"op":"frame"|"detail"|"cmd", ...}) with a
 * malloc'd JSON text (NULL only when out of memory). */
char *qt_ctl_handle(qt_ctl *c, const char *req, size_t len);

/* The control socket's path for this process: STATE_DIR/MODE-PID.sock.
 * QT_ERR_INVALID when state_dir is empty or the path is too long. */
qt_err qt_ctl_socket_path(const char *state_dir, const char *mode, char *out, size_t len);
/* Listens on a unix socket at path (directory made 0700, socket 0600) on
 * a thread of its own; several viewers at once. QT_OK or an error in err. */
qt_err qt_ctl_listen(qt_ctl *c, const char *path, char *err, size_t errlen);
/* The socket path, "" when not listening. */
const char *qt_ctl_path(const qt_ctl *c);

/* ---- JSON forms (src/ctl/ctl_json.c) ---- */
char *qt_ctl_frame_to_json(const qt_ctl_frame *f);                       /* caller frees */
qt_err qt_ctl_frame_from_json(const char *js, size_t len, qt_ctl_frame *out); /* bounded */
char *qt_ctl_detail_to_json(const qt_job_detail *d);
qt_err qt_ctl_detail_from_json(const char *js, size_t len, qt_job_detail *out);
char *qt_ctl_cmd_to_json(const qt_ctl_cmd *cmd);
qt_err qt_ctl_cmd_from_json(const char *js, size_t len, qt_ctl_cmd *out);

/* ---- sources: where a dashboard reads from ---- */
typedef struct qt_ctl_source qt_ctl_source;

/* The local plane (does not own c). */
qt_ctl_source *qt_ctl_source_local(qt_ctl *c);
/* A remote plane: a unix socket path, or http://HOST:PORT (the proxy's
 * /control/ routes; token may be NULL). NULL with a reason in err. */
qt_ctl_source *qt_ctl_source_connect(const char *addr, const char *token, char *err, size_t errlen);
void qt_ctl_source_free(qt_ctl_source *s);   /* accepts NULL */
/* 1 for a remote source (top), 0 for the local one. */
int qt_ctl_source_remote(const qt_ctl_source *s);
/* A frame; QT_ERR_IO when the remote end went away (err says why). */
qt_err qt_ctl_source_frame(qt_ctl_source *s, qt_ctl_frame *out, char *err, size_t errlen);
/* One job's detail; QT_ERR_NOTFOUND when it has its result. */
qt_err qt_ctl_source_detail(qt_ctl_source *s, const char *id, qt_job_detail *out);
/* Runs a command there; msg gets the answer. */
qt_err qt_ctl_source_exec(qt_ctl_source *s, const qt_ctl_cmd *cmd, char *msg, size_t len);

/* Live control sockets in state_dir (MODE-PID.sock that accept a
 * connection), newest first; writes up to max paths. Returns how many. */
size_t qt_ctl_find_sockets(const char *state_dir, char out[][256], size_t max);

#endif /* QT_CTL_H */
