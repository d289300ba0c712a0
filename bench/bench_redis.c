/* bench_redis.c: shared admission decisions through Redis (backend.kind
 * "redis"): decisions per second and p50/p99 decision latency for one
 * process and for three, Redis calls per admission, and `redis-cli
 * --latency` on the same machine for reference, in the same run.
 *
 *   build/bench/bench_redis [SECONDS] [IN_FLIGHT]      (default 3, 16)
 *
 * A redis-server is started on a free loopback port (killed by PID at the
 * end). Two layers are measured; each "process" is this one or one of 3
 * forked children, keeping IN_FLIGHT admissions outstanding:
 *  - the backend (backend.h) on a qt_loop: every admitted lease is
 *    committed at once (a decision = admit + commit, as the engine does);
 *  - the engine's path (backend_gate.h): asks from a "job loop" thread, the
 *    gate and the backend's own loop thread, the answer posted back to the
 *    job loop, which commits (after the slot's delay, on a timer, when the
 *    fleet took one ahead) and asks again; a WAIT asks again after its
 *    time. Keys without limits (asks pipelined), a limited key whose limit
 *    does not bind (a window of asks per key and process), and a binding
 *    limit shared by 3 processes (the calls per admission that pacing
 *    costs).
 * Requests name 2 rate keys (model, provider) and 2 budgets (day,
 * workflow). A pass with IN_FLIGHT 1 gives the latency of a single
 * decision without queueing. Calls per admission come from Redis's own
 * INFO commandstats (EVALSHA calls / admissions, heartbeats included) and,
 * for the gate, from the backend's counters (admit calls / admissions).
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

#include <pthread.h>

#include "quotatop/backend.h"
#include "quotatop/backend_gate.h"
#include "quotatop/config.h"
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

/* The line a forked pass wrote into its pipe (empty if none); closes the pipe
 * and reaps the child. */
