/* backend_int.h: inside the Redis backend: the script commands as argument
 * vectors (backend_cmd.c), shared by the async backend and the unit tests
 * that drive the scripts through a real redis-server.
 * Thread-safety: plain values; whoever owns them. */
#ifndef QT_BACKEND_INT_H
#define QT_BACKEND_INT_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "quotatop/backend.h"

#define QT_BCMD_MAX_ARGS 96

typedef enum { QT_SCRIPT_ADMIT = 0, QT_SCRIPT_COMMIT, QT_SCRIPT_RELEASE, QT_SCRIPT_HEARTBEAT,
               QT_SCRIPT_CONTROL, QT_SCRIPT_COUNT } qt_script_id;

/* The text of a script (common.lua prepended) and its name. */
const char *qt_script_text(qt_script_id id);
const char *qt_script_name(qt_script_id id);

/* One command: "EVALSHA sha numkeys keys... args...". argv[i] points into
 * buf (or at static strings). overflow is set when buf or argv ran out (the
 * command must not be sent). */
typedef struct {
    int argc;
    const char *argv[QT_BCMD_MAX_ARGS];
    size_t len[QT_BCMD_MAX_ARGS];
    char buf[8192];
    size_t used;
    int overflow;
} qt_bcmd;

/* What every script call needs: the tag "{prefix}", this process's id, and a
 * clock override in microseconds (0 = Redis's TIME; tests only). */
typedef struct {
    const char *tag;
    const char *proc;
    long lease_ms;
    double burst_ms;
    uint64_t now_us;
    long ahead_ms;      /* admit: a pacing wait up to this long is taken now (send after it) */
} qt_bcmd_ctx;

/* Each fills *c (EVALSHA with sha) and returns 0, or -1 when it does not fit. */
int qt_bcmd_admit(qt_bcmd *c, const char *sha, const qt_bcmd_ctx *x, const qt_backend_lease *l);
int qt_bcmd_settle(qt_bcmd *c, const char *sha, const qt_bcmd_ctx *x, const qt_backend_lease *l,
                   int64_t actual_tokens, double actual_usd);
/* info "" leaves the fleet. view_keys: rate key names; the budget read is "day". */
int qt_bcmd_heartbeat(qt_bcmd *c, const char *sha, const qt_bcmd_ctx *x, const char *info,
                      const char *const *view_keys, size_t n_view);
/* op and args as control.lua; args may be NULL. */
int qt_bcmd_control(qt_bcmd *c, const char *sha, const qt_bcmd_ctx *x, const char *op,
                    const char *a1, const char *a2, const char *a3);

/* ---- backend_io.c: hiredis async on a qt_loop ---- */
struct redisAsyncContext;
typedef struct {
    qt_loop *loop;
    struct redisAsyncContext *ac;   /* NULL once hiredis has let go of it */
    int fd;                         /* -1 none */
    unsigned events;                /* QT_LOOP_READ | QT_LOOP_WRITE wanted */
} qt_redis_io;

/* Joins ac to loop l through io (owned by the caller, outliving ac). Loop thread. */
void qt_redis_io_attach(qt_redis_io *io, qt_loop *l, struct redisAsyncContext *ac);
void qt_redis_io_ready(void *ud, int fd, unsigned ready);

/* ---- backend.c / backend_view.c: the backend itself (loop thread) ---- */
typedef struct bk_op bk_op;
struct bk_op {
    bk_op *next;
    struct qt_backend *b;
    qt_script_id kind;
    int is_load;                 /* a SCRIPT LOAD (kind = which script) */
    int was_sent;                /* written to Redis (an admit may have been taken) */
    int tries;                   /* NOSCRIPT / MOVED resends */
    uint64_t deadline_ms;        /* loop clock */
    qt_backend_lease *lease;     /* admit: the caller's; settle: &lease_copy */
    qt_backend_lease lease_copy;
    qt_backend_admit_fn cb;
    void *ud;
    int64_t tokens;              /* settle: actual tokens, -1 = the estimate (forget) */
    double usd;
    char ctl[4][QT_BACKEND_NAME];   /* control: op, args */
};

typedef struct { bk_op *head, *tail; size_t n; } bk_queue;

enum { BK_DOWN = 0, BK_CONNECTING, BK_UP };

struct qt_backend {
    qt_loop *loop;
    char host[256]; int port;            /* where we talk now (a MOVED may change it) */
    char first_host[256]; int first_port; /* backend.url */
    char tag[80];                        /* "{prefix}" */
    char proc[128];                      /* "<host>-<pid>-<rand>" */
    char host_name[64], mode[8];
    long lease_ms, timeout_ms, hb_ms;
    double burst_ms;
    char **view_keys; size_t n_view;
    qt_backend_control_fn on_control;
    qt_backend_state_fn on_state;
    void *ud;

    int st;                              /* BK_* */
    struct redisAsyncContext *ac, *sub;  /* commands; SUBSCRIBE */
    qt_redis_io io, sub_io;
    char sha[QT_SCRIPT_COUNT][48];
    int loads_left;                      /* SCRIPT LOADs unanswered while connecting */
    int ever_up, redirecting, freeing;
    char kill_reason[200];               /* the tick drops the connection for this */
    bk_queue sent, waitq, owed;          /* answered in order; waiting for a connection;
                                            settles to resend after one */
    qt_timer *tick;
    uint64_t connect_deadline_ms, next_connect_ms, backoff_ms, hb_due_ms;
    int hb_in_flight;
    uint64_t seq;                        /* lease numbers */
    int in_flight;                       /* admitted, not settled */

    pthread_mutex_t view_lock;           /* guards view: the UI copies it */
    qt_backend_view view;
    int prev_paused;                     /* last fleet state told to on_control */
    char prev_wf[QT_BACKEND_MAX_VIEW][64]; int n_prev_wf;
    char prev_over[512];
};

void bk_view_init(struct qt_backend *b);
/* Applies a heartbeat answer to the view; tells on_control what changed. */
struct redisReply;
void bk_view_update(struct qt_backend *b, const struct redisReply *r);

#define QT_NUSD_PER_USD 1e9
int64_t qt_bcmd_nusd(double usd);   /* rounds up; negative or non-finite = 0 */

#endif /* QT_BACKEND_INT_H */
