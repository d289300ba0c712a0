/* test_trace_threads.c: workers finish jobs at once and the trace keeps
 * every line whole, across rotations. Named threads_* so `make tsan` runs
 * it under ThreadSanitizer (through the Criterion stand-in: cr_assert_*
 * only). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "quotatop/trace.h"

typedef struct {
    qt_trace *t;
    pthread_barrier_t *go;
} rec_arg;

static void *recorder(void *p)
{
    rec_arg *a = p;
    qt_job j = { .id = "c", .workflow = "w", .model = "m", .priority = 5, .prompt_chars = 10,
                 .n_messages = 1 };
    qt_result r = { .id = "c", .workflow = "w", .status = QT_STATUS_OK, .model = "m",
                    .model_used = "m", .provider = "p", .attempts = 1 };
    pthread_barrier_wait(a->go);
    for (int i = 0; i < 500; i++)
        qt_trace_record(a->t, &j, &r, NULL);
    return NULL;
}

Test(trace, threads_record_at_once_every_line_whole, .timeout = 30)
{
    char tmpl[] = "/tmp/qt-trace-th.XXXXXX";
    char *dir = mkdtemp(tmpl);
    cr_assert_not_null(dir);
    qt_trace_opts o = { .dir = dir, .command = "run", .max_bytes = 200000, .keep = 20 };
    char err[256];
    qt_trace *t = qt_trace_open(&o, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 4);
    pthread_t th[4];
    rec_arg a = { t, &go };
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, recorder, &a);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    cr_assert_eq(qt_trace_lines(t), 2000);
    qt_trace_close(t);
    long jobs = 0, bad = 0;
    for (int i = 0; i <= 20; i++) {
        char p[400];
        if (i == 0)
            snprintf(p, sizeof p, "%s/trace.jsonl", dir);
        else
            snprintf(p, sizeof p, "%s/trace.%d.jsonl", dir, i);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        char line[4096];
        while (fgets(line, sizeof line, f)) {
            cJSON *l = cJSON_Parse(line);
            bad += l == NULL;
            if (l && !cJSON_GetObjectItem(l, "quotatop_trace"))
                jobs++;
            cJSON_Delete(l);
        }
        fclose(f);
        unlink(p);
    }
    rmdir(dir);
    cr_assert_eq(bad, 0, "every line is whole JSON");
    cr_assert_eq(jobs, 2000, "every line kept across rotations");
}
