/* ledger.h: the durable record of every completed (billed) call, so spend
 * survives restarts.
 *
 * The ledger is one SQLite database, `ledger.sqlite3` in the state
 * directory, in WAL mode: one row per call (wall time, its UTC day,
 * workflow, requested model, model used, provider, job id, prompt and
 * completion tokens, cost in USD) and an index on the day. The engine
 * records each ok answer after it has left its own lock; at start it reads
 * back the current UTC day's spend to seed the day budget. `quotatop spend`
 * groups the rows by workflow, model or day.
 *
 * Errors never abort: every function returns a qt_err (QT_ERR_IO when SQLite
 * fails - disk full, read-only file, corrupt database -, QT_ERR_TIMEOUT when
 * another process holds the database locked for longer than the busy
 * timeout) and leaves the ledger usable; qt_ledger_errmsg() tells why.
 *
 * Thread-safety: a qt_ledger may be used from any thread; every call takes
 * the ledger's own mutex (never call it with the engine lock held: it does
 * disk I/O). Several processes may share one file (SQLite file locking).
 */
#ifndef QT_LEDGER_H
#define QT_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/common.h"

typedef struct qt_ledger qt_ledger;

#define QT_LEDGER_FILE "ledger.sqlite3"   /* the database's name inside the state dir */
#define QT_LEDGER_MS_PER_DAY 86400000ULL

/* One completed call. Strings are borrowed for the duration of the call;
 * NULL strings are stored as "" (workflow NULL as "default"). */
typedef struct {
    uint64_t wall_ms;            /* when it completed (Unix ms, UTC) */
    const char *workflow;
    const char *model;           /* the model the job asked for */
    const char *model_used;      /* the model that answered (after fallback) */
    const char *provider;
    const char *job_id;
    int64_t prompt_tokens, completion_tokens;
    double cost_usd;
} qt_ledger_call;

/* How qt_ledger_query groups the calls. */
typedef enum {
    QT_LEDGER_BY_WORKFLOW = 0,
    QT_LEDGER_BY_MODEL,          /* the model used */
    QT_LEDGER_BY_DAY,            /* UTC day, named YYYY-MM-DD */
} qt_ledger_by;

/* One group of calls. */
typedef struct {
    char *name;                  /* workflow, model or YYYY-MM-DD; owned by the array */
    uint64_t calls;
    uint64_t prompt_tokens, completion_tokens;
    double cost_usd;
} qt_ledger_row;

/* The default state directory: $XDG_STATE_HOME/quotatop when that variable
 * is set and not empty, else $HOME/.local/state/quotatop. Returns a string
 * the caller frees, or NULL when out of memory. */
char *qt_ledger_default_dir(void);

/* 1 when dir holds a ledger database file, else 0. No side effects. */
int qt_ledger_exists(const char *dir);

/* Opens (creating when needed) the ledger in dir: dir and its missing parents
 * are created with mode 0700, then the database, its table and index. On
 * error returns NULL and writes a message naming the path into err (which
 * may be NULL); nothing is left open. Free with qt_ledger_close. */
qt_ledger *qt_ledger_open(const char *dir, char *err, size_t errlen);

/* Closes the database and frees the ledger. Accepts NULL. No other thread
 * may be using it. */
void qt_ledger_close(qt_ledger *l);

/* The database file's path (owned by the ledger, valid until close). */
const char *qt_ledger_path(const qt_ledger *l);

/* Appends one call (its own transaction). QT_OK when it is on disk (as far
 * as WAL with synchronous=NORMAL promises: it survives a process crash);
 * QT_ERR_INVALID for NULL arguments, a negative token count or a negative or
 * non-finite cost (nothing written); QT_ERR_IO / QT_ERR_TIMEOUT when SQLite
 * fails (nothing written, the ledger stays usable). */
qt_err qt_ledger_record(qt_ledger *l, const qt_ledger_call *call);

/* Stores the USD total of the calls of UTC day utc_day (wall ms / 86400000)
 * in *usd (0 for a day with none). On error *usd is 0 and QT_ERR_INVALID
 * (NULL argument), QT_ERR_IO or QT_ERR_TIMEOUT is returned. */
qt_err qt_ledger_day_spend(qt_ledger *l, uint64_t utc_day, double *usd);

/* Groups the calls of the last since_days UTC days - the day of now_wall_ms
 * and the since_days - 1 days before it; 0 = every call - by `by`. On QT_OK
 * *rows holds *n rows (NULL and 0 when there are none) that the caller frees
 * with qt_ledger_rows_free: by workflow or model ordered by cost, highest
 * first (then name); by day in date order. On error *rows is NULL, *n is 0
 * and QT_ERR_INVALID (bad argument), QT_ERR_NOMEM, QT_ERR_IO or
 * QT_ERR_TIMEOUT is returned. */
qt_err qt_ledger_query(qt_ledger *l, qt_ledger_by by, unsigned since_days, uint64_t now_wall_ms,
                       qt_ledger_row **rows, size_t *n);

/* Frees rows returned by qt_ledger_query (each name and the array). Accepts NULL. */
void qt_ledger_rows_free(qt_ledger_row *rows, size_t n);

/* Copies the message of the ledger's last error ("" when none) into buf. */
void qt_ledger_errmsg(qt_ledger *l, char *buf, size_t len);

/* Parses "workflow", "model" or "day". QT_ERR_INVALID for anything else. */
qt_err qt_ledger_by_parse(const char *s, qt_ledger_by *by);

/* The name of a grouping ("workflow", "model", "day"). Never NULL. */
const char *qt_ledger_by_name(qt_ledger_by by);

#endif /* QT_LEDGER_H */
