/* bench_redis.c: shared admission decisions through Redis (backend.kind
 * "redis"): decisions per second and p50/p99 decision latency for one
 * process and for three, Redis calls per admission, and `redis-cli
 * --latency` on the same machine for reference, in the same run.
 *
 *   build/bench/bench_redis [SECONDS] [IN_FLIGHT]      (default 3, 16)
 *
 * A redis-server is started on a free loopback port (killed by PID at the
 * end). Each "process" (this one, or 3 forked children) runs one qt_backend
 * on a qt_loop and keeps IN_FLIGHT admissions outstanding; every admitted
 * lease is committed at once (so a decision is admit + commit, as the engine
 * does). Requests name 2 rate keys (model, provider: RPM/TPM high enough that
 * every admit succeeds, the GCRA arithmetic still runs) and 2 budgets (day,
 * workflow). A second pass with IN_FLIGHT 1 gives the latency of a single
 * decision without queueing. Calls per admission come from Redis's own
 * INFO commandstats (EVALSHA calls / admissions, heartbeats included).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "quotatop/backend.h"
#include "quotatop/loop.h"

#define MAX_SAMPLES 2000000

typedef struct {
    qt_loop *loop;
    qt_backend *b;
    uint64_t end_ns;
    int in_flight, target;
    uint64_t admits, others;
    double *lat_us;
    size_t n_lat;
    qt_backend_lease *leases;
    uint64_t *t0;
} bench;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fill(qt_backend_lease *l)
{
    memset(l, 0, sizeof *l);
    snprintf(l->workflow, sizeof l->workflow, "bench");
    l->n_rate = 2;
    snprintf(l->rate[0].name, sizeof l->rate[0].name, "model:m");
    l->rate[0].rpm = 1e9;
    l->rate[0].tpm = 1e12;
    l->rate[0].est_tokens = 100;
    snprintf(l->rate[1].name, sizeof l->rate[1].name, "provider:p");
    l->rate[1].rpm = 1e9;
    l->rate[1].est_tokens = 100;
    l->n_budget = 2;
    snprintf(l->budget[0].name, sizeof l->budget[0].name, "day");
    l->budget[0].per_day = 1;
    l->budget[0].limit_usd = 1e8;
    l->budget[0].est_usd = 0.001;
    snprintf(l->budget[1].name, sizeof l->budget[1].name, "wf:bench");
    l->budget[1].per_day = 1;
    l->budget[1].est_usd = 0.001;
}

static void issue(bench *B, int slot);

static void on_admit(void *ud, qt_backend_lease *l, const qt_backend_decision *d)
{
    bench *B = ud;
    int slot = (int)(l - B->leases);
    uint64_t now = mono_ns();
    if (d->verdict == QT_BACKEND_ADMITTED) {
        B->admits++;
        if (B->n_lat < MAX_SAMPLES)
            B->lat_us[B->n_lat++] = (double)(now - B->t0[slot]) / 1000.0;
        qt_backend_commit(B->b, l, 100, 0.0005);
    } else {
        B->others++;
    }
    B->in_flight--;
    if (now < B->end_ns)
        issue(B, slot);
    else if (B->in_flight == 0)
        qt_loop_stop(B->loop);
}

static void issue(bench *B, int slot)
{
    fill(&B->leases[slot]);
    B->t0[slot] = mono_ns();
    B->in_flight++;
    qt_backend_admit(B->b, &B->leases[slot], on_admit, B);
}

static void start(void *ud)
{
    bench *B = ud;
    if (!qt_backend_up(B->b)) {   /* wait for the connection first */
        qt_loop_timer_add(B->loop, qt_loop_now_ms(B->loop) + 5, start, B);
        return;
    }
    B->end_ns = mono_ns() + B->end_ns;
    for (int i = 0; i < B->target; i++)
        issue(B, i);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One process's pass: writes "admits/s p50 p99 others" into out. */
static void run_pass(const char *url, double secs, int target, char *out, size_t n)
{
    bench B;
    memset(&B, 0, sizeof B);
    B.loop = qt_loop_new(NULL);
    static const char *keys[] = { "model:m", "provider:p" };
    qt_backend_opts o = { .url = url, .prefix = "bench", .lease_ms = 10000, .timeout_ms = 2000,
                          .mode = "run", .view_keys = keys, .n_view_keys = 2 };
    char err[160];
    B.b = qt_backend_new(B.loop, &o, err, sizeof err);
    if (!B.b) {
        snprintf(out, n, "error %s", err);
        return;
    }
    B.target = target;
    B.lat_us = malloc(sizeof *B.lat_us * MAX_SAMPLES);
    B.leases = calloc((size_t)target, sizeof *B.leases);
    B.t0 = calloc((size_t)target, sizeof *B.t0);
    B.end_ns = (uint64_t)(secs * 1e9);
    qt_loop_timer_add(B.loop, qt_loop_now_ms(B.loop), start, &B);
    uint64_t t0 = mono_ns();
    qt_loop_run(B.loop);
    double el = (double)(mono_ns() - t0) / 1e9;
    qsort(B.lat_us, B.n_lat, sizeof *B.lat_us, cmp);
    double p50 = B.n_lat ? B.lat_us[B.n_lat / 2] : 0, p99 = B.n_lat ? B.lat_us[B.n_lat * 99 / 100] : 0;
    snprintf(out, n, "%.0f %.1f %.1f %llu", (double)B.admits / el, p50, p99, (unsigned long long)B.others);
    qt_backend_free(B.b);
    qt_loop_free(B.loop);
    free(B.lat_us);
    free(B.leases);
    free(B.t0);
}

