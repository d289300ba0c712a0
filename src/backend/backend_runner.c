/* backend_runner.c: the Redis backend on a loop thread of its own (see
 * backend.h, "runner").
 *
 * Every call is posted to the runner's loop (qt_loop_post) and returns at
 * once. An admission is a heap cell holding the runner's copy of the lease
 * and the caller's callback; the backend answers it on the loop thread
 * (within about timeout_ms: its tick fails a call Redis does not answer in
 * time), the callback runs there and says whether it takes an admitted
 * lease; one it refuses (its job was cancelled, the gate closed) is
 * forgotten at once: a commit of the estimate at no cost frees the slots
 * and reservations and keeps the pacing. Commit, release and control are
 * fire and forget.
 */
#include "quotatop/backend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qt_backend_runner {
    qt_loop *loop;
    qt_backend *b;
    pthread_t th;
};

typedef struct {
    qt_backend_runner *r;
    qt_backend_lease lease;      /* the loop's copy */
    qt_backend_runner_admit_fn cb;
    void *ud;
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
    if (pthread_create(&r->th, NULL, run, r) != 0) {
        if (err)
            snprintf(err, errlen, "cannot start the backend thread");
        qt_backend_free(r->b);
        qt_loop_free(r->loop);
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
    free(r);
}

static void admitted(void *ud, qt_backend_lease *lease, const qt_backend_decision *d)
{
    admit_cell *c = ud;
    int taken = c->cb(c->ud, lease, d);
    if (d->verdict == QT_BACKEND_ADMITTED && !taken && c->r->b)   /* forget: free what it holds */
        qt_backend_commit(c->r->b, lease, lease->n_rate > 0 ? lease->rate[0].est_tokens : 0, 0);
    free(c);
}

static void admit_on_loop(void *ud)
{
    admit_cell *c = ud;
    if (!c->r->b) {   /* posted after the stop: answered, not asked */
        qt_backend_decision d;
        memset(&d, 0, sizeof d);
        d.verdict = QT_BACKEND_DOWN;
        snprintf(d.error, sizeof d.error, "backend closed");
        c->cb(c->ud, &c->lease, &d);
        free(c);
        return;
    }
    qt_backend_admit(c->r->b, &c->lease, admitted, c);
}

qt_err qt_backend_runner_admit(qt_backend_runner *r, const qt_backend_lease *lease,
                               qt_backend_runner_admit_fn cb, void *ud)
{
    admit_cell *c = malloc(sizeof *c);
    if (!c)
        return QT_ERR_NOMEM;
    c->r = r;
    c->lease = *lease;
    c->lease.active = 0;
    c->cb = cb;
    c->ud = ud;
    if (qt_loop_post(r->loop, admit_on_loop, c) != QT_OK) {
        free(c);
        return QT_ERR_NOMEM;
    }
    return QT_OK;
}

static void settle_on_loop(void *ud)
{
    settle_cell *c = ud;
    if (!c->r->b)
        ;   /* posted after the stop: swept after the lease */
    else if (c->release)
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
    if (c->r->b)
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