static void child_line(int fd, pid_t pid, char *line, size_t len)
{
    ssize_t r = read(fd, line, len - 1);
    line[r > 0 ? r : 0] = 0;
    close(fd);
    waitpid(pid, NULL, 0);
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
        char line[200];
        child_line(fds[i][0], pids[i], line, sizeof line);
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


/* ---- the engine's path: through the gate ------------------------------- */

typedef struct gbench gbench;
typedef struct {
    gbench *G;
    qt_gate_ticket t;
    qt_gate_answer a;
    uint64_t t0;
} gcell;

struct gbench {
    qt_loop *loop;               /* the "job loop" */
    qt_backend_gate *g;
    uint64_t end_ns;
    int in_flight, target;
    uint64_t go, waits;
    double *lat_us;
    size_t n_lat;
    gcell *cells;
};

static void g_issue(gcell *c);

static void g_done(gcell *c)   /* job loop: the attempt is over */
{
    gbench *G = c->G;
    qt_backend_gate_commit(G->g, &c->t, 100, 0.0005);
    G->in_flight--;
    if (mono_ns() < G->end_ns)
        g_issue(c);
    else if (G->in_flight == 0)
        qt_loop_stop(G->loop);
}

static void g_again(void *ud)
{
    gcell *c = ud;
    c->G->in_flight--;
    if (mono_ns() < c->G->end_ns)
        g_issue(c);
    else if (c->G->in_flight == 0)
        qt_loop_stop(c->G->loop);
}

static void g_slot(void *ud) { g_done(ud); }

static void g_resume(void *ud)   /* job loop: the gate's answer */
{
    gcell *c = ud;
    gbench *G = c->G;
    uint64_t now = mono_ns();
    if (c->a.verdict == QT_GATE_GO) {
        G->go++;
        if (G->n_lat < MAX_SAMPLES)
            G->lat_us[G->n_lat++] = (double)(now - c->t0) / 1000.0;
        if (c->a.delay_ms > 0)
            qt_loop_timer_add(G->loop, qt_loop_now_ms(G->loop) + c->a.delay_ms, g_slot, c);
        else
            g_done(c);
    } else {
        G->waits++;
        qt_loop_timer_add(G->loop, qt_loop_now_ms(G->loop) + c->a.wait_ms, g_again, c);
    }
}

static void g_answer(void *ud, qt_gate_ticket *t, const qt_gate_answer *a)
{
    gcell *c = ud;
    (void)t;
    c->a = *a;
    qt_loop_post(c->G->loop, g_resume, c);
}

static void g_issue(gcell *c)
{
    c->t0 = mono_ns();
    c->G->in_flight++;
    qt_backend_gate_admit(c->G->g, 0, 0, "bench", 100, 0.0005, &c->t, g_answer, c);
}

static void g_start(void *ud)
{
    gbench *G = ud;
    G->end_ns = mono_ns() + G->end_ns;
    for (int i = 0; i < G->target; i++)
        g_issue(&G->cells[i]);
}

/* One process through the gate: "decisions/s p50 p99 waits admit_calls go". */
static void gate_pass(int port, const char *prefix, double rpm, double secs, int target, char *out, size_t n)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"providers\": {\"p\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:1\"}},"
             " \"models\": {\"m\": {\"providers\": [\"p\"], \"rpm\": %.0f}}, \"state_dir\": \"\","
             " \"budget\": {\"day_usd\": 100000000},"
             " \"backend\": {\"kind\": \"redis\", \"url\": \"redis://127.0.0.1:%d\", \"prefix\": \"%s\","
             " \"lease_ms\": 10000, \"timeout_ms\": 2000}}", rpm, port, prefix);
    qt_diag d = { 0 };
    qt_config *cfg = qt_config_parse(json, strlen(json), &d);
    qt_diag_free(&d);
    gbench G;
    memset(&G, 0, sizeof G);
    qt_backend_gate_opts o = { .cfg = cfg, .mode = "run" };
    char err[200] = "";
    G.g = cfg ? qt_backend_gate_new(&o, err, sizeof err) : NULL;
    if (!G.g) {
        snprintf(out, n, "error %s", err);
        qt_config_free(cfg);
        return;
    }
    for (int i = 0; i < 300; i++) {   /* connected */
        qt_backend_view v;
        qt_backend_gate_view(G.g, &v);
        if (v.up)
            break;
        usleep(10000);
    }
    G.loop = qt_loop_new(NULL);
    G.target = target;
    G.lat_us = malloc(sizeof *G.lat_us * MAX_SAMPLES);
    G.cells = calloc((size_t)target, sizeof *G.cells);
    for (int i = 0; i < target; i++)
        G.cells[i].G = &G;
    G.end_ns = (uint64_t)(secs * 1e9);
    qt_backend_view v0, v1;
    qt_backend_gate_view(G.g, &v0);
    qt_loop_post(G.loop, g_start, &G);
    uint64_t t0 = mono_ns();
    qt_loop_run(G.loop);   /* this thread is the job loop */
    double el = (double)(mono_ns() - t0) / 1e9;
    qt_backend_gate_view(G.g, &v1);
    qsort(G.lat_us, G.n_lat, sizeof *G.lat_us, cmp);
    double p50 = G.n_lat ? G.lat_us[G.n_lat / 2] : 0, p99 = G.n_lat ? G.lat_us[G.n_lat * 99 / 100] : 0;
    snprintf(out, n, "%.0f %.1f %.1f %llu %llu %llu", (double)G.go / el, p50, p99, (unsigned long long)G.waits,
             (unsigned long long)(v1.admits - v0.admits), (unsigned long long)G.go);
    qt_backend_gate_free(G.g);
    qt_loop_free(G.loop);
    qt_config_free(cfg);
    free(G.lat_us);
    free(G.cells);
}

/* nproc gate passes at once (forked). Prints one line; returns the total
 * decisions/s, the worst p50 into *p50 and calls per admission into *cpa. */
static double gate_fleet(int port, const char *label, const char *prefix, double rpm, double secs, int target,
                         int nproc, double *p50_out, double *cpa_out)
{
    int fds[8][2];
    pid_t pids[8];
    for (int i = 0; i < nproc; i++) {
        if (pipe(fds[i]) != 0)
            return 0;
        fflush(stdout);
        pids[i] = fork();
        if (pids[i] == 0) {
            char line[200];
            gate_pass(port, prefix, rpm, secs, target, line, sizeof line);
            if (write(fds[i][1], line, strlen(line)) < 0)
                _exit(1);
            _exit(0);
        }
        close(fds[i][1]);
    }
    double total = 0, p50max = 0, p99max = 0;
    unsigned long long calls = 0, go = 0;
    for (int i = 0; i < nproc; i++) {
        char line[200];
        child_line(fds[i][0], pids[i], line, sizeof line);
        double rate = 0, p50 = 0, p99 = 0;
        unsigned long long w = 0, c = 0, g = 0;
        sscanf(line, "%lf %lf %lf %llu %llu %llu", &rate, &p50, &p99, &w, &c, &g);
        total += rate;
        calls += c;
        go += g;
        if (p50 > p50max) p50max = p50;
        if (p99 > p99max) p99max = p99;
    }
    double cpa = go ? (double)calls / (double)go : 0;
    printf("  %-34s %d process%s, %2d in flight each: %8.0f decisions/s   p50 %7.1f us   p99 %7.1f us"
           "   %.2f admit calls/admission\n", label, nproc, nproc > 1 ? "es" : "  ", target, total, p50max,
           p99max, cpa);
    if (p50_out)
        *p50_out = p50max;
    if (cpa_out)
        *cpa_out = cpa;
    return total;
}

