/* test_trace.c: the trace writer: a job's line carries sizes, times and the
 * outcome but never the prompt text; the header names the config and its
 * hash; the file rotates at its bound and keeps only `keep` old files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "quotatop/trace.h"

static qt_job *make_job(const char *id, const char *text)
{
    char line[512];
    snprintf(line, sizeof line,
             "{\"id\": \"%s\", \"workflow\": \"nightly\", \"priority\": 3, \"model\": \"m\","
             " \"messages\": [{\"role\": \"user\", \"content\": \"%s\"}], \"max_tokens\": 64}",
             id, text);
    qt_job *job = calloc(1, sizeof *job);
    job->id = strdup(id);
    job->workflow = strdup("nightly");
    job->model = strdup("m");
    job->priority = 3;
    job->max_tokens = 64;
    job->prompt_chars = strlen(text);
    job->n_messages = 1;
    job->body = cJSON_Parse(line);
    job->enqueued_ms = 1000;
    return job;
}

static void free_job(qt_job *j)
{
    cJSON_Delete(j->body);
    free(j->id);
    free(j->workflow);
    free(j->model);
    free(j);
}

static qt_result ok_result(const qt_job *j)
{
    qt_result r = { .id = j->id, .workflow = j->workflow, .status = QT_STATUS_OK, .model = j->model,
                    .model_used = "m2", .provider = "p", .attempts = 2, .prompt_tokens = 11,
                    .completion_tokens = 40, .cost_usd = 0.5, .queued_ms = 250, .latency_ms = 800,
                    .content = "the secret answer" };
    return r;
}

Test(trace, line_has_sizes_and_outcome_but_no_text)
{
    qt_job *j = make_job("j7", "top secret prompt text");
    qt_result r = ok_result(j);
    char *s = qt_trace_format(j, &r, NULL, 50000, 3000);
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "secret"), "no prompt or answer text in: %s", s);
    cJSON *o = cJSON_Parse(s);
    cr_assert_not_null(o, "a JSON line: %s", s);
    cr_expect_eq(cJSON_GetObjectItem(o, "t")->valuedouble, 48000, "arrival = result time - age");
    cr_expect_str_eq(cJSON_GetObjectItem(o, "wf")->valuestring, "nightly");
    cr_expect_eq(cJSON_GetObjectItem(o, "prio")->valueint, 3);
    cr_expect_eq(cJSON_GetObjectItem(o, "chars")->valueint, 22);
    cr_expect_eq(cJSON_GetObjectItem(o, "max_tokens")->valueint, 64);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "status")->valuestring, "ok");
    cr_expect_str_eq(cJSON_GetObjectItem(o, "model_used")->valuestring, "m2");
    cr_expect_eq(cJSON_GetObjectItem(o, "wait_ms")->valueint, 250);
    cr_expect_eq(cJSON_GetObjectItem(o, "completion")->valueint, 40);
    cr_expect(cJSON_GetObjectItem(o, "est_prompt")->valueint >= 6);
    cJSON_Delete(o);
    free(s);
    free_job(j);
}

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/qt-trace.XXXXXX";
    char *d = mkdtemp(tmpl);
    cr_assert_not_null(d);
    char *out = malloc(strlen(d) + 8);
    sprintf(out, "%s/state", d);   /* created by the writer */
    return out;
}

static long file_lines(const char *path, long *bytes)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long n = 0, b = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        b++;
        n += c == '\n';
    }
    fclose(f);
    if (bytes)
        *bytes = b;
    return n;
}

