/* cmd_run.c: `quotatop run`: jobs in, one result line per job out.
 *
 * DESIGN
 * Three threads of control: a reader thread turns job lines into engine
 * submissions as they arrive (a file, or stdin for agents piping jobs in
 * live); the engine's workers produce results, written by the on_result
 * callback one flushed line at a time; the main thread shows progress (the
 * dashboard, or one line per second on stderr) and watches the signal flag.
 * The reader keeps at most read_ahead jobs without a result (twice
 * `workers`, at least READ_AHEAD_MIN) and reads on as they finish, so a file
 * of millions of lines runs in the memory of read_ahead jobs; priorities
 * order the jobs read so far.
 * SIGINT/SIGTERM stop intake, give requests in flight a short grace and
 * cancel the rest; the unread lines of a regular file are still read, each
 * getting its `cancelled` (or `invalid`) line at once. A second SIGINT
 * cancels at once and stops reading. Every job read gets exactly one result
 * line before the process exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "cmd.h"
#include "cmd_common.h"
#include "quotatop/config.h"
#include "quotatop/engine.h"
#include "quotatop/http.h"
#include "quotatop/jobs.h"
#include "quotatop/trace.h"

#define GRACE_MS 2000
#define READ_AHEAD_MIN 50000   /* jobs held without a result before reading on */

typedef struct {
    qt_engine *engine;
    const qt_config *cfg;
    int fd;                     /* jobs input */
    qt_idset *skip;             /* --resume: ids already ok */
    qt_idset *seen;             /* ids of this input's valid jobs -> their line */
    int stop;                   /* set by main (__atomic): stop reading */
    size_t read_ahead;          /* the most jobs without a result before the next read */
    int regular;                /* a regular file: on stop its unread lines get results */
    size_t skipped;
    int read_error;
    qt_job *batch[256];         /* valid jobs read, not yet submitted */
    size_t nbatch;
} reader;

/* Submits the jobs read so far: one engine lock for a read's worth. */
static void submit_batch(reader *rd)
{
    qt_engine_submit_many(rd->engine, rd->batch, rd->nbatch, NULL);
    rd->nbatch = 0;
}

/* Handles one line of the jobs input. */
static void take_line(reader *rd, char *line, size_t len, long line_no)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    size_t lead = strspn(line, " \t");
    if (lead == len)
        return;   /* blank lines are not jobs */
    qt_job *job = NULL;
    char *id = NULL, *wf = NULL, err[300];
    if (qt_job_parse(line, len, line_no, rd->cfg, &job, &id, &wf, err, sizeof err) != QT_OK) {
        if (!rd->skip || !qt_idset_has(rd->skip, id)) {
            submit_batch(rd);   /* results in the order of the lines */
            qt_engine_submit_invalid(rd->engine, id, wf, err);
        }
    } else if (rd->skip && qt_idset_has(rd->skip, job->id)) {
        rd->skipped++;
        qt_idset_add(rd->seen, job->id, line_no, NULL);
        qt_job_free(job);
    } else {
        /* Ids are unique per input: the first valid line with an id claims
         * it, a later one is invalid (never sent), however far apart they
         * are read. A number is its decimal text (1 is "1"), a line without
         * an id has its line number. */
        long first = 0;
        int added = qt_idset_add(rd->seen, job->id, line_no, &first);
        if (added == 0) {
            snprintf(err, sizeof err, "line %ld: duplicate job id \"%.100s\" (first on line %ld)",
                     line_no, job->id, first);
            submit_batch(rd);
            qt_engine_submit_invalid(rd->engine, job->id, job->workflow, err);
            qt_job_free(job);
        } else {
            rd->batch[rd->nbatch++] = job;
            if (rd->nbatch == sizeof rd->batch / sizeof rd->batch[0])
                submit_batch(rd);
        }
    }
    free(id);
    free(wf);
}

static int stopping(reader *rd) { return __atomic_load_n(&rd->stop, __ATOMIC_ACQUIRE); }

/* Reading ends now: a pipe on stop (its writer may never close it), or a
 * second signal ("stop now"). A regular file is read to its end on a first
 * signal, each line getting its result at once (the intake is closed). */
static int quit_now(reader *rd)
{
    return stopping(rd) && (!rd->regular || qt_cmd_signal_count() >= 2);
}

/* Waits while the engine holds read_ahead jobs without a result, so a file
 * of millions of lines costs the memory of read_ahead jobs, not of all of
 * them. Polls: 2 ms of sleep is nothing next to a request's time. */
