/* proxy_drive.c: who runs libmicrohttpd for `quotatop serve`.
 *
 * DESIGN
 * With an engine whose loops are live, MHD has no threads of its own: one
 * daemon per engine loop (MHD_USE_EPOLL, external mode), all accepting on
 * the same listening socket, and each daemon's epoll set is watched by its
 * loop, which calls MHD_run when the set is ready or at MHD's next timeout
 * (a loop timer). A request is then read, submitted, sent upstream (the
 * engine sends a job on the loop that submitted it unless that loop is
 * clearly busier than another), answered and resumed on one thread: no
 * hand-off between threads for a request. MHD's own pool took about five
 * context switches a request (measured with /proc/PID/task/x/status: wrk -c1,
 * 17,215 requests) and each one costs tens of microseconds on a shared VM.
 *
 * MHD of this version (0.9.75) has no inter-thread channel in external
 * mode, so MHD_resume_connection (any thread: another loop's result, the
 * guard) is followed by px_wake, which posts one run of MHD to the
 * daemon's loop (the `wake` flag keeps it at one until it runs).
 *
 * Threads: until qt_proxy_stop only a driver's loop calls its daemon,
 * except MHD_resume_connection (any thread, MHD locks it) and the calls
 * px_on_mhd_threads posts to the loops and waits for (quiesce).
 * qt_proxy_stop comes after the engine's loops have stopped and joined;
 * px_detach then hands every daemon to the calling thread (px_drive_here).
 * The `timer` and the io watch belong to the loop, freed with it.
 *
 * With opts.threads (or no live loop) there is one driver, MHD runs its
 * own pool of epoll threads and nothing here is needed but
 * MHD_resume_connection's own wake-up.
 */
#include "proxy_int.h"

#include <poll.h>
#include <pthread.h>
#include <unistd.h>

static void drive(px_driver *d);

static void on_timer(void *ud)
{
    px_driver *d = ud;
    d->timer = NULL;
    drive(d);
}

static void on_ready(void *ud, int fd, unsigned events)
{
    (void)fd;
    (void)events;
    drive(ud);
}

static void on_wake(void *ud)
{
    px_driver *d = ud;
    __atomic_store_n(&d->wake, 0, __ATOMIC_RELEASE);
    drive(d);
}

/* Runs MHD once and arms the loop's timer for MHD's next timeout (the
 * driver's loop thread). */
static void drive(px_driver *d)
{
    qt_loop *l = d->loop;
    MHD_run(d->daemon);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    uint64_t at = 0;
    if (MHD_get_timeout(d->daemon, &ms) == MHD_YES)
        at = qt_loop_now_ms(l) + (ms > 3600000 ? 3600000 : (uint64_t)ms);
    if (d->timer && (!at || qt_loop_timer_at(d->timer) != at)) {
        qt_loop_timer_cancel(l, d->timer);
        d->timer = NULL;
    }
    if (at && !d->timer)
        d->timer = qt_loop_timer_add(l, at, on_timer, d);
}

static void attach(void *ud)
{
    px_driver *d = ud;
    qt_loop_io_watch(d->loop, d->mhd_fd, QT_LOOP_READ, on_ready, d);
    drive(d);
}

int px_drive_attach(px_driver *d, qt_loop *loop)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    d->mhd_fd = di ? di->epoll_fd : -1;
    if (d->mhd_fd < 0)
        return -1;
    __atomic_store_n(&d->loop, loop, __ATOMIC_RELEASE);
    if (qt_loop_post(loop, attach, d) != QT_OK) {
        __atomic_store_n(&d->loop, NULL, __ATOMIC_RELEASE);
        return -1;
    }
    return 0;
}

void px_wake(px_driver *d)
{
    qt_loop *l = d ? __atomic_load_n(&d->loop, __ATOMIC_ACQUIRE) : NULL;
    if (!l || __atomic_exchange_n(&d->wake, 1, __ATOMIC_ACQ_REL))
        return;
    if (qt_loop_post(l, on_wake, d) != QT_OK)
        __atomic_store_n(&d->wake, 0, __ATOMIC_RELEASE);
}

px_driver *px_driver_of(qt_proxy *px, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
    for (int i = 0; ci && i < px->ndrv; i++)
        if (px->drv[i].daemon == ci->daemon)
            return &px->drv[i];
    return px->ndrv ? &px->drv[0] : NULL;
}

/* ---- running something on every driver's thread ---- */

typedef struct {
    px_driver *d;
    void (*fn)(px_driver *);
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int *left;
} on_loop;

static void on_loop_run(void *ud)
{
    on_loop *o = ud;
    o->fn(o->d);
    pthread_mutex_lock(o->mu);
    if (--*o->left == 0)
        pthread_cond_signal(o->cv);
    pthread_mutex_unlock(o->mu);
}

void px_on_mhd_threads(qt_proxy *px, void (*fn)(px_driver *))
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    on_loop o[PX_MAX_DRIVERS];
    int left = px->ndrv;   /* set before any post: no loop sees it earlier */
    for (int i = 0; i < px->ndrv; i++) {
        px_driver *d = &px->drv[i];
        o[i] = (on_loop){ d, fn, &mu, &cv, &left };
        if (!d->loop || qt_loop_post(d->loop, on_loop_run, &o[i]) != QT_OK) {
            fn(d);   /* nothing else runs this daemon */
            pthread_mutex_lock(&mu);
            left--;
            pthread_mutex_unlock(&mu);
        }
    }
    pthread_mutex_lock(&mu);
    while (left > 0)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
    pthread_mutex_destroy(&mu);
}

/* On d's loop: no more runs from it. */
static void unwatch(px_driver *d)
{
    if (!d->loop)
        return;
    qt_loop_io_watch(d->loop, d->mhd_fd, 0, NULL, NULL);
    if (d->timer)
        qt_loop_timer_cancel(d->loop, d->timer);
    d->timer = NULL;
}

void px_undrive(qt_proxy *px)
{
    px_on_mhd_threads(px, unwatch);
    px_detach(px);
}

/* ---- after the engine's loops: qt_proxy_stop drives ---- */

void px_detach(qt_proxy *px)
{
    for (int i = 0; i < px->ndrv; i++) {
        __atomic_store_n(&px->drv[i].loop, NULL, __ATOMIC_RELEASE);
        px->drv[i].timer = NULL;   /* the loop's, freed with it */
    }
}

void px_drive_here(qt_proxy *px, int ms)
{
    struct pollfd pf[PX_MAX_DRIVERS];
    int n = 0;
    for (int i = 0; i < px->ndrv; i++) {
        px_driver *d = &px->drv[i];
        if (!d->daemon || d->mhd_fd < 0)
            continue;
        MHD_UNSIGNED_LONG_LONG t = 0;
        if (MHD_get_timeout(d->daemon, &t) == MHD_YES && t < (MHD_UNSIGNED_LONG_LONG)ms)
            ms = (int)t;
        pf[n++] = (struct pollfd){ .fd = d->mhd_fd, .events = POLLIN };
    }
    if (!n) {
        usleep((useconds_t)ms * 1000);   /* MHD's own threads do the work */
        return;
    }
    poll(pf, (nfds_t)n, ms);
    for (int i = 0; i < px->ndrv; i++)
        if (px->drv[i].daemon && px->drv[i].mhd_fd >= 0)
            MHD_run(px->drv[i].daemon);
}
