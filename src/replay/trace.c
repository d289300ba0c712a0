/* trace.c: the trace writer (see include/quotatop/trace.h for the format's
 * idea and docs/ARCHITECTURE.md "Trace" for every field).
 *
 * DESIGN
 * qt_trace_record formats the job's line with cJSON on the calling thread
 * (a worker, without any engine lock), then takes the trace's own mutex
 * only to write it with one write(2) on an O_APPEND descriptor and, when
 * the file has grown past max_bytes, to rotate: close, shift
 * trace.N.jsonl -> trace.N+1.jsonl (dropping the one past `keep`), rename
 * trace.jsonl -> trace.1.jsonl, reopen and write the header again. The
 * header is built once at open and kept, so a rotation costs no config
 * work. Write errors are counted and reported once; they never touch the
 * job.
 *
 * Several processes may share one state_dir (two `run`s, a `run` and a
 * `serve`). So the size that decides a rotation is the file's, not this
 * process's count: each record fstat()s the descriptor first. A rotation
 * happens under flock(2) on trace.lock, and re-checks there whether the
 * current name still is this process's file: if another process rotated
 * first, this one only reopens the new file instead of rotating again. A
 * process that finds its descriptor no longer at the current name (rotated
 * away by another) reopens too. Every file then stays within max_bytes plus
 * one line per process, and there are never more than keep rotated files.
 */
#include "quotatop/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "quotatop/clock.h"

struct qt_trace {
    pthread_mutex_t mu;
    char *dir;
    char *header;                /* the header line, with its newline */
    int fd;                      /* -1 after a failed rotation */
    uint64_t size;               /* bytes in the current file */
    uint64_t max_bytes;
    int keep;
    uint64_t lines, failures;    /* guarded by mu */
};

/* mkdir -p with mode 0700 for what it creates. 0 or -1 + errno. */
static int mkdir_p(const char *dir)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) && errno != EEXIST)
        return -1;
    return 0;
}

/* FNV-1a of a file's bytes as 16 hex digits into out; "" when unreadable. */
static void hash_file(const char *path, char out[17])
{
    out[0] = '\0';
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f)
        return;
    uint64_t h = QT_HASH_SEED;
    int c;
    while ((c = fgetc(f)) != EOF) {
        h ^= (uint64_t)(unsigned char)c;
        h *= 1099511628211ull;
    }
    fclose(f);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* Adds the config's models and providers (limits, prices, chains). */
static void header_config(cJSON *h, const qt_config *cfg)
{
    cJSON *ps = cJSON_AddObjectToObject(h, "providers");
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const qt_provider_cfg *p = &cfg->providers[i];
        cJSON *o = cJSON_AddObjectToObject(ps, p->name);
        cJSON_AddStringToObject(o, "kind", p->kind == QT_KIND_ANTHROPIC ? "anthropic" : "openai");
        cJSON_AddNumberToObject(o, "rpm", p->rpm);
        cJSON_AddNumberToObject(o, "tpm", p->tpm);
        cJSON_AddNumberToObject(o, "max_concurrent", p->max_concurrent);
    }
    cJSON *ms = cJSON_AddObjectToObject(h, "models");
    for (size_t i = 0; i < cfg->n_models; i++) {
        const qt_model_cfg *m = &cfg->models[i];
        cJSON *o = cJSON_AddObjectToObject(ms, m->name);
        cJSON_AddStringToObject(o, "upstream_model", m->upstream_model);
        cJSON *pl = cJSON_AddArrayToObject(o, "providers");
        for (size_t k = 0; k < m->n_providers; k++)
            cJSON_AddItemToArray(pl, cJSON_CreateString(m->providers[k]));
        cJSON_AddNumberToObject(o, "rpm", m->rpm);
        cJSON_AddNumberToObject(o, "tpm", m->tpm);
        cJSON_AddNumberToObject(o, "input_usd_per_mtok", m->input_usd_per_mtok);
        cJSON_AddNumberToObject(o, "output_usd_per_mtok", m->output_usd_per_mtok);
        cJSON *fb = cJSON_AddArrayToObject(o, "fallback");
        for (size_t k = 0; k < m->n_fallback; k++)
            cJSON_AddItemToArray(fb, cJSON_CreateString(m->fallback[k]));
    }
    cJSON_AddNumberToObject(h, "headroom", cfg->limits.headroom);
    cJSON_AddNumberToObject(h, "workers", cfg->workers);
}

static char *make_header(const qt_trace_opts *o)
{
    cJSON *h = cJSON_CreateObject();
    if (!h)
        return NULL;
    cJSON_AddNumberToObject(h, "quotatop_trace", QT_TRACE_VERSION);
    cJSON_AddNumberToObject(h, "started_ms", (double)qt_wall_ms());
    cJSON_AddStringToObject(h, "command", o->command ? o->command : "");
    char abs[PATH_MAX], hash[17];
    const char *path = o->config_path && realpath(o->config_path, abs) ? abs : o->config_path;
    cJSON_AddStringToObject(h, "config", path ? path : "");
    hash_file(o->config_path, hash);
    cJSON_AddStringToObject(h, "config_fnv1a", hash);
    cJSON_AddNumberToObject(h, "pid", (double)getpid());
    if (o->cfg)
        header_config(h, o->cfg);
    char *s = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    return line;
}

static void path_of(const qt_trace *t, int n, char *out, size_t len)
{
    if (n == 0)
        snprintf(out, len, "%s/%s", t->dir, QT_TRACE_FILE);
    else
        snprintf(out, len, "%s/trace.%d.jsonl", t->dir, n);
}

