/* ledger.c: the durable record of completed calls (SQLite).
 *
 * DESIGN
 * One connection per qt_ledger, opened with SQLITE_OPEN_NOMUTEX: the
 * ledger's own mutex serialises every use of the connection and of its
 * prepared statements (SQLite's connection mutex would only duplicate it,
 * and a statement is not safe to share without one anyway). The schema is
 *     calls(id, wall_ms, day, workflow, model, model_used, provider, job_id,
 *           prompt_tokens, completion_tokens, cost_usd)
 * with an index on day, so the start-up "spend of today" and the `spend`
 * command's "last N days" read a range of the index, not the table.
 * The journal is WAL with synchronous=NORMAL: an insert is one small append
 * to the -wal file with no fsync, durable across a process crash (not a power
 * loss of the last commits), and readers never block the writer. A busy
 * timeout rides out another process's short write; a longer lock, a full
 * disk or a read-only file returns an error and leaves the ledger usable.
 * The statements are prepared once at open and reset after each use.
 */
#include "quotatop/ledger.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define BUSY_TIMEOUT_MS 500   /* a writer holds the lock for microseconds; longer is abnormal */

enum { ST_INSERT, ST_DAY, ST_BY_WORKFLOW, ST_BY_MODEL, ST_BY_DAY, ST_COUNT };

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS calls ("
    " id INTEGER PRIMARY KEY,"
    " wall_ms INTEGER NOT NULL,"
    " day INTEGER NOT NULL,"                 /* wall_ms / 86400000: the UTC day */
    " workflow TEXT NOT NULL,"
    " model TEXT NOT NULL,"                  /* as the job asked */
    " model_used TEXT NOT NULL,"             /* as answered, after fallback */
    " provider TEXT NOT NULL,"
    " job_id TEXT NOT NULL,"
    " prompt_tokens INTEGER NOT NULL,"
    " completion_tokens INTEGER NOT NULL,"
    " cost_usd REAL NOT NULL);"
    "CREATE INDEX IF NOT EXISTS calls_day ON calls(day);";

#define GROUP_SQL(col, order)                                                                  \
    "SELECT " col ", COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), TOTAL(cost_usd)" \
    " FROM calls WHERE day >= ?1 GROUP BY " col " ORDER BY " order

static const char *const stmt_sql[ST_COUNT] = {
    [ST_INSERT] = "INSERT INTO calls (wall_ms, day, workflow, model, model_used, provider, job_id,"
                  " prompt_tokens, completion_tokens, cost_usd)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_DAY] = "SELECT TOTAL(cost_usd) FROM calls WHERE day = ?1",
    [ST_BY_WORKFLOW] = GROUP_SQL("workflow", "5 DESC, 1"),
    [ST_BY_MODEL] = GROUP_SQL("model_used", "5 DESC, 1"),
    [ST_BY_DAY] = GROUP_SQL("day", "1"),
};

struct qt_ledger {
    pthread_mutex_t lock;          /* guards everything below */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char *path;                    /* dir/ledger.sqlite3; immutable after open */
    char err[256];                 /* the last error's message, "" when none */
};

/* ------------------------------------------------------------ helpers */

char *qt_ledger_default_dir(void)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    char *out = NULL;
    int r;
    if (xdg && *xdg) {
        r = asprintf(&out, "%s/quotatop", xdg);
    } else {
        const char *home = getenv("HOME");
        r = asprintf(&out, "%s/.local/state/quotatop", home ? home : "");
    }
    return r < 0 ? NULL : out;
}

static char *join_path(const char *dir)
{
    char *p = NULL;
    size_t n = strlen(dir);
    int slash = n > 0 && dir[n - 1] == '/';
    if (asprintf(&p, "%s%s%s", dir, slash ? "" : "/", QT_LEDGER_FILE) < 0)
        return NULL;
    return p;
}

int qt_ledger_exists(const char *dir)
{
    if (!dir || !*dir)
        return 0;
    char *p = join_path(dir);
    struct stat st;
    int ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

/* mkdir -p with mode 0700 for the directories it creates. 0 or -1 + errno. */
static int make_dirs(const char *dir)
{
    char *p = strdup(dir);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    for (char *s = p + 1; ; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            errno = e;
            return -1;
        }
        *s = c;
        if (!c)
            break;
    }
    struct stat st;
    int ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    if (!ok)
        errno = ENOTDIR;
    return ok ? 0 : -1;
}