/* A hot round trip for reference: N blocking PINGs on one connection;
 * p50 and p99 in microseconds. */
static void ping_ref(int port, int n, double *p50, double *p99)
{
    *p50 = *p99 = 0;
    redisContext *c = redisConnect("127.0.0.1", port);
    double *lat = malloc(sizeof *lat * (size_t)n);
    int k = 0;
    for (int i = 0; c && !c->err && lat && i < n; i++) {
        uint64_t t0 = mono_ns();
        redisReply *r = redisCommand(c, "PING");
        uint64_t t1 = mono_ns();
        if (!r)
            break;
        freeReplyObject(r);
        lat[k++] = (double)(t1 - t0) / 1000.0;
    }
    if (k > 0) {
        qsort(lat, (size_t)k, sizeof *lat, cmp);
        *p50 = lat[k / 2];
        *p99 = lat[k * 99 / 100];
    }
    free(lat);
    if (c)
        redisFree(c);
}

/* Redis's own time per EVALSHA (INFO commandstats usec_per_call), or -1. */
static double evalsha_usec(int port)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    double u = -1;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "INFO commandstats");
        const char *p = r && r->str ? strstr(r->str, "cmdstat_evalsha:") : NULL;
        p = p ? strstr(p, "usec_per_call=") : NULL;
        u = p ? atof(p + 14) : -1;
        freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return u;
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
    printf("the engine's path (backend_gate.h: ask from a job loop, the backend's thread, answer posted back):\n");
    double g1p50 = 0;
    gate_fleet(port, "no limits (asks pipelined):", "g0", 0, secs, 1, 1, &g1p50, NULL);
    double g16 = gate_fleet(port, "no limits (asks pipelined):", "g1", 0, secs, target, 1, NULL, NULL);
    double g16x3 = gate_fleet(port, "no limits (asks pipelined):", "g2", 0, secs, target, 3, NULL, NULL);
    gate_fleet(port, "limit not binding (window of asks):", "g3", 1e9, secs, target, 1, NULL, NULL);
    gate_fleet(port, "limit not binding (window of asks):", "g4", 1e9, secs, target, 3, NULL, NULL);
    double cpa = 0;
    double paced = gate_fleet(port, "6000 RPM shared (binding):", "g5", 6000, secs, target, 3, NULL, &cpa);
    printf("  paced: %.2fx the shared limit (100/s)\n", paced / 100.0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "timeout 3 redis-cli -p %d --latency --raw 2>/dev/null | tail -1", port);
    FILE *f = popen(cmd, "r");
    char lat[128] = "";
    if (f && fgets(lat, sizeof lat, f))
        lat[strcspn(lat, "\n")] = 0;
    if (f)
        pclose(f);
    printf("  redis-cli --latency (min max avg samples, ms): %s\n", lat[0] ? lat : "n/a");
    double pp50, pp99;
    ping_ref(port, 20000, &pp50, &pp99);
    printf("  PING, 1 connection, back to back (hiredis, blocking): p50 %.1f us   p99 %.1f us\n", pp50, pp99);
    printf("  Redis's own time per script call (admit, commit, heartbeat; INFO commandstats): %.1f us\n",
           evalsha_usec(port));
    double lmin = 0, lmax = 0, lavg = 0;
    if (sscanf(lat, "%lf %lf %lf", &lmin, &lmax, &lavg) == 3 && lavg > 0 && pp50 > 0)
        printf("ratio: engine-path decision p50 (1 in flight) / redis-cli --latency avg = %.2f, / hot PING p50 = %.2f;"
               " 3 procs / 1 proc x %d decisions/s = %.2f; admit calls per paced admission %.2f\n",
               g1p50 / 1000.0 / lavg, g1p50 / pp50, target, g16 > 0 ? g16x3 / g16 : 0, cpa);
    kill(rp, SIGKILL);
    waitpid(rp, NULL, 0);
    return 0;
}