/* Opens the current file and writes the header. mu held (or not yet shared). */
static int open_current(qt_trace *t)
{
    char p[PATH_MAX + 32];
    path_of(t, 0, p, sizeof p);
    t->fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (t->fd < 0)
        return -1;
    struct stat st;
    t->size = fstat(t->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    size_t n = strlen(t->header);
    if (write(t->fd, t->header, n) != (ssize_t)n)
        return -1;
    t->size += n;
    return 0;
}

/* 1 when the current name is the file t->fd has open. mu held. */
static int is_current(const qt_trace *t)
{
    char p[PATH_MAX + 32];
    struct stat a, b;
    path_of(t, 0, p, sizeof p);
    return t->fd >= 0 && fstat(t->fd, &a) == 0 && stat(p, &b) == 0
           && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* Reopens the current name (another process rotated it). mu held. */
static void reopen(qt_trace *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    if (open_current(t) != 0)
        t->failures++;
}

/* Shifts the rotated files and starts a new current one, unless another
 * process sharing the directory rotated first. mu held. */
static void rotate(qt_trace *t)
{
    char from[PATH_MAX + 32], to[PATH_MAX + 32];
    snprintf(from, sizeof from, "%s/trace.lock", t->dir);
    int lk = open(from, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (lk >= 0)
        flock(lk, LOCK_EX);
    if (!is_current(t)) {
        reopen(t);
    }
    else {
        close(t->fd);
        t->fd = -1;
        path_of(t, t->keep, to, sizeof to);
        unlink(to);
        for (int i = t->keep - 1; i >= 0; i--) {
            path_of(t, i, from, sizeof from);
            path_of(t, i + 1, to, sizeof to);
            rename(from, to);
        }
        if (open_current(t) != 0)
            t->failures++;
    }
    if (lk >= 0)
        close(lk);                   /* releases the flock */
}

/* The bytes in t->fd's file, others' appends included. mu held. */
static void refresh_size(qt_trace *t)
{
    struct stat st;
    if (t->fd >= 0 && fstat(t->fd, &st) == 0)
        t->size = (uint64_t)st.st_size;
}

qt_trace *qt_trace_open(const qt_trace_opts *o, char *err, size_t errlen)
{
    if (!o || !o->dir || !*o->dir) {
        snprintf(err, errlen, "no state_dir");
        return NULL;
    }
    if (mkdir_p(o->dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", o->dir, strerror(errno));
        return NULL;
    }
    qt_trace *t = calloc(1, sizeof *t);
    if (t) {
        pthread_mutex_init(&t->mu, NULL);
        t->fd = -1;
    }
    if (!t || !(t->dir = strdup(o->dir)) || !(t->header = make_header(o))) {
        snprintf(err, errlen, "out of memory");
        qt_trace_close(t);
        return NULL;
    }
    t->max_bytes = o->max_bytes ? o->max_bytes : QT_TRACE_MAX_BYTES;
    t->keep = o->keep > 0 ? o->keep : QT_TRACE_KEEP;
    if (open_current(t) != 0) {
        snprintf(err, errlen, "cannot write %s/%s: %s", o->dir, QT_TRACE_FILE, strerror(errno));
        qt_trace_close(t);
        return NULL;
    }
    return t;
}

void qt_trace_close(qt_trace *t)
{
    if (!t)
        return;
    if (t->fd >= 0)
        close(t->fd);
    pthread_mutex_destroy(&t->mu);
    free(t->header);
    free(t->dir);
    free(t);
}

uint64_t qt_trace_lines(const qt_trace *t)
{
    return t ? __atomic_load_n(&t->lines, __ATOMIC_RELAXED) : 0;
}

void qt_trace_record(qt_trace *t, const qt_job *job, const qt_result *res,
                     const qt_result_extra *extra)
{
    if (!t || !job || !res || res->status == QT_STATUS_INVALID)
        return;
    char *line = qt_trace_format(job, res, extra, qt_wall_ms(), qt_now_ms());
    int failed = !line, report = 0, werr = 0;
    size_t n = line ? strlen(line) : 0;
    if (line)
        line[n++] = '\n';            /* qt_trace_format leaves room for it */
    pthread_mutex_lock(&t->mu);
    refresh_size(t);
    if (line && t->fd >= 0 && t->size + n > t->max_bytes) {
        if (!is_current(t))
            reopen(t);               /* another process rotated our file away */
        else if (t->size > strlen(t->header))
            rotate(t);
    }
    if (line && (t->fd < 0 || write(t->fd, line, n) != (ssize_t)n))
        failed = 1;
    if (failed) {
        werr = errno;
        report = t->failures++ == 0;
    }
    else {
        t->size += n;
        __atomic_add_fetch(&t->lines, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&t->mu);
    if (report)
        fprintf(stderr, "quotatop: warning: cannot append to the trace in %s (%s); results are "
                        "unaffected, further failures are not reported\n", t->dir, strerror(werr));
    free(line);
}

void qt_trace_on_result(void *ud, const qt_job *job, const qt_result *res,
                        const qt_result_extra *extra)
{
    qt_trace_tap *tap = ud;
    qt_trace_record(tap->trace, job, res, extra);
    if (tap->next)
        tap->next(tap->next_ud, job, res, extra);
}

qt_trace *qt_trace_open_for(const qt_config *cfg, const char *config_path, const char *command)
{
    if (!cfg || !cfg->trace || !cfg->state_dir || !*cfg->state_dir)
        return NULL;
    qt_trace_opts o = { .dir = cfg->state_dir, .config_path = config_path, .cfg = cfg,
                        .command = command };
    char err[PATH_MAX + 64];
    qt_trace *t = qt_trace_open(&o, err, sizeof err);
    if (!t)
        fprintf(stderr, "quotatop: warning: request trace disabled (%s); set \"trace\": false to "
                        "silence this\n", err);
    return t;
}
