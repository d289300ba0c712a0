/* backend_runner.c: the Redis backend on a loop thread of its own, for the
 * threaded engine (INTERIM: once the engine runs on a qt_loop it calls
 * backend.h's async functions on its own loop and this file goes away).
 *
 * Every call is posted to the runner's loop (qt_loop_post). An admission
 * waits for its answer on a condition variable for at most timeout_ms; the
 * request lives in a heap cell shared by the waiter and the loop (two
 * references), so a waiter that gives up leaves the cell to the loop, which
 * forgets the lease if it was admitted after all (a commit of the estimate
 * at no cost: slots and reservations freed, pacing kept). Commit, release
 * and control are fire and forget.
 */
#include "quotatop/backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct qt_backend_runner {
    qt_loop *loop;
    qt_backend *b;
    pthread_t th;
    pthread_mutex_t mu;          /* guards the cells' done/abandoned flags */
    pthread_cond_t cv;
};

typedef struct {
    qt_backend_runner *r;
    qt_backend_lease lease;      /* the loop's copy */
    qt_backend_decision d;
    int done, abandoned;
} admit_cell;

typedef struct {
    qt_backend_runner *r;
    qt_backend_lease lease;
    int release;
    int64_t tokens;
    double usd;
} settle_cell;

typedef struct {
    qt_backend_runner *r;
    char op[16], arg[QT_BACKEND_NAME], what[8];
    double value;
} control_cell;

static void *run(void *ud)
{
    qt_backend_runner *r = ud;
    qt_loop_run(r->loop);
    return NULL;
}

qt_backend_runner *qt_backend_runner_new(const qt_backend_opts *o, char *err, size_t errlen)
{
    qt_backend_runner *r = calloc(1, sizeof *r);
    if (!r || !(r->loop = qt_loop_new(NULL))) {
        if (err)
            snprintf(err, errlen, "out of memory");
        free(r);
        return NULL;
    }
    /* Created before the loop thread starts: the loop is not running yet. */
    r->b = qt_backend_new(r->loop, o, err, errlen);
    if (!r->b) {
        qt_loop_free(r->loop);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&r->th, NULL, run, r) != 0) {
        if (err)
            snprintf(err, errlen, "cannot start the backend thread");
        qt_backend_free(r->b);
        qt_loop_free(r->loop);
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return NULL;
    }
    return r;
}

static void stop_on_loop(void *ud)
{
    qt_backend_runner *r = ud;
    qt_backend_free(r->b);
    r->b = NULL;
    qt_loop_stop(r->loop);
}

void qt_backend_runner_free(qt_backend_runner *r)
{
    if (!r)
        return;
    if (qt_loop_post(r->loop, stop_on_loop, r) != QT_OK)
        qt_loop_stop(r->loop);
    pthread_join(r->th, NULL);
    if (r->b)
        qt_backend_free(r->b);
    qt_loop_free(r->loop);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

static void admitted(void *ud, qt_backend_lease *lease, const qt_backend_decision *d)
{
    admit_cell *c = ud;
    qt_backend_runner *r = c->r;
    pthread_mutex_lock(&r->mu);
    if (c->abandoned) {
        pthread_mutex_unlock(&r->mu);
        if (d->verdict == QT_BACKEND_ADMITTED)   /* forget: free what it holds */
            qt_backend_commit(r->b, lease, lease->n_rate > 0 ? lease->rate[0].est_tokens : 0, 0);
        free(c);
        return;
    }
    c->d = *d;
    c->done = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void admit_on_loop(void *ud)
{
    admit_cell *c = ud;
    qt_backend_admit(c->r->b, &c->lease, admitted, c);
}

void qt_backend_runner_admit(qt_backend_runner *r, qt_backend_lease *lease, long timeout_ms,
                             qt_backend_decision *d)
{
    memset(d, 0, sizeof *d);
    lease->active = 0;
    admit_cell *c = calloc(1, sizeof *c);
    if (!c) {
        d->verdict = QT_BACKEND_DOWN;
        snprintf(d->error, sizeof d->error, "out of memory");
        return;
    }
    c->r = r;
    c->lease = *lease;
    if (qt_loop_post(r->loop, admit_on_loop, c) != QT_OK) {
        free(c);
        d->verdict = QT_BACKEND_DOWN;
        snprintf(d->error, sizeof d->error, "out of memory");
        return;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long ms = timeout_ms > 0 ? timeout_ms : 1;
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    while (!c->done) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT && !c->done)
            break;
    }
    if (!c->done) {
        c->abandoned = 1;   /* the loop frees it */
        pthread_mutex_unlock(&r->mu);
        d->verdict = QT_BACKEND_DOWN;
        snprintf(d->error, sizeof d->error, "redis: no admission answer within %ldms", ms);
        return;
    }
    pthread_mutex_unlock(&r->mu);
    *d = c->d;
    *lease = c->lease;
    free(c);
}

static void settle_on_loop(void *ud)
{
    settle_cell *c = ud;
    if (c->release)
        qt_backend_release(c->r->b, &c->lease);
    else
        qt_backend_commit(c->r->b, &c->lease, c->tokens, c->usd);
    free(c);
}

static void settle(qt_backend_runner *r, qt_backend_lease *lease, int release, int64_t tokens, double usd)
{
    if (!lease->active)
        return;
    settle_cell *c = malloc(sizeof *c);
    if (c) {
        c->r = r;
        c->lease = *lease;
        c->release = release;
        c->tokens = tokens;
        c->usd = usd;
        if (qt_loop_post(r->loop, settle_on_loop, c) != QT_OK)
            free(c);   /* swept after the lease once this process is gone */
    }
    lease->active = 0;
}

void qt_backend_runner_commit(qt_backend_runner *r, qt_backend_lease *lease, int64_t actual_tokens,
                              double actual_usd)
{
    settle(r, lease, 0, actual_tokens, actual_usd);
}

void qt_backend_runner_release(qt_backend_runner *r, qt_backend_lease *lease)
{
    settle(r, lease, 1, 0, 0);
}

static void control_on_loop(void *ud)
{
    control_cell *c = ud;
    qt_backend_control(c->r->b, c->op, c->arg[0] ? c->arg : NULL, c->what[0] ? c->what : NULL, c->value);
    free(c);
}

qt_err qt_backend_runner_control(qt_backend_runner *r, const char *op, const char *arg, const char *what,
                                 double value)
{
    if (!op || strlen(op) >= 16 || (arg && strlen(arg) >= QT_BACKEND_NAME) || (what && strlen(what) >= 8))
        return QT_ERR_INVALID;
    qt_backend_view v;
    qt_backend_view_copy(r->b, &v);
    if (!v.up)
        return QT_ERR_BACKEND;
    control_cell *c = calloc(1, sizeof *c);
    if (!c)
        return QT_ERR_NOMEM;
    c->r = r;
    snprintf(c->op, sizeof c->op, "%s", op);
    snprintf(c->arg, sizeof c->arg, "%s", arg ? arg : "");
    snprintf(c->what, sizeof c->what, "%s", what ? what : "");
    c->value = value;
    if (qt_loop_post(r->loop, control_on_loop, c) != QT_OK) {
        free(c);
        return QT_ERR_NOMEM;
    }
    return QT_OK;
}

void qt_backend_runner_view(qt_backend_runner *r, qt_backend_view *out)
{
    qt_backend_view_copy(r->b, out);
}

int qt_backend_runner_divisor(qt_backend_runner *r, int expected)
{
    return qt_backend_share_divisor(r->b, expected);
}
