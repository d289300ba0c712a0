/* bench_queue.c: queue push+pop throughput and memory per queued job.
 *
 * DESIGN
 * 1. Memory: push 1,000,000 jobs (ids "job-NNNNNNN", 8 workflows, random
 *    priorities, a model name) into a queue and measure the heap
 *    growth with mallinfo2() (uordblks + hblkhd: small and mmapped blocks) and
 *    the RSS growth from /proc/self/statm; print bytes per queued job.
 * 2. Throughput: time the 1M pushes and then the 1M pops; print each rate and
 *    the push+pop pairs per second. Then a steady-state run (queue held at
 *    10k entries, push one / pop one). The queue has no lock of its own (the
 *    engine's mutex guards it).
 * Ids are prepared before timing so snprintf is not measured.
 * Build: make BUILD=build-q build-q/bench/bench_queue
 */
#include "quotatop/queue.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { N = 1000000, STEADY = 10000, STEADY_OPS = 2000000 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static size_t rss_bytes(void)
{
    long pages_total = 0, pages_rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_rss) != 2)
        pages_rss = 0;
    fclose(f);
    return (size_t)pages_rss * (size_t)sysconf(_SC_PAGESIZE);
}

static uint32_t rng = 2463534242u;
static uint32_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static const char *WF[8] = {"support", "nightly", "batch", "eval",
                            "agents", "ingest", "default", "search"};

static void run(int pass, char (*ids)[16], int measure_mem)
{
    (void)pass;
    size_t h0 = heap_bytes(), r0 = rss_bytes();
    qt_queue *q = qt_queue_new(30000);
    if (!q) {
        fprintf(stderr, "qt_queue_new failed\n");
        exit(1);
    }
    double t0 = now_s();
    for (int i = 0; i < N; i++) {
        qt_queue_job j = {.id = ids[i], .workflow = WF[i & 7], .model = "gpt-4o-mini",
                          .priority = 1 + (int)(xorshift() % 10), .est_tokens = 512,
                          .payload = ids[i]};
        if (qt_queue_push(q, &j, (uint64_t)i / 8) != QT_OK) {
            fprintf(stderr, "push failed at %d\n", i);
            exit(1);
        }
    }
    double t1 = now_s();
    if (measure_mem) {
        size_t h1 = heap_bytes(), r1 = rss_bytes();
        printf("memory at %d queued jobs: heap %.1f bytes/job (mallinfo2), "
               "RSS %.1f bytes/job (/proc/self/statm)\n",
               N, (double)(h1 - h0) / N, (double)(r1 - r0) / N);
    }
    void *p;
    int popped = 0;
    while (qt_queue_pop(q, &p, NULL) == QT_OK)
        popped++;
    double t2 = now_s();
    if (popped != N) {
        fprintf(stderr, "popped %d of %d\n", popped, N);
        exit(1);
    }
    printf("%-8s 1M push: %.2f M/s   1M pop: %.2f M/s   push+pop: %.2f M pairs/s\n",
           "queue", N / (t1 - t0) / 1e6, N / (t2 - t1) / 1e6,
           N / (t2 - t0) / 1e6);
    qt_queue_free(q);
}

static void steady(char (*ids)[16])
{
    qt_queue *q = qt_queue_new(30000);
    for (int i = 0; i < STEADY; i++) {
        qt_queue_job j = {.id = ids[i], .workflow = WF[i & 7],
                          .priority = 1 + (int)(xorshift() % 10)};
        qt_queue_push(q, &j, 0);
    }
    double t0 = now_s();
    int next = STEADY;
    for (int k = 0; k < STEADY_OPS; k++) {
        qt_queue_view v;
        void *p;
        qt_queue_pop(q, &p, &v);
        qt_queue_job j = {.id = ids[next], .workflow = WF[next & 7],
                          .priority = 1 + (int)(xorshift() % 10)};
        qt_queue_push(q, &j, (uint64_t)k);
        next = next + 1 == N ? 0 : next + 1;
        /* ids recycle: the id popped long ago is free again by then */
    }
    double t1 = now_s();
    printf("steady   10k queued, pop+push with view: %.2f M pairs/s\n",
           STEADY_OPS / (t1 - t0) / 1e6);
    qt_queue_free(q);
}

int main(void)
{
    char (*ids)[16] = malloc((size_t)N * sizeof *ids);
    if (!ids)
        return 1;
    for (int i = 0; i < N; i++)
        snprintf(ids[i], sizeof ids[i], "job-%07d", i);
    run(0, ids, 1);
    run(0, ids, 0);
    steady(ids);
    free(ids);
    return 0;
}
