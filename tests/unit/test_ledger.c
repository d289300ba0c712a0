/* test_ledger.c: Criterion suite "ledger".
 *
 * On a fresh temporary directory each: open creates the directory (0700,
 * with parents); records read back as the day's spend for today and another
 * day; grouping by workflow, model and day; the since-N-days filter; data
 * survives a close and reopen; bad arguments change nothing; a database
 * locked by another connection, a garbage file and an uncreatable directory
 * return errors instead of crashing, and the ledger stays usable; and a
 * threads_* test where 4 threads record at once and every call is counted
 * exactly (for `make tsan`, which compiles this file against the stand-in
 * in tests/tsan: only Test and the cr_assert family it lists are used).
 */
#include "quotatop/ledger.h"

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY_MS QT_LEDGER_MS_PER_DAY
#define TODAY 20000ULL                       /* 2024-10-04 */
#define NOW_MS (TODAY * DAY_MS + 12 * 3600000ULL)

/* A fresh directory under /tmp; remove_dir deletes what the ledger leaves. */
static void make_tmp(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/qt-ledger-test.XXXXXX");
    cr_assert_not_null(mkdtemp(buf));
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = { "ledger.sqlite3", "ledger.sqlite3-wal",
                                         "ledger.sqlite3-shm", "ledger.sqlite3-journal" };
    char p[512];
    for (size_t i = 0; i < QT_ARRAY_LEN(files); i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static qt_ledger *open_ok(const char *dir)
{
    char err[300] = "";
    qt_ledger *l = qt_ledger_open(dir, err, sizeof err);
    cr_assert_not_null(l, "open %s: %s", dir, err);
    return l;
}

static qt_err rec(qt_ledger *l, uint64_t wall_ms, const char *wf, const char *model,
                  const char *used, int64_t pt, int64_t ct, double usd)
{
    qt_ledger_call c = { .wall_ms = wall_ms, .workflow = wf, .model = model, .model_used = used,
                         .provider = "p", .job_id = "j", .prompt_tokens = pt,
                         .completion_tokens = ct, .cost_usd = usd };
    return qt_ledger_record(l, &c);
}

/* The fixture most tests share: 5 calls over three days. */
static void seed(qt_ledger *l)
{
    cr_assert_eq(rec(l, NOW_MS, "support", "gpt-4o", "gpt-4o", 100, 10, 0.50), QT_OK);
    cr_assert_eq(rec(l, NOW_MS + 1000, "support", "gpt-4o", "gpt-4o-mini", 200, 20, 0.25), QT_OK);
    cr_assert_eq(rec(l, NOW_MS - 3600000, "nightly", "gpt-4o-mini", "gpt-4o-mini", 50, 5, 0.125),
                 QT_OK);
    cr_assert_eq(rec(l, NOW_MS - DAY_MS, "nightly", "gpt-4o", "gpt-4o", 10, 1, 2.0), QT_OK);
    cr_assert_eq(rec(l, NOW_MS - 5 * DAY_MS, "support", "claude", "claude", 7, 3, 4.0), QT_OK);
}

Test(ledger, open_creates_dir_with_parents_private)
{
    char tmp[64], dir[128], mid[128];
    make_tmp(tmp, sizeof tmp);
    snprintf(mid, sizeof mid, "%s/a", tmp);
    snprintf(dir, sizeof dir, "%s/a/b/", tmp);
    cr_assert_eq(qt_ledger_exists(dir), 0);
    qt_ledger *l = open_ok(dir);
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(stat(mid, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(qt_ledger_exists(dir), 1);
    char want[200];
    snprintf(want, sizeof want, "%s/a/b/ledger.sqlite3", tmp);
    cr_assert_str_eq(qt_ledger_path(l), want);
    qt_ledger_close(l);
    qt_ledger_close(NULL);
    remove_dir(dir);
    rmdir(mid);
    rmdir(tmp);
}

Test(ledger, empty_ledger_reads_zero)
{
    char dir[64];
    make_tmp(dir, sizeof dir);
    qt_ledger *l = open_ok(dir);
    double usd = -1;
    cr_assert_eq(qt_ledger_day_spend(l, TODAY, &usd), QT_OK);
    cr_assert_float_eq(usd, 0.0, 1e-12);
    qt_ledger_row *rows = (qt_ledger_row *)1;
    size_t n = 99;
    cr_assert_eq(qt_ledger_query(l, QT_LEDGER_BY_WORKFLOW, 0, NOW_MS, &rows, &n), QT_OK);
    cr_assert_null(rows);
    cr_assert_eq(n, 0);
    qt_ledger_close(l);
    remove_dir(dir);
}

Test(ledger, day_spend_today_and_other_days)
{
    char dir[64];
    make_tmp(dir, sizeof dir);
    qt_ledger *l = open_ok(dir);
    seed(l);
    static const struct { uint64_t day; double usd; } want[] = {
        { TODAY, 0.875 }, { TODAY - 1, 2.0 }, { TODAY - 5, 4.0 }, { TODAY - 2, 0 }, { TODAY + 1, 0 },
    };
    for (size_t i = 0; i < QT_ARRAY_LEN(want); i++) {
        double usd = -1;
        cr_assert_eq(qt_ledger_day_spend(l, want[i].day, &usd), QT_OK);
        cr_assert_float_eq(usd, want[i].usd, 1e-9, "day %zu", i);
    }
    /* The first and last millisecond of a day belong to it. */
    cr_assert_eq(rec(l, (TODAY + 2) * DAY_MS, "w", "m", "m", 1, 1, 1.0), QT_OK);
    cr_assert_eq(rec(l, (TODAY + 3) * DAY_MS - 1, "w", "m", "m", 1, 1, 2.0), QT_OK);
    double usd = 0;
    cr_assert_eq(qt_ledger_day_spend(l, TODAY + 2, &usd), QT_OK);
    cr_assert_float_eq(usd, 3.0, 1e-9);
    qt_ledger_close(l);
    remove_dir(dir);
}

/* Expected groups: names inline (char[]), in the order the query returns. */
typedef struct {
    char name[24];
    uint64_t calls, prompt, completion;
    double usd;
} want_row;

static void check_rows(qt_ledger *l, qt_ledger_by by, unsigned since, const want_row *want, size_t nw)
{
    qt_ledger_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(qt_ledger_query(l, by, since, NOW_MS, &rows, &n), QT_OK);
    cr_assert_eq(n, nw, "by %s since %u: %zu rows", qt_ledger_by_name(by), since, n);
    for (size_t i = 0; i < n && i < nw; i++) {
        cr_assert_str_eq(rows[i].name, want[i].name);
        cr_assert_eq(rows[i].calls, want[i].calls, "%s", want[i].name);
        cr_assert_eq(rows[i].prompt_tokens, want[i].prompt, "%s", want[i].name);
        cr_assert_eq(rows[i].completion_tokens, want[i].completion, "%s", want[i].name);
        cr_assert_float_eq(rows[i].cost_usd, want[i].usd, 1e-9, "%s", want[i].name);
    }
    qt_ledger_rows_free(rows, n);
}

Test(ledger, group_by_workflow_model_day)
{
    char dir[64];
    make_tmp(dir, sizeof dir);
    qt_ledger *l = open_ok(dir);
    seed(l);
    static const want_row by_wf[] = {
        { "support", 3, 307, 33, 4.75 }, { "nightly", 2, 60, 6, 2.125 },
    };
    static const want_row by_model[] = {   /* the model used, highest cost first */
        { "claude", 1, 7, 3, 4.0 }, { "gpt-4o", 2, 110, 11, 2.5 }, { "gpt-4o-mini", 2, 250, 25, 0.375 },
    };
    static const want_row by_day[] = {     /* date order */
        { "2024-09-29", 1, 7, 3, 4.0 }, { "2024-10-03", 1, 10, 1, 2.0 }, { "2024-10-04", 3, 350, 35, 0.875 },
    };
    check_rows(l, QT_LEDGER_BY_WORKFLOW, 0, by_wf, QT_ARRAY_LEN(by_wf));
    check_rows(l, QT_LEDGER_BY_MODEL, 0, by_model, QT_ARRAY_LEN(by_model));
    check_rows(l, QT_LEDGER_BY_DAY, 0, by_day, QT_ARRAY_LEN(by_day));
    qt_ledger_close(l);
    remove_dir(dir);
}

Test(ledger, since_counts_whole_utc_days)
{
    char dir[64];
    make_tmp(dir, sizeof dir);
    qt_ledger *l = open_ok(dir);
    seed(l);
    /* since N = today and the N - 1 days before it; 0 = all. */
    static const struct { unsigned since; uint64_t calls; double usd; } want[] = {
        { 0, 5, 6.875 }, { 1, 3, 0.875 }, { 2, 4, 2.875 }, { 5, 4, 2.875 }, { 6, 5, 6.875 },
        { 365, 5, 6.875 },
    };
    for (size_t i = 0; i < QT_ARRAY_LEN(want); i++) {
        qt_ledger_row *rows = NULL;
        size_t n = 0;
        cr_assert_eq(qt_ledger_query(l, QT_LEDGER_BY_DAY, want[i].since, NOW_MS, &rows, &n), QT_OK);
        uint64_t calls = 0;
        double usd = 0;
        for (size_t k = 0; k < n; k++) {
            calls += rows[k].calls;
            usd += rows[k].cost_usd;
        }
        cr_assert_eq(calls, want[i].calls, "since %u", want[i].since);
        cr_assert_float_eq(usd, want[i].usd, 1e-9, "since %u", want[i].since);
        qt_ledger_rows_free(rows, n);
    }
    /* since 1 by workflow: only today's calls, all "support" but one nightly. */
    static const want_row today_wf[] = { { "support", 2, 300, 30, 0.75 }, { "nightly", 1, 50, 5, 0.125 } };
    check_rows(l, QT_LEDGER_BY_WORKFLOW, 1, today_wf, QT_ARRAY_LEN(today_wf));
    qt_ledger_close(l);
    remove_dir(dir);
}

Test(ledger, reopen_keeps_data)
{
    char dir[64];
    make_tmp(dir, sizeof dir);
    qt_ledger *l = open_ok(dir);
    seed(l);
    qt_ledger_close(l);
    l = open_ok(dir);
    double usd = 0;
    cr_assert_eq(qt_ledger_day_spend(l, TODAY, &usd), QT_OK);
    cr_assert_float_eq(usd, 0.875, 1e-9);
    cr_assert_eq(rec(l, NOW_MS, "support", "gpt-4o", "gpt-4o", 1, 1, 0.125), QT_OK);
    qt_ledger_close(l);
    l = open_ok(dir);
    cr_assert_eq(qt_ledger_day_spend(l, TODAY, &usd), QT_OK);
    cr_assert_float_eq(usd, 1.0, 1e-9);
    qt_ledger_close(l);
    remove_dir(dir);
}

Test(ledger, bad_arguments_change_nothing)
{
    char dir[64];
    make_tmp(dir, sizeof dir);
    qt_ledger *l = open_ok(dir);
    cr_assert_eq(rec(l, NOW_MS, "w", "m", "m", -1, 0, 0.1), QT_ERR_INVALID);
    cr_assert_eq(rec(l, NOW_MS, "w", "m", "m", 0, -1, 0.1), QT_ERR_INVALID);
    cr_assert_eq(rec(l, NOW_MS, "w", "m", "m", 1, 1, -0.1), QT_ERR_INVALID);
    cr_assert_eq(rec(l, NOW_MS, "w", "m", "m", 1, 1, NAN), QT_ERR_INVALID);
    cr_assert_eq(rec(l, NOW_MS, "w", "m", "m", 1, 1, INFINITY), QT_ERR_INVALID);
    cr_assert_eq(qt_ledger_record(l, NULL), QT_ERR_INVALID);
    cr_assert_eq(qt_ledger_record(NULL, NULL), QT_ERR_INVALID);
    /* NULL strings are stored as "" (workflow as "default"). */
    qt_ledger_call c = { .wall_ms = NOW_MS, .cost_usd = 0.5 };
    cr_assert_eq(qt_ledger_record(l, &c), QT_OK);
    double usd = 0;
    cr_assert_eq(qt_ledger_day_spend(l, TODAY, &usd), QT_OK);
    cr_assert_float_eq(usd, 0.5, 1e-12);
    static const want_row wf[] = { { "default", 1, 0, 0, 0.5 } };
    check_rows(l, QT_LEDGER_BY_WORKFLOW, 0, wf, 1);
    cr_assert_eq(qt_ledger_day_spend(l, TODAY, NULL), QT_ERR_INVALID);
    qt_ledger_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(qt_ledger_query(l, (qt_ledger_by)7, 0, NOW_MS, &rows, &n), QT_ERR_INVALID);
    cr_assert_eq(qt_ledger_query(l, QT_LEDGER_BY_DAY, 0, NOW_MS, NULL, &n), QT_ERR_INVALID);
    qt_ledger_close(l);
    remove_dir(dir);
}

Test(ledger, by_names_parse)
{
    static const struct { char text[16]; qt_err r; qt_ledger_by by; } cases[] = {
        { "workflow", QT_OK, QT_LEDGER_BY_WORKFLOW }, { "model", QT_OK, QT_LEDGER_BY_MODEL },
        { "day", QT_OK, QT_LEDGER_BY_DAY }, { "Day", QT_ERR_INVALID, 0 }, { "", QT_ERR_INVALID, 0 },
        { "days", QT_ERR_INVALID, 0 }, { "provider", QT_ERR_INVALID, 0 },
    };
    for (size_t i = 0; i < QT_ARRAY_LEN(cases); i++) {
        qt_ledger_by by = (qt_ledger_by)99;
        cr_assert_eq(qt_ledger_by_parse(cases[i].text, &by), cases[i].r, "'%s'", cases[i].text);
        if (cases[i].r == QT_OK) {
            cr_assert_eq(by, cases[i].by);
            cr_assert_str_eq(qt_ledger_by_name(by), cases[i].text);
        }
    }
    cr_assert_eq(qt_ledger_by_parse(NULL, NULL), QT_ERR_INVALID);
    cr_assert_str_eq(qt_ledger_by_name((qt_ledger_by)42), "?");
}

Test(ledger, default_dir_follows_xdg_state_home)
{
    static const struct { char xdg[32]; char home[32]; char want[64]; } cases[] = {
        { "/x/state", "/home/u", "/x/state/quotatop" },
        { "", "/home/u", "/home/u/.local/state/quotatop" },
    };
    for (size_t i = 0; i < QT_ARRAY_LEN(cases); i++) {
        setenv("XDG_STATE_HOME", cases[i].xdg, 1);
        setenv("HOME", cases[i].home, 1);
        char *d = qt_ledger_default_dir();
        cr_assert_not_null(d);
        cr_assert_str_eq(d, cases[i].want);
        free(d);
    }
    unsetenv("XDG_STATE_HOME");
    char *d = qt_ledger_default_dir();
    cr_assert_str_eq(d, "/home/u/.local/state/quotatop");
    free(d);
}

Test(ledger, open_errors_name_the_path)
{
    char dir[64], file[128], sub[160], err[400];
    make_tmp(dir, sizeof dir);
    /* A directory that cannot be created: its parent is a regular file. */
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs("not a directory\n", f);
    fclose(f);
    snprintf(sub, sizeof sub, "%s/state", file);
    err[0] = '\0';
    cr_assert_null(qt_ledger_open(sub, err, sizeof err));
    cr_assert_not_null(strstr(err, sub), "%s", err);
    cr_assert_null(qt_ledger_open("", err, sizeof err));
    cr_assert_null(qt_ledger_open(NULL, NULL, 0));
    unlink(file);
    /* A file that is not a database. */
    snprintf(file, sizeof file, "%s/ledger.sqlite3", dir);
    f = fopen(file, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database at all. ", f);
    fclose(f);
    err[0] = '\0';
    cr_assert_null(qt_ledger_open(dir, err, sizeof err));
    cr_assert_not_null(strstr(err, file), "%s", err);
    remove_dir(dir);
}

Test(ledger, locked_database_fails_then_recovers, .timeout = 30)
{
    char dir[64];
    make_tmp(dir, sizeof dir);
    qt_ledger *l = open_ok(dir);
    cr_assert_eq(rec(l, NOW_MS, "w", "m", "m", 1, 1, 1.0), QT_OK);
    /* Another connection (as another process would) holds the write lock. */
    sqlite3 *other = NULL;
    cr_assert_eq(sqlite3_open(qt_ledger_path(l), &other), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(rec(l, NOW_MS, "w", "m", "m", 1, 1, 2.0), QT_ERR_TIMEOUT);
    char msg[300];
    qt_ledger_errmsg(l, msg, sizeof msg);
    cr_assert_not_null(strstr(msg, "locked"), "%s", msg);
    cr_assert_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    /* Usable again; the failed call was not written. */
    cr_assert_eq(rec(l, NOW_MS, "w", "m", "m", 1, 1, 4.0), QT_OK);
    double usd = 0;
    cr_assert_eq(qt_ledger_day_spend(l, TODAY, &usd), QT_OK);
    cr_assert_float_eq(usd, 5.0, 1e-9);
    qt_ledger_close(l);
    remove_dir(dir);
}

/* ---- 4 threads record at once */

#define THREADS 4
#define PER_THREAD 250

typedef struct {
    qt_ledger *l;
    pthread_barrier_t *bar;
    int id;
    int failed;
} rec_arg;

static void *recorder(void *p)
{
    rec_arg *a = p;
    char wf[16], job[32];
    snprintf(wf, sizeof wf, "wf%d", a->id);
    pthread_barrier_wait(a->bar);
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(job, sizeof job, "t%d-%d", a->id, i);
        qt_ledger_call c = { .wall_ms = NOW_MS + (uint64_t)i, .workflow = wf, .model = "m",
                             .model_used = "m", .provider = "p", .job_id = job,
                             .prompt_tokens = 3, .completion_tokens = 2, .cost_usd = 0.001 };
        if (qt_ledger_record(a->l, &c) != QT_OK)
            a->failed++;
        if (i % 50 == 0) {   /* readers interleave with the writers */
            double usd;
            if (qt_ledger_day_spend(a->l, TODAY, &usd) != QT_OK)
                a->failed++;
        }
    }
    return NULL;
}

Test(ledger, threads_concurrent_records_count_exactly, .timeout = 60)
{
    char dir[64];
    make_tmp(dir, sizeof dir);
    qt_ledger *l = open_ok(dir);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, THREADS);
    rec_arg args[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (rec_arg){ .l = l, .bar = &bar, .id = i };
        cr_assert_eq(pthread_create(&t[i], NULL, recorder, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(args[i].failed, 0, "thread %d", i);
    qt_ledger_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(qt_ledger_query(l, QT_LEDGER_BY_WORKFLOW, 1, NOW_MS, &rows, &n), QT_OK);
    cr_assert_eq(n, (size_t)THREADS);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(rows[i].calls, (uint64_t)PER_THREAD, "%s", rows[i].name);
        cr_assert_eq(rows[i].prompt_tokens, (uint64_t)(3 * PER_THREAD));
        total += rows[i].calls;
    }
    qt_ledger_rows_free(rows, n);
    cr_assert_eq(total, (uint64_t)(THREADS * PER_THREAD));
    double usd = 0;
    cr_assert_eq(qt_ledger_day_spend(l, TODAY, &usd), QT_OK);
    cr_assert_float_eq(usd, THREADS * PER_THREAD * 0.001, 1e-9);
    qt_ledger_close(l);
    remove_dir(dir);
}

/* Issue 12, defect 13: a refused call left the error empty, so the engine's
 * warning printed "()". The refusal now says why. */
Test(ledger, refusal_names_its_reason)
{
    char dir[64];
    make_tmp(dir, sizeof dir);
    qt_ledger *l = open_ok(dir);
    char msg[300] = "x";
    cr_assert_eq(rec(l, NOW_MS, "w", "m", "m", 1, 1, NAN), QT_ERR_INVALID);
    qt_ledger_errmsg(l, msg, sizeof msg);
    cr_expect(strstr(msg, "non-finite cost"), "reason: [%s]", msg);
    cr_assert_eq(rec(l, NOW_MS, "w", "m", "m", -4, 1, 0.1), QT_ERR_INVALID);
    qt_ledger_errmsg(l, msg, sizeof msg);
    cr_expect(strstr(msg, "negative token count"), "reason: [%s]", msg);
    cr_expect(strstr(msg, "prompt_tokens -4"), "reason: [%s]", msg);
    qt_ledger_close(l);
    remove_dir(dir);
}