/* Maps a SQLite result to a qt_err and keeps its message (lock held). */
static qt_err fail(qt_ledger *l, int rc, const char *what)
{
    snprintf(l->err, sizeof l->err, "%s: %s: %s", l->path, what,
             l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return QT_ERR_TIMEOUT;
    case SQLITE_NOMEM:
        return QT_ERR_NOMEM;
    default:
        return QT_ERR_IO;
    }
}

/* ------------------------------------------------------------ open / close */

qt_ledger *qt_ledger_open(const char *dir, char *err, size_t errlen)
{
    char dummy[1];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!dir || !*dir) {
        snprintf(err, errlen, "no state directory given");
        return NULL;
    }
    if (make_dirs(dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    qt_ledger *l = calloc(1, sizeof *l);
    if (!l || !(l->path = join_path(dir))) {
        free(l);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->lock, NULL);
    int rc = sqlite3_open_v2(l->path, &l->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", l->path,
                 l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
        qt_ledger_close(l);
        return NULL;
    }
    sqlite3_busy_timeout(l->db, BUSY_TIMEOUT_MS);
    /* journal_mode answers with a row naming the mode it got: "wal" unless the
     * file system cannot do WAL (then SQLite keeps its rollback journal, which
     * is slower but as safe, so that is not an error). */
    char *msg = NULL;
    rc = sqlite3_exec(l->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(l->db, schema, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot use %s: %s", l->path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        qt_ledger_close(l);
        return NULL;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(l->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &l->st[i], NULL);
        if (rc != SQLITE_OK) {
            snprintf(err, errlen, "cannot use %s: %s", l->path, sqlite3_errmsg(l->db));
            qt_ledger_close(l);
            return NULL;
        }
    }
    return l;
}

void qt_ledger_close(qt_ledger *l)
{
    if (!l)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(l->st[i]);
    sqlite3_close(l->db);   /* checkpoints the WAL when it is the last connection */
    pthread_mutex_destroy(&l->lock);
    free(l->path);
    free(l);
}

const char *qt_ledger_path(const qt_ledger *l) { return l ? l->path : ""; }

void qt_ledger_errmsg(qt_ledger *l, char *buf, size_t len)
{
    if (!buf || len == 0)
        return;
    if (!l) {
        buf[0] = '\0';
        return;
    }
    pthread_mutex_lock(&l->lock);
    snprintf(buf, len, "%s", l->err);
    pthread_mutex_unlock(&l->lock);
}

/* ------------------------------------------------------------ write */

qt_err qt_ledger_record(qt_ledger *l, const qt_ledger_call *c)
{
    if (!l || !c)
        return QT_ERR_INVALID;
    if (c->prompt_tokens < 0 || c->completion_tokens < 0 || !isfinite(c->cost_usd) || c->cost_usd < 0) {
        /* Refused: say why, so qt_ledger_errmsg never gives an empty reason. */
        pthread_mutex_lock(&l->lock);
        snprintf(l->err, sizeof l->err, "refused a call of job %.80s: %s (prompt_tokens %lld, "
                 "completion_tokens %lld, cost_usd %g)", c->job_id ? c->job_id : "?",
                 c->prompt_tokens < 0 || c->completion_tokens < 0 ? "a negative token count"
                 : "a negative or non-finite cost", (long long)c->prompt_tokens,
                 (long long)c->completion_tokens, c->cost_usd);
        pthread_mutex_unlock(&l->lock);
        return QT_ERR_INVALID;
    }
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *s = l->st[ST_INSERT];
    /* SQLITE_STATIC: the strings outlive the step; the bindings are cleared
     * before returning, so nothing keeps a borrowed pointer. */
    sqlite3_bind_int64(s, 1, (sqlite3_int64)c->wall_ms);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)(c->wall_ms / QT_LEDGER_MS_PER_DAY));
    sqlite3_bind_text(s, 3, c->workflow ? c->workflow : "default", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, c->model ? c->model : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, c->model_used ? c->model_used : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, c->provider ? c->provider : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, c->job_id ? c->job_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, c->prompt_tokens);
    sqlite3_bind_int64(s, 9, c->completion_tokens);
    sqlite3_bind_double(s, 10, c->cost_usd);
    int rc = sqlite3_step(s);
    qt_err r = rc == SQLITE_DONE ? QT_OK : fail(l, rc, "cannot record a call");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    pthread_mutex_unlock(&l->lock);
    return r;
}