/* nproc passes in parallel (forked), each printing its line into a pipe. */
static void run_fleet(const char *url, double secs, int target, int nproc)
{
    int fds[8][2];
    pid_t pids[8];
    for (int i = 0; i < nproc; i++) {
        if (pipe(fds[i]) != 0)
            return;
        pids[i] = fork();
        if (pids[i] == 0) {
            char line[200];
            run_pass(url, secs, target, line, sizeof line);
            if (write(fds[i][1], line, strlen(line)) < 0)
                _exit(1);
            _exit(0);
        }
        close(fds[i][1]);
    }
    double total = 0, p50max = 0, p99max = 0;
    for (int i = 0; i < nproc; i++) {
        char line[200] = "";
        ssize_t r = read(fds[i][0], line, sizeof line - 1);
        line[r > 0 ? r : 0] = 0;
        close(fds[i][0]);
        waitpid(pids[i], NULL, 0);
        double rate = 0, p50 = 0, p99 = 0;
        sscanf(line, "%lf %lf %lf", &rate, &p50, &p99);
        total += rate;
        if (p50 > p50max) p50max = p50;
        if (p99 > p99max) p99max = p99;
    }
    printf("  %d process%s, %2d in flight each: %8.0f decisions/s   p50 %7.1f us   p99 %7.1f us%s\n",
           nproc, nproc > 1 ? "es" : "  ", target, total, p50max, p99max,
           nproc > 1 ? "   (latency: worst process)" : "");
}

static long long evalsha_calls(int port)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    long long n = -1;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "INFO commandstats");
        const char *p = r && r->str ? strstr(r->str, "cmdstat_evalsha:calls=") : NULL;
        n = p ? atoll(p + 22) : 0;
        freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return n;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 3;
    int target = argc > 2 ? atoi(argv[2]) : 16;
    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        printf("bench_redis: redis-server not installed, skipped\n");
        return 0;
    }
    int port = 20000 + (int)(getpid() % 12000);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    pid_t rp = fork();
    if (rp == 0) {
        int dn = open("/dev/null", O_RDWR);
        dup2(dn, 1);
        dup2(dn, 2);
        execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    for (int i = 0; i < 200 && evalsha_calls(port) < 0; i++)
        usleep(10000);
    printf("bench_redis: shared admissions through redis-server 7 on loopback (%.0f s per pass)\n", secs);
    printf("  (a decision = admit + commit: 2 keys x RPM/TPM, 2 budgets, leases)\n");
    long long c0 = evalsha_calls(port);
    char line[200];
    run_pass(url, secs, 1, line, sizeof line);
    double rate, p50, p99;
    sscanf(line, "%lf %lf %lf", &rate, &p50, &p99);
    printf("  1 process,    1 in flight:      %8.0f decisions/s   p50 %7.1f us   p99 %7.1f us\n", rate, p50, p99);
    long long c1 = evalsha_calls(port);
    double admits1 = rate * secs;
    run_fleet(url, secs, target, 1);
    run_fleet(url, secs, 1, 3);
    run_fleet(url, secs, target, 3);
    printf("  Redis calls per admission (1-in-flight pass, commit and heartbeats included): %.2f\n",
           admits1 > 0 ? (double)(c1 - c0) / admits1 : 0);
    printf("  (the engine's gate: 1 admit per admission, + 1 commit per call, + 1 heartbeat/s)\n");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "timeout 3 redis-cli -p %d --latency --raw 2>/dev/null | tail -1", port);
    FILE *f = popen(cmd, "r");
    char lat[128] = "";
    if (f && fgets(lat, sizeof lat, f))
        lat[strcspn(lat, "\n")] = 0;
    if (f)
        pclose(f);
    printf("  redis-cli --latency (min max avg samples, ms): %s\n", lat[0] ? lat : "n/a");
    kill(rp, SIGKILL);
    waitpid(rp, NULL, 0);
    return 0;
}