static void wait_room(reader *rd)
{
    while (!stopping(rd) && qt_engine_unfinished(rd->engine) >= rd->read_ahead)
        usleep(2000);
}

/* Reads lines with poll() so the thread notices `stop` even on an idle pipe. */
static void *reader_main(void *arg)
{
    reader *rd = arg;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    long line_no = 0;
    int draining = 0;   /* stopped: the rest of the file gets `cancelled` lines */
    while (buf && !quit_now(rd)) {
        if (!draining && stopping(rd)) {
            draining = 1;
            qt_engine_close_intake(rd->engine);
        }
        if (!draining)
            wait_room(rd);
        struct pollfd pfd = { .fd = rd->fd, .events = POLLIN };
        int pr = poll(&pfd, 1, 100);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            continue;
        if (len + 4096 > cap) {
            char *g = realloc(buf, cap * 2);
            if (!g)
                break;
            buf = g;
            cap *= 2;
        }
        ssize_t n = read(rd->fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rd->read_error = errno;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        size_t start = 0;
        for (size_t i = len - (size_t)n; i < len; i++) {
            if (buf[i] != '\n')
                continue;
            buf[i] = '\0';
            take_line(rd, buf + start, i - start, ++line_no);
            start = i + 1;
        }
        submit_batch(rd);   /* a read's lines are queued before the next read waits */
        memmove(buf, buf + start, len - start);
        len -= start;
    }
    if (buf && len > 0 && !quit_now(rd)) {   /* a last line without a newline */
        buf[len] = '\0';
        take_line(rd, buf, len, ++line_no);
    }
    submit_batch(rd);
    free(buf);
    qt_engine_close_intake(rd->engine);
    return NULL;
}

typedef struct {
    qt_results *out;
    int write_failed;
} sink;

static void on_result(void *ud, const qt_job *job, const qt_result *res, const qt_result_extra *x)
{
    sink *s = ud;
    (void)job;
    (void)x;
    if (qt_results_write(s->out, res) != QT_OK)
        __atomic_store_n(&s->write_failed, 1, __ATOMIC_RELAXED);   /* any loop thread */
}

/* The engine's on_results_flush: a burst of result lines in one write. */
static void flush_results(void *ud)
{
    sink *s = ud;
    if (qt_results_flush(s->out) != QT_OK)
        __atomic_store_n(&s->write_failed, 1, __ATOMIC_RELAXED);
}

/* 1 when the jobs input (fd) and the results path are the same file. */
static int same_file(int fd, const char *out_path)
{
    struct stat a, b;
    if (!strcmp(out_path, "-") || fstat(fd, &a) != 0 || stat(out_path, &b) != 0)
        return 0;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino && S_ISREG(a.st_mode);
}

/* Writes the summary JSON and a newline to path, checking every write and
 * the close (a full disk fails only there). 0 ok, -1 with errno set. */
static int write_summary(const char *path, const char *js)
{
    if (!js) {
        errno = ENOMEM;
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int bad = fputs(js, f) < 0 || fputc('\n', f) == EOF || fflush(f) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    errno = e;
    return bad ? -1 : 0;
}

/* Whether path can be written, tried before the run: the summary is
 * written at the end of what may be hours of work, so a missing directory,
 * a directory or a read-only disk must be said at once. A file this check
 * creates is removed again. 0 ok, -1 with errno set. (A full disk still
 * fails only at the end: write_summary says so then.) */
static int summary_writable(const char *path)
{
    struct stat st;
    int existed = stat(path, &st) == 0;
    int sfd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (sfd < 0)
        return -1;
    close(sfd);
    if (!existed)
        unlink(path);
    return 0;
}

static const char run_usage[] =
    "usage: quotatop run -c CONFIG [-o RESULTS] [--summary FILE] [--headless] [--stay]\n"
    "                    [--workers N] [--resume] [-v] JOBS|-\n"
    "Runs every job of JOBS (one JSON object per line; - reads stdin as lines arrive)\n"
    "and writes one result line per job to RESULTS (default results.jsonl; it is\n"
    "overwritten unless --resume is given).\n"
    "  --summary FILE  write the run's summary object as JSON\n"
    "  --headless      no dashboard: a progress line per second on stderr\n"
    "  --stay          keep the dashboard up after the last job until q (default: exit)\n"
    "  -v, --verbose   without the dashboard: print every event (retry, 429, fallback...)\n"
    "  --workers N     requests in flight at most, 1..100000 (default: config workers, else 256)\n"
    "  --resume        skip jobs that already have an ok line in RESULTS, append\n"
    "While it runs, `quotatop top -c CONFIG` attaches a dashboard through the control\n"
    "socket STATE_DIR/run-PID.sock (mode 0600; the path is printed at start).\n";

int qt_cmd_run(int argc, char **argv)
{
    const char *cfg_path = NULL, *out_path = "results.jsonl", *summary_path = NULL, *jobs = NULL;
    int headless = 0, workers = 0, resume = 0, stay = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc)
            cfg_path = argv[++i];
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc)
            out_path = argv[++i];
        else if (!strcmp(a, "--summary") && i + 1 < argc)
            summary_path = argv[++i];
        else if (!strcmp(a, "--headless"))
            headless = 1;
        else if (!strcmp(a, "--resume"))
            resume = 1;
        else if (!strcmp(a, "--stay"))
            stay = 1;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            verbose = 1;
        else if (!strcmp(a, "--workers") && i + 1 < argc) {
            char *end;
            long w = strtol(argv[++i], &end, 10);
            if (*end || w < 1 || w > QT_MAX_WORKERS) {
                fprintf(stderr, "quotatop run: --workers must be 1..%d, got '%s'\n", QT_MAX_WORKERS, argv[i]);
                return 2;
            }
            workers = (int)w;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(run_usage, stdout);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "quotatop run: unknown option '%s'\n%s", a, run_usage);
            return 2;
        } else if (!jobs) {
            jobs = a;
        } else {
            fprintf(stderr, "quotatop run: unexpected argument '%s'\n%s", a, run_usage);
            return 2;
        }
    }
    if (!cfg_path || !jobs) {
        fprintf(stderr, "quotatop run: %s\n%s", !cfg_path ? "missing -c CONFIG" : "missing JOBS", run_usage);
        return 2;
    }
    qt_config *cfg = qt_cmd_load_config(cfg_path);
    if (!cfg)
        return 2;
    qt_cmd_warn_unset_keys(cfg, stderr, "quotatop run");
    int fd = 0;
    if (strcmp(jobs, "-")) {
        fd = open_readonly(jobs);
        if (fd < 0) {
            fprintf(stderr, "quotatop run: cannot open %s: %s\n", jobs, strerror(errno));
            qt_config_free(cfg);
            return 2;
        }
    }
    if (same_file(fd, out_path)) {
        fprintf(stderr, "quotatop run: -o %s is the jobs file: refusing to overwrite the input\n",
                out_path);
        if (fd > 0)
            close(fd);
        qt_config_free(cfg);
        return 2;
    }
    if (summary_path && summary_writable(summary_path) != 0) {
        fprintf(stderr, "quotatop run: cannot write summary %s: %s\n", summary_path, strerror(errno));
        if (fd > 0)
            close(fd);
        qt_config_free(cfg);
        return 2;
    }
    qt_idset *skip = resume ? qt_results_ok_ids(out_path) : NULL;
    long first_bad = 0;
    int torn = 0;
    long bad = qt_idset_bad_lines(skip, &first_bad, &torn);
    if (bad)
        fprintf(stderr, "quotatop run: --resume: %ld line%s of %s %s not a result (first: line %ld%s);"
                " ignored, their jobs run again\n", bad, bad == 1 ? "" : "s", out_path,
                bad == 1 ? "is" : "are", first_bad, torn ? ", the last line is torn" : "");
    sink snk = { .out = qt_results_open(out_path, resume) };
    if (!snk.out) {
        fprintf(stderr, "quotatop run: cannot write %s: %s\n", out_path, strerror(errno));
        if (fd > 0)
            close(fd);
        qt_idset_free(skip);
        qt_config_free(cfg);
        return 2;
    }
    qt_http_global_init();
    qt_cmd_signals_install();

    char err[256] = "out of memory";
    /* The request trace (for `replay`) is written before the result line. */
    qt_trace_tap tap = { qt_trace_open_for(cfg, cfg_path, "run"), on_result, &snk };
    qt_ctl *ctl = qt_ctl_new("run");   /* the dashboard's and `top`'s view of this run */
    qt_cmd_ctl_tap ctap = { ctl, qt_trace_on_result, &tap };
    qt_engine_opts eo = { .cfg = cfg, .workers = workers, .on_result = qt_cmd_ctl_on_result,
                          .on_result_ud = &ctap, .on_results_flush = flush_results,
                          .on_results_flush_ud = &snk };
    qt_results_set_buffered(snk.out, 1);
    qt_engine *e = ctl ? qt_engine_new(&eo, err, sizeof err) : NULL;
    qt_ctl_attach(ctl, e);
    if (!e || qt_engine_start(e) != QT_OK) {
        fprintf(stderr, "quotatop run: %s\n", e ? "cannot start workers" : err);
        qt_engine_free(e);
        qt_ctl_free(ctl);
        qt_trace_close(tap.trace);
        qt_results_close(snk.out);
        qt_http_global_cleanup();
        qt_idset_free(skip);
        qt_config_free(cfg);
        return 2;
    }
    if (skip && qt_idset_count(skip))
        fprintf(stderr, "quotatop run: --resume: %zu jobs already ok in %s are skipped\n",
                qt_idset_count(skip), out_path);

    /* Read ahead: twice the requests in flight, so capacity that frees
     * always finds jobs, and at least READ_AHEAD_MIN so priorities order a
     * good stretch of the file. */
    size_t in_flight_max = (size_t)qt_engine_workers(e);
    struct stat st;
    reader rd = { .engine = e, .cfg = cfg, .fd = fd, .skip = skip, .seen = qt_idset_new(),
                  .read_ahead = 2 * in_flight_max > READ_AHEAD_MIN ? 2 * in_flight_max : READ_AHEAD_MIN,
                  .regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) };
    pthread_t rt;
    pthread_create(&rt, NULL, reader_main, &rd);

    uint64_t t0 = qt_now_ms();
    int interactive = !headless && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO) && fd != 0;
    qt_cmd_ctl_listen(ctl, cfg, "quotatop run", "run");
    qt_cmd_watch(e, ctl, interactive ? "run" : NULL, t0, headless || !interactive, stay, verbose);

    __atomic_store_n(&rd.stop, 1, __ATOMIC_RELEASE);
    if (qt_cmd_signal_count()) {
        /* Stop dispatching; requests in flight get a grace period unless a
         * second signal asks to stop at once. */
        fprintf(stderr, "quotatop run: stopping (in-flight requests get %ds; signal again to stop now)\n",
                GRACE_MS / 1000);
        qt_engine_pause(e, 1);
        uint64_t deadline = qt_now_ms() + GRACE_MS;
        while (qt_cmd_signal_count() < 2 && qt_now_ms() < deadline && qt_engine_in_flight(e) > 0)
            usleep(20000);
    }
    pthread_join(rt, NULL);
    /* Every job has its result once shutdown returns (cancelled if unfinished). */
    qt_engine_shutdown(e, 0);
    double elapsed = (double)(qt_now_ms() - t0) / 1000.0;

    qt_engine_snapshot s;
    int rc = 1;
    if (qt_engine_snapshot_take(e, &s) == QT_OK) {
        qt_cmd_print_summary(stderr, &s, elapsed);
        rc = s.ok == s.jobs ? 0 : 1;
        qt_engine_snapshot_free(&s);
    }
    if (summary_path) {
        char *js = qt_engine_summary_json(e, elapsed);
        if (write_summary(summary_path, js) != 0) {
            fprintf(stderr, "quotatop run: cannot write summary %s: %s\n", summary_path,
                    js ? strerror(errno) : "out of memory");
            rc = rc ? rc : 1;
        }
        free(js);
    }
    if (snk.write_failed) {
        fprintf(stderr, "quotatop run: writing %s failed; some results are missing\n", out_path);
        rc = 1;
    }
    if (rd.read_error)
        fprintf(stderr, "quotatop run: reading %s failed: %s\n", jobs, strerror(rd.read_error));
    qt_ctl_free(ctl);   /* stops the control socket before the engine goes */
    qt_engine_free(e);
    qt_trace_close(tap.trace);
    if (qt_results_close(snk.out) != QT_OK && !snk.write_failed) {
        fprintf(stderr, "quotatop run: closing %s failed: %s; some results may be missing\n",
                out_path, strerror(errno));
        rc = 1;
    }
    if (fd > 0)
        close(fd);
    qt_idset_free(skip);
    qt_idset_free(rd.seen);
    qt_http_global_cleanup();
    qt_config_free(cfg);
    return rc;
}