/* ------------------------------------------------------------ read */

qt_err qt_ledger_day_spend(qt_ledger *l, uint64_t utc_day, double *usd)
{
    if (usd)
        *usd = 0;
    if (!l || !usd || utc_day > INT64_MAX)
        return QT_ERR_INVALID;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *s = l->st[ST_DAY];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)utc_day);
    int rc = sqlite3_step(s);
    qt_err r = QT_OK;
    if (rc == SQLITE_ROW)
        *usd = sqlite3_column_double(s, 0);
    else
        r = fail(l, rc, "cannot read the day's spend");
    sqlite3_reset(s);
    pthread_mutex_unlock(&l->lock);
    return r;
}

static char *day_name(int64_t day)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%d", &tm))
        snprintf(buf, sizeof buf, "day %lld", (long long)day);
    return strdup(buf);
}

void qt_ledger_rows_free(qt_ledger_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        free(rows[i].name);
    free(rows);
}

qt_err qt_ledger_query(qt_ledger *l, qt_ledger_by by, unsigned since_days, uint64_t now_wall_ms,
                       qt_ledger_row **rows, size_t *n)
{
    if (rows)
        *rows = NULL;
    if (n)
        *n = 0;
    if (!l || !rows || !n || (by != QT_LEDGER_BY_WORKFLOW && by != QT_LEDGER_BY_MODEL
                              && by != QT_LEDGER_BY_DAY))
        return QT_ERR_INVALID;
    int64_t today = (int64_t)(now_wall_ms / QT_LEDGER_MS_PER_DAY);
    int64_t first = since_days == 0 ? INT64_MIN : today - (int64_t)since_days + 1;
    int which = by == QT_LEDGER_BY_WORKFLOW ? ST_BY_WORKFLOW : by == QT_LEDGER_BY_MODEL ? ST_BY_MODEL
                                                                                         : ST_BY_DAY;
    qt_ledger_row *out = NULL;
    size_t count = 0, cap = 0;
    qt_err r = QT_OK;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *s = l->st[which];
    sqlite3_bind_int64(s, 1, first);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 16;
            qt_ledger_row *g = realloc(out, nc * sizeof *g);
            if (!g) {
                r = QT_ERR_NOMEM;
                break;
            }
            out = g;
            cap = nc;
        }
        qt_ledger_row *row = &out[count];
        if (by == QT_LEDGER_BY_DAY) {
            row->name = day_name(sqlite3_column_int64(s, 0));
        } else {
            const unsigned char *t = sqlite3_column_text(s, 0);
            row->name = strdup(t ? (const char *)t : "");
        }
        if (!row->name) {
            r = QT_ERR_NOMEM;
            break;
        }
        row->calls = (uint64_t)sqlite3_column_int64(s, 1);
        row->prompt_tokens = (uint64_t)sqlite3_column_int64(s, 2);
        row->completion_tokens = (uint64_t)sqlite3_column_int64(s, 3);
        row->cost_usd = sqlite3_column_double(s, 4);
        count++;
    }
    if (r == QT_OK && rc != SQLITE_DONE)
        r = fail(l, rc, "cannot read the calls");
    else if (r == QT_ERR_NOMEM)
        snprintf(l->err, sizeof l->err, "%s: out of memory", l->path);
    sqlite3_reset(s);
    pthread_mutex_unlock(&l->lock);
    if (r != QT_OK) {
        qt_ledger_rows_free(out, count);
        return r;
    }
    *rows = out;
    *n = count;
    return QT_OK;
}

/* ------------------------------------------------------------ names */

static const char *const by_names[] = {
    [QT_LEDGER_BY_WORKFLOW] = "workflow", [QT_LEDGER_BY_MODEL] = "model", [QT_LEDGER_BY_DAY] = "day",
};

qt_err qt_ledger_by_parse(const char *s, qt_ledger_by *by)
{
    for (size_t i = 0; s && by && i < QT_ARRAY_LEN(by_names); i++)
        if (!strcmp(s, by_names[i])) {
            *by = (qt_ledger_by)i;
            return QT_OK;
        }
    return QT_ERR_INVALID;
}

const char *qt_ledger_by_name(qt_ledger_by by)
{
    return (size_t)by < QT_ARRAY_LEN(by_names) ? by_names[by] : "?";
}
