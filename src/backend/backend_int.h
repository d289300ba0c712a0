/* backend_int.h: inside the Redis backend: the script commands as argument
 * vectors (backend_cmd.c), shared by the async backend and the unit tests
 * that drive the scripts through a real redis-server.
 * Thread-safety: plain values; whoever owns them. */
#ifndef QT_BACKEND_INT_H
#define QT_BACKEND_INT_H

#include <stddef.h>
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

#define QT_NUSD_PER_USD 1e9
int64_t qt_bcmd_nusd(double usd);   /* rounds up; negative or non-finite = 0 */

#endif /* QT_BACKEND_INT_H */