Test(trace, header_names_config_and_hash_then_one_line_per_job)
{
    char *dir = tmpdir();
    char cfgpath[300];
    snprintf(cfgpath, sizeof cfgpath, "%s.cfg.json", dir);
    FILE *f = fopen(cfgpath, "w");
    fputs("{}", f);
    fclose(f);
    qt_trace_opts o = { .dir = dir, .config_path = cfgpath, .command = "run" };
    char err[256];
    qt_trace *t = qt_trace_open(&o, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    qt_job *j = make_job("a", "hello");
    qt_result r = ok_result(j);
    qt_trace_record(t, j, &r, NULL);
    qt_trace_record(t, j, &r, NULL);
    r.status = QT_STATUS_INVALID;
    qt_trace_record(t, j, &r, NULL);           /* invalid lines are not replayable */
    cr_expect_eq(qt_trace_lines(t), 2);
    qt_trace_close(t);
    char p[400];
    snprintf(p, sizeof p, "%s/trace.jsonl", dir);
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700, "state_dir is private");
    cr_expect_eq(file_lines(p, NULL), 3, "a header and two jobs");
    f = fopen(p, "r");
    char head[2048];
    cr_assert_not_null(fgets(head, sizeof head, f));
    fclose(f);
    cJSON *h = cJSON_Parse(head);
    cr_assert_not_null(h);
    cr_expect_eq(cJSON_GetObjectItem(h, "quotatop_trace")->valueint, QT_TRACE_VERSION);
    cr_expect_str_eq(cJSON_GetObjectItem(h, "config")->valuestring, cfgpath);
    /* FNV-1a 64 of "{}" */
    char want[17];
    uint64_t hv = QT_HASH_SEED;
    hv = (hv ^ '{') * 1099511628211ull;
    hv = (hv ^ '}') * 1099511628211ull;
    snprintf(want, sizeof want, "%016llx", (unsigned long long)hv);
    cr_expect_str_eq(cJSON_GetObjectItem(h, "config_fnv1a")->valuestring, want);
    cJSON_Delete(h);
    free_job(j);
    free(dir);
}

