/* bench_limiter.c: limiter decisions per second, 1 thread and 8 threads.
 *
 * Each request names a model key and its provider key (16 models over 4
 * providers, as the engine registers them), reserves its estimate and, with
 * 8 requests in flight per thread, commits the oldest with a smaller actual
 * (so the refund path runs). Time is fake: it advances 1 ms every 64
 * requests. "admit" runs limits the load stays under (every reserve admits);
 * "saturated" runs limits 20x below the offered load (most reserves are
 * refused with an earliest time). The 8-thread figures share one limiter
 * behind one pthread mutex, locked once per call, as the engine does.
 *
 * Prints pairs/s (one reserve + one commit) and decisions/s (every call).
 * Build and run: make BUILD=build-lim build-lim/bench/bench_limiter
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "quotatop/limiter.h"

#define MODELS 16
#define PROVIDERS 4
#define INFLIGHT 8
#define RUN_S 2.0

typedef struct {
    qt_limiter *l;
    int model[MODELS], prov[PROVIDERS];
    pthread_mutex_t mu;
    uint64_t now_ms;          /* shared fake time (under mu when threaded) */
    uint64_t ticks;           /* requests since the last ms step */
    pthread_barrier_t start;
    int threaded;
} bench;

typedef struct {
    bench *b;
    unsigned seed;
    uint64_t reserves, admits, commits;
    double secs;
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void lock(bench *b) { if (b->threaded) pthread_mutex_lock(&b->mu); }
static void unlock(bench *b) { if (b->threaded) pthread_mutex_unlock(&b->mu); }

static void *run(void *arg)
{
    worker *w = arg;
    bench *b = w->b;
    qt_limiter_res ring[INFLIGHT] = {0};
    int head = 0;
    if (b->threaded)
        pthread_barrier_wait(&b->start);
    double t0 = now_s(), t1 = t0;
    for (uint64_t i = 0;; i++) {
        if ((i & 1023) == 0 && (t1 = now_s()) - t0 >= RUN_S)
            break;
        w->seed = w->seed * 1103515245u + 12345u;
        int m = (int)((w->seed >> 16) % MODELS);
        int keys[2] = {b->model[m], b->prov[m % PROVIDERS]};
        int64_t est = 200 + (int64_t)((w->seed >> 8) % 800);
        qt_limiter_res *slot = &ring[head];
        head = (head + 1) % INFLIGHT;

        lock(b);
        if (slot->active) {                 /* commit the oldest, 70% used */
            qt_limiter_commit(b->l, slot, slot->tokens * 7 / 10, b->now_ms);
            w->commits++;
        }
        if (++b->ticks == 64) {
            b->ticks = 0;
            b->now_ms++;
        }
        uint64_t e;
        if (qt_limiter_reserve(b->l, keys, 2, est, b->now_ms, slot, &e) == QT_OK)
            w->admits++;
        w->reserves++;
        unlock(b);
    }
    lock(b);
    for (int i = 0; i < INFLIGHT; i++)
        if (ring[i].active)
            qt_limiter_release(b->l, &ring[i], b->now_ms);
    unlock(b);
    w->secs = t1 - t0;
    return NULL;
}

static void scenario(const char *name, double scale, int nthreads)
{
    bench b = {0};
    b.l = qt_limiter_new(QT_LIMITER_DEFAULT_BURST_MS);
    if (!b.l) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    /* Offered load: 64 requests per fake ms = 3.84M rpm, ~2.3G tpm in all.
     * scale 2 leaves room everywhere; scale 0.05 refuses most. */
    double rpm = 64 * 60000.0 * scale, tpm = rpm * 600;
    char kn[32];
    for (int i = 0; i < PROVIDERS; i++) {
        snprintf(kn, sizeof kn, "provider%d", i);
        b.prov[i] = qt_limiter_add_key(b.l, kn, rpm / PROVIDERS, tpm / PROVIDERS, 0);
    }
    for (int i = 0; i < MODELS; i++) {
        snprintf(kn, sizeof kn, "model%d", i);
        b.model[i] = qt_limiter_add_key(b.l, kn, rpm / MODELS * 2, tpm / MODELS * 2, 0);
    }
    b.threaded = nthreads > 1;
    pthread_mutex_init(&b.mu, NULL);
    pthread_barrier_init(&b.start, NULL, (unsigned)nthreads);
    worker w[8] = {0};
    pthread_t th[8];
    for (int i = 0; i < nthreads; i++) {
        w[i].b = &b;
        w[i].seed = 1234u + (unsigned)i;
    }
    if (nthreads == 1) {
        run(&w[0]);
    } else {
        for (int i = 0; i < nthreads; i++)
            pthread_create(&th[i], NULL, run, &w[i]);
        for (int i = 0; i < nthreads; i++)
            pthread_join(th[i], NULL);
    }
    uint64_t res = 0, adm = 0, com = 0;
    double secs = 0;
    for (int i = 0; i < nthreads; i++) {
        res += w[i].reserves;
        adm += w[i].admits;
        com += w[i].commits;
        if (w[i].secs > secs)
            secs = w[i].secs;
    }
    printf("%-10s %d thread%s: %6.2f M reserve+commit pairs/s  %6.2f M decisions/s  "
           "(%.1f%% admitted, %.2f s, %.0f fake s)\n",
           name, nthreads, nthreads > 1 ? "s" : " ", (double)com / secs / 1e6,
           (double)(res + com) / secs / 1e6, 100.0 * (double)adm / (double)res, secs,
           (double)b.now_ms / 1000);
    pthread_barrier_destroy(&b.start);
    pthread_mutex_destroy(&b.mu);
    qt_limiter_free(b.l);
}

int main(void)
{
    scenario("admit", 2.0, 1);
    scenario("admit", 2.0, 8);
    scenario("saturated", 0.05, 1);
    scenario("saturated", 0.05, 8);
    return 0;
}