Test(trace, rotates_at_its_bound_and_keeps_only_keep_files)
{
    char *dir = tmpdir();
    qt_trace_opts o = { .dir = dir, .command = "run", .max_bytes = 4096, .keep = 2 };
    char err[256];
    qt_trace *t = qt_trace_open(&o, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    qt_job *j = make_job("a", "hello");
    qt_result r = ok_result(j);
    for (int i = 0; i < 200; i++)
        qt_trace_record(t, j, &r, NULL);
    cr_expect_eq(qt_trace_lines(t), 200);
    qt_trace_close(t);
    char p[400];
    long bytes = 0;
    for (int i = 0; i <= 2; i++) {
        if (i == 0)
            snprintf(p, sizeof p, "%s/trace.jsonl", dir);
        else
            snprintf(p, sizeof p, "%s/trace.%d.jsonl", dir, i);
        cr_expect_geq(file_lines(p, &bytes), 2, "%s holds a header and jobs", p);
        cr_expect_leq(bytes, 4096, "%s stays within the bound", p);
        FILE *f = fopen(p, "r");
        char head[64] = "";
        cr_assert_not_null(f);
        cr_expect_not_null(fgets(head, sizeof head, f));
        fclose(f);
        cr_expect(strstr(head, "quotatop_trace") != NULL, "every file starts with the header");
    }
    snprintf(p, sizeof p, "%s/trace.3.jsonl", dir);
    cr_expect_eq(access(p, F_OK), -1, "no more than keep rotated files");
    free_job(j);
    free(dir);
}

/* Two processes sharing one state_dir (two handles here: each has its own
 * descriptor, as two processes would): the bound is the file's, so no file
 * grows to twice the bound, and a rotation by one is not repeated by the
 * other (which would leave a near-empty rotated file and drop an old one). */
Test(trace, two_writers_sharing_a_dir_keep_the_bound)
{
    char *dir = tmpdir();
    qt_trace_opts o = { .dir = dir, .command = "run", .max_bytes = 4096, .keep = 2 };
    char err[256];
    qt_trace *a = qt_trace_open(&o, err, sizeof err);
    qt_trace *b = qt_trace_open(&o, err, sizeof err);
    cr_assert(a && b, "%s", err);
    qt_job *j = make_job("a", "hello");
    qt_result r = ok_result(j);
    for (int i = 0; i < 300; i++) {
        qt_trace_record(a, j, &r, NULL);
        qt_trace_record(b, j, &r, NULL);
    }
    qt_trace_close(a);
    qt_trace_close(b);
    char p[400];
    snprintf(p, sizeof p, "%s/trace.jsonl", dir);
    for (int i = 0; i <= 2; i++) {
        long bytes = 0;
        if (i)
            snprintf(p, sizeof p, "%s/trace.%d.jsonl", dir, i);
        cr_expect_geq(file_lines(p, &bytes), 2, "%s holds a header and jobs", p);
        cr_expect_leq(bytes, 4096 + 2 * 400, "%s: %ld bytes, within the bound and a line per writer",
                      p, bytes);
        if (i)
            cr_expect_geq(bytes, 4096 / 2, "%s: %ld bytes, a whole rotation (not rotated twice)", p, bytes);
    }
    snprintf(p, sizeof p, "%s/trace.3.jsonl", dir);
    cr_expect_eq(access(p, F_OK), -1, "no more than keep rotated files");
    free_job(j);
    free(dir);
}

Test(trace, unwritable_dir_is_reported_not_fatal)
{
    qt_trace_opts o = { .dir = "/proc/qt-no/such", .command = "run" };
    char err[256] = "";
    cr_expect_null(qt_trace_open(&o, err, sizeof err));
    cr_expect_neq(err[0], '\0');
}

Test(trace, attempts_and_arrival_come_from_the_engine_extra)
{
    qt_job *j = make_job("j8", "hi");
    qt_result r = ok_result(j);
    qt_attempt_view at[2] = {
        { .model = "m", .provider = "p", .status = 429, .total_ms = 5, .retry_after_ms = 1500,
          .error = "429 rate_limit: secret detail" },
        { .model = "m2", .provider = "p", .status = 200, .ttfb_ms = 30, .total_ms = 800,
          .prompt_tokens = 11, .completion_tokens = 40, .at_ms = 1600, .limit_requests = 500,
          .limit_tokens = 30000 },
    };
    qt_result_extra x = { .http_status = 200, .attempts = at, .n_attempts = 2,
                          .enqueued_wall_ms = 42000, .queue_wait_ms = 300 };
    char *s = qt_trace_format(j, &r, &x, 50000, 3000);
    cJSON *o = cJSON_Parse(s);
    cr_assert_not_null(o);
    cr_expect_eq(cJSON_GetObjectItem(o, "t")->valuedouble, 42000);
    cr_expect_eq(cJSON_GetObjectItem(o, "wait_ms")->valueint, 300);
    cJSON *a = cJSON_GetObjectItem(o, "attempts");
    cr_assert_eq(cJSON_GetArraySize(a), 2);
    cJSON *a0 = cJSON_GetArrayItem(a, 0), *a1 = cJSON_GetArrayItem(a, 1);
    cr_expect_eq(cJSON_GetObjectItem(a0, "status")->valueint, 429);
    cr_expect_eq(cJSON_GetObjectItem(a0, "retry_after_ms")->valueint, 1500);
    cr_expect_str_eq(cJSON_GetObjectItem(a1, "model")->valuestring, "m2");
    cr_expect_eq(cJSON_GetObjectItem(a1, "total_ms")->valueint, 800);
    cr_expect_eq(cJSON_GetObjectItem(a1, "completion")->valueint, 40);
    cr_expect_eq(cJSON_GetObjectItem(a1, "at_ms")->valueint, 1600, "when it was sent, after the arrival");
    cr_expect_eq(cJSON_GetObjectItem(a1, "limit_rpm")->valueint, 500, "the limits its headers announced");
    cr_expect_eq(cJSON_GetObjectItem(a1, "limit_tpm")->valueint, 30000);
    cr_expect_null(cJSON_GetObjectItem(a0, "limit_rpm"), "none announced: not written");
    cr_expect_null(strstr(s, "secret"), "error texts are not written: %s", s);
    cJSON_Delete(o);
    free(s);
    free_job(j);
}
