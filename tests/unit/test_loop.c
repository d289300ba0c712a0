/* test_loop.c: the event loop. Virtual-time tests drive a manual clock
 * through qt_loop_run_virtual (no sleeping): deadline order, ties in order
 * of addition, cancel, 100,000 timers, posted work before the clock jumps,
 * stop. Live tests use descriptors (a pipe) and threads_* tests post from
 * several threads at once (run by `make tsan`). Only the assertions the tsan
 * stand-in provides are used here.
 */
#include "quotatop/loop.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quotatop/common.h"

typedef struct {
    qt_loop *l;
    int order[256];       /* ids in firing order */
    uint64_t when[256];   /* clock at each firing */
    int n;
} trace;

typedef struct {
    trace *tr;
    int id;
} mark;

static void record(void *ud)
{
    mark *m = ud;
    trace *tr = m->tr;
    if (tr->n < 256) {
        tr->order[tr->n] = m->id;
        tr->when[tr->n] = qt_loop_now_ms(tr->l);
    }
    tr->n++;
}

Test(loop, virtual_timers_fire_in_deadline_order_and_clock_ends_at_last)
{
    qt_clock *c = qt_clock_manual_new(1000);
    qt_loop *l = qt_loop_new(c);
    cr_assert_not_null(l);
    cr_assert_eq(qt_loop_is_virtual(l), 1);
    trace tr = {.l = l};
    uint64_t at[] = {1300, 1100, 1200, 1100, 5000};
    mark m[5];
    for (int i = 0; i < 5; i++) {
        m[i] = (mark){&tr, i};
        cr_assert_not_null(qt_loop_timer_add(l, at[i], record, &m[i]));
    }
    cr_assert_eq(qt_loop_timer_count(l), 5);
    cr_assert_eq(qt_loop_run_virtual(l), 0);
    int want[] = {1, 3, 2, 0, 4};   /* equal deadlines (1 and 3) in order added */
    cr_assert_eq(tr.n, 5);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(tr.order[i], want[i], "firing %d", i);
        cr_assert_eq(tr.when[i], at[want[i]], "clock at firing %d", i);
    }
    cr_assert_eq(qt_clock_now_ms(c), 5000, "the clock ends at the last deadline");
    cr_assert_eq(qt_loop_timer_count(l), 0);
    qt_loop_free(l);
    qt_clock_free(c);
}

Test(loop, virtual_run_returns_at_once_when_idle)
{
    qt_clock *c = qt_clock_manual_new(42);
    qt_loop *l = qt_loop_new(c);
    cr_assert_eq(qt_loop_run_virtual(l), 0);
    cr_assert_eq(qt_clock_now_ms(c), 42, "no timer: the clock does not move");
    cr_assert_eq(qt_loop_run(l), -1, "a virtual loop refuses the live run");
    qt_loop_free(l);
    qt_clock_free(c);
}

Test(loop, live_loop_refuses_virtual_run)
{
    qt_loop *l = qt_loop_new(NULL);
    cr_assert_eq(qt_loop_is_virtual(l), 0);
    cr_assert_eq(qt_loop_run_virtual(l), -1);
    qt_loop_free(l);
}

Test(loop, many_ties_fire_in_order_added)
{
    qt_clock *c = qt_clock_manual_new(0);
    qt_loop *l = qt_loop_new(c);
    trace tr = {.l = l};
    mark m[200];
    for (int i = 0; i < 200; i++) {
        m[i] = (mark){&tr, i};
        qt_loop_timer_add(l, i % 2 ? 50 : 10, record, &m[i]);   /* evens at 10, odds at 50 */
    }
    qt_loop_run_virtual(l);
    cr_assert_eq(tr.n, 200);
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(tr.order[i], 2 * i, "evens first, in order");
        cr_assert_eq(tr.order[100 + i], 2 * i + 1, "then odds, in order");
    }
    qt_loop_free(l);
    qt_clock_free(c);
}

typedef struct {
    qt_loop *l;
    qt_timer *victim;
    trace *tr;
} canceller;

static void cancel_victim(void *ud)
{
    canceller *k = ud;
    qt_loop_timer_cancel(k->l, k->victim);
    k->victim = NULL;
}

Test(loop, cancel_before_and_from_a_callback)
{
    qt_clock *c = qt_clock_manual_new(0);
    qt_loop *l = qt_loop_new(c);
    trace tr = {.l = l};
    mark m[6];
    qt_timer *t[6];
    for (int i = 0; i < 6; i++) {
        m[i] = (mark){&tr, i};
        t[i] = qt_loop_timer_add(l, 100 * (uint64_t)(i + 1), record, &m[i]);
    }
    qt_loop_timer_cancel(l, t[0]);   /* the heap top */
    qt_loop_timer_cancel(l, t[3]);   /* one in the middle */
    qt_loop_timer_cancel(l, NULL);   /* no-op */
    canceller k = {.l = l, .victim = t[5], .tr = &tr};
    qt_loop_timer_add(l, 250, cancel_victim, &k);   /* cancels the last from a callback */
    cr_assert_eq(qt_loop_timer_count(l), 5);
    qt_loop_run_virtual(l);
    int want[] = {1, 2, 4};
    cr_assert_eq(tr.n, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tr.order[i], want[i]);
    cr_assert_eq(qt_clock_now_ms(c), 500, "the cancelled 600 ms timer did not move the clock");
    qt_loop_free(l);
    qt_clock_free(c);
}

/* 100,000 timers at pseudo-random deadlines, every third cancelled: the rest
 * fire once each, in non-decreasing deadline order. */
typedef struct {
    qt_loop *l;
    uint64_t last;
    int fired, out_of_order;
} big;

static void big_fire(void *ud)
{
    big *b = ud;
    uint64_t now = qt_loop_now_ms(b->l);
    if (now < b->last)
        b->out_of_order++;
    b->last = now;
    b->fired++;
}

Test(loop, hundred_thousand_timers, .timeout = 30)
{
    enum { N = 100000 };
    qt_clock *c = qt_clock_manual_new(0);
    qt_loop *l = qt_loop_new(c);
    qt_timer **t = calloc(N, sizeof *t);
    big b = {.l = l};
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t[i] = qt_loop_timer_add(l, 1 + x % 3600000, big_fire, &b);
        cr_assert_not_null(t[i]);
    }
    int cancelled = 0;
    for (int i = 0; i < N; i += 3, cancelled++)
        qt_loop_timer_cancel(l, t[i]);
    cr_assert_eq(qt_loop_timer_count(l), (size_t)(N - cancelled));
    qt_loop_run_virtual(l);
    cr_assert_eq(b.fired, N - cancelled);
    cr_assert_eq(b.out_of_order, 0);
    cr_assert_eq(qt_loop_timer_count(l), 0);
    free(t);
    qt_loop_free(l);
    qt_clock_free(c);
}

/* Posted work and timers due now run before the clock jumps; a timer added
 * from a callback at a later time runs too; a past deadline means now. */
typedef struct {
    trace *tr;
    mark later, past, posted;
} chain;

static void chain_start(void *ud)
{
    chain *ch = ud;
    qt_loop *l = ch->tr->l;
    record(&(mark){ch->tr, 1});
    qt_loop_timer_add(l, qt_loop_now_ms(l) + 700, record, &ch->later);
    qt_loop_timer_add(l, 0, record, &ch->past);   /* in the past: runs at now */
    qt_loop_post(l, record, &ch->posted);
}

Test(loop, callbacks_add_work_before_the_clock_moves)
{
    qt_clock *c = qt_clock_manual_new(100);
    qt_loop *l = qt_loop_new(c);
    trace tr = {.l = l};
    chain ch = {&tr, {&tr, 4}, {&tr, 3}, {&tr, 2}};
    qt_loop_timer_add(l, 300, chain_start, &ch);
    qt_loop_run_virtual(l);
    int want[] = {1, 2, 3, 4};
    uint64_t when[] = {300, 300, 300, 1000};
    cr_assert_eq(tr.n, 4);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(tr.order[i], want[i], "firing %d", i);
        cr_assert_eq(tr.when[i], when[i], "clock at firing %d", i);
    }
    qt_loop_free(l);
    qt_clock_free(c);
}

typedef struct {
    trace *tr;
    int seen[16];         /* tr->n at each call of the hook */
    uint64_t at[16];      /* the clock then */
    int calls;
} waits;

static void before_wait_hook(void *ud)
{
    waits *w = ud;
    if (w->calls < 16) {
        w->seen[w->calls] = w->tr->n;
        w->at[w->calls] = qt_loop_now_ms(w->tr->l);
    }
    w->calls++;
}

/* The before-wait hook runs once a turn, after everything due at that
 * instant: two timers due together are seen together, never one alone,
 * and the last turn is seen before the run returns. */
Test(loop, before_wait_runs_after_each_turn_of_work)
{
    qt_clock *c = qt_clock_manual_new(0);
    qt_loop *l = qt_loop_new(c);
    trace tr = {.l = l};
    waits w = {.tr = &tr};
    qt_loop_set_before_wait(l, before_wait_hook, &w);
    mark m[3] = {{&tr, 0}, {&tr, 1}, {&tr, 2}};
    qt_loop_timer_add(l, 100, record, &m[0]);
    qt_loop_timer_add(l, 100, record, &m[1]);
    qt_loop_timer_add(l, 200, record, &m[2]);
    cr_assert_eq(qt_loop_run_virtual(l), 0);
    cr_assert_eq(tr.n, 3);
    cr_assert_geq(w.calls, 2);
    cr_assert_leq(w.calls, 16);
    int saw_two = 0;
    for (int i = 0; i < w.calls; i++) {
        cr_assert_neq(w.seen[i], 1, "call %d saw one of the two timers due at 100", i);
        if (w.seen[i] == 2) {
            cr_assert_eq(w.at[i], 100);
            saw_two = 1;
        }
    }
    cr_assert(saw_two, "a call between the turn at 100 and the one at 200");
    cr_assert_eq(w.seen[w.calls - 1], 3, "the last turn is seen before the run returns");
    qt_loop_free(l);
    qt_clock_free(c);
}

static void stop_loop(void *ud)
{
    qt_loop_stop(ud);
}

Test(loop, stop_keeps_what_is_left_for_the_next_run)
{
    qt_clock *c = qt_clock_manual_new(0);
    qt_loop *l = qt_loop_new(c);
    trace tr = {.l = l};
    mark m[3] = {{&tr, 0}, {&tr, 1}, {&tr, 2}};
    qt_loop_post(l, record, &m[0]);
    qt_loop_post(l, stop_loop, l);
    qt_loop_post(l, record, &m[1]);
    qt_loop_timer_add(l, 10, record, &m[2]);
    qt_loop_run_virtual(l);
    cr_assert_eq(tr.n, 1, "stopped after the stopping callback");
    cr_assert_eq(qt_clock_now_ms(c), 0);
    qt_loop_run_virtual(l);
    cr_assert_eq(tr.n, 3, "the next run did the rest");
    cr_assert_eq(tr.order[1], 1);
    cr_assert_eq(tr.order[2], 2);
    qt_loop_stop(l);   /* a stop before a run: the run returns at once */
    qt_loop_post(l, record, &m[0]);
    qt_loop_run_virtual(l);
    cr_assert_eq(tr.n, 3);
    qt_loop_run_virtual(l);
    cr_assert_eq(tr.n, 4, "the stop was consumed");
    qt_loop_free(l);
    qt_clock_free(c);
}

Test(loop, free_drops_pending_work)
{
    qt_clock *c = qt_clock_manual_new(0);
    qt_loop *l = qt_loop_new(c);
    trace tr = {.l = l};
    mark m = {&tr, 0};
    for (int i = 0; i < 10; i++) {
        qt_loop_timer_add(l, (uint64_t)i, record, &m);
        qt_loop_post(l, record, &m);
    }
    qt_loop_free(l);   /* nothing runs, nothing leaks (make sanitize) */
    cr_assert_eq(tr.n, 0);
    qt_clock_free(c);
}

/* ---- live mode ---- */

typedef struct {
    qt_loop *l;
    int fd;
    char got[16];
    size_t n;
    unsigned events;
} reader;

static void on_readable(void *ud, int fd, unsigned events)
{
    reader *r = ud;
    r->events |= events;
    ssize_t k = read(fd, r->got + r->n, sizeof r->got - 1 - r->n);
    if (k > 0)
        r->n += (size_t)k;
    if (r->n >= 5 || k == 0) {
        qt_loop_io_watch(r->l, fd, 0, NULL, NULL);
        qt_loop_stop(r->l);
    }
}

static void write_hello(void *ud)
{
    int *fd = ud;
    ssize_t k = write(*fd, "hello", 5);
    (void)k;
}

Test(loop, live_descriptor_and_timer, .timeout = 10)
{
    qt_loop *l = qt_loop_new(NULL);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    reader r = {.l = l, .fd = p[0]};
    cr_assert_eq(qt_loop_io_watch(l, p[0], QT_LOOP_READ, on_readable, &r), QT_OK);
    cr_assert_eq(qt_loop_watch_count(l), 1);
    cr_assert_eq(qt_loop_io_watch(l, -1, QT_LOOP_READ, on_readable, &r), QT_ERR_INVALID);
    cr_assert_eq(qt_loop_io_watch(l, p[0], 8, on_readable, &r), QT_ERR_INVALID);
    /* the timer writes into the pipe 5 ms from now; the read stops the loop */
    qt_loop_timer_add(l, qt_loop_now_ms(l) + 5, write_hello, &p[1]);
    cr_assert_eq(qt_loop_run(l), 0);
    cr_assert_eq(r.n, 5);
    cr_assert_eq(memcmp(r.got, "hello", 5), 0);
    cr_assert_eq(r.events & QT_LOOP_READ, QT_LOOP_READ);
    cr_assert_eq(qt_loop_watch_count(l), 0, "the callback removed its watch");
    close(p[0]);
    close(p[1]);
    qt_loop_free(l);
}

/* A watch removed by an earlier callback of the same batch is not called. */
typedef struct {
    qt_loop *l;
    int fds[2];
    int calls;
} pair;

static void remove_other(void *ud, int fd, unsigned events)
{
    pair *pr = ud;
    (void)events;
    pr->calls++;
    for (int i = 0; i < 2; i++)
        qt_loop_io_watch(pr->l, pr->fds[i], 0, NULL, NULL);
    (void)fd;
    qt_loop_stop(pr->l);
}

Test(loop, removed_watch_is_not_called, .timeout = 10)
{
    qt_loop *l = qt_loop_new(NULL);
    int a[2], b[2];
    cr_assert_eq(pipe(a), 0);
    cr_assert_eq(pipe(b), 0);
    pair pr = {.l = l, .fds = {a[0], b[0]}};
    cr_assert_eq(write(a[1], "x", 1), 1);
    cr_assert_eq(write(b[1], "x", 1), 1);
    qt_loop_io_watch(l, a[0], QT_LOOP_READ, remove_other, &pr);
    qt_loop_io_watch(l, b[0], QT_LOOP_READ, remove_other, &pr);
    qt_loop_run(l);
    cr_assert_eq(pr.calls, 1, "both ready, the first callback removed both");
    cr_assert_eq(qt_loop_watch_count(l), 0);
    int fds[] = {a[0], a[1], b[0], b[1]};
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    qt_loop_free(l);
}

/* ---- threads ---- */

enum { POSTERS = 4, POSTS_EACH = 2000 };

typedef struct {
    qt_loop *l;
    pthread_barrier_t *bar;
    int thread;
    int last_seen[POSTERS];   /* loop thread only: last sequence per poster */
    int total, out_of_order, failed;
} board;

typedef struct {
    board *b;
    int thread, seq;
} note;

static note notes[POSTERS][POSTS_EACH];

static void on_note(void *ud)
{
    note *n = ud;
    board *b = n->b;
    if (n->seq != b->last_seen[n->thread] + 1)
        b->out_of_order++;
    b->last_seen[n->thread] = n->seq;
    if (++b->total == POSTERS * POSTS_EACH)
        qt_loop_stop(b->l);
}

typedef struct {
    board *b;
    int thread;
} poster_arg;

static void *poster(void *arg)
{
    poster_arg *a = arg;
    pthread_barrier_wait(a->b->bar);
    for (int i = 0; i < POSTS_EACH; i++) {
        notes[a->thread][i] = (note){a->b, a->thread, i};
        if (qt_loop_post(a->b->l, on_note, &notes[a->thread][i]) != QT_OK)
            __atomic_add_fetch(&a->b->failed, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

Test(loop, threads_post_from_many_threads_all_run_in_order, .timeout = 30)
{
    qt_loop *l = qt_loop_new(NULL);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, POSTERS);
    board b = {.l = l, .bar = &bar};
    for (int i = 0; i < POSTERS; i++)
        b.last_seen[i] = -1;
    pthread_t t[POSTERS];
    poster_arg args[POSTERS];
    for (int i = 0; i < POSTERS; i++) {
        args[i] = (poster_arg){&b, i};
        pthread_create(&t[i], NULL, poster, &args[i]);
    }
    cr_assert_eq(qt_loop_run(l), 0);   /* the loop thread is this one */
    for (int i = 0; i < POSTERS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(b.failed, 0);
    cr_assert_eq(b.total, POSTERS * POSTS_EACH, "every post ran once");
    cr_assert_eq(b.out_of_order, 0, "each thread's posts ran in posting order");
    pthread_barrier_destroy(&bar);
    qt_loop_free(l);
}

static void *stopper(void *arg)
{
    qt_loop_stop(arg);
    return NULL;
}

Test(loop, threads_stop_from_another_thread_wakes_the_loop, .timeout = 10)
{
    qt_loop *l = qt_loop_new(NULL);
    qt_loop_timer_add(l, qt_loop_now_ms(l) + 3600000, stop_loop, l);   /* an hour away */
    pthread_t t;
    pthread_create(&t, NULL, stopper, l);
    cr_assert_eq(qt_loop_run(l), 0, "returned long before the hour");
    pthread_join(t, NULL);
    cr_assert_eq(qt_loop_timer_count(l), 1);
    qt_loop_free(l);
}

typedef struct {
    qt_loop *l;
    int a, b;
} two_calls;

static void count_a(void *ud, int fd, unsigned events)
{
    two_calls *c = ud;
    (void)fd;
    (void)events;
    c->a++;
    qt_loop_stop(c->l);
}

static void count_b(void *ud, int fd, unsigned events)
{
    two_calls *c = ud;
    (void)fd;
    (void)events;
    c->b++;
    qt_loop_stop(c->l);
}

Test(loop, watching_again_replaces_the_callback, .timeout = 10)
{
    two_calls c = {.l = qt_loop_new(NULL)};
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "x", 1), 1);
    qt_loop_io_watch(c.l, p[0], QT_LOOP_READ, count_a, &c);
    qt_loop_io_watch(c.l, p[0], QT_LOOP_READ, count_b, &c);   /* same events, new callback */
    cr_assert_eq(qt_loop_watch_count(c.l), 1);
    qt_loop_run(c.l);
    cr_assert_eq(c.a, 0);
    cr_assert_eq(c.b, 1);
    close(p[0]);
    close(p[1]);
    qt_loop_free(c.l);
}

/* ---- parked watches ---- */

typedef struct {
    qt_loop *l;
    int calls;
} counter;

static void count_and_drain(void *ud, int fd, unsigned events)
{
    counter *c = ud;
    char b[64];
    (void)events;
    c->calls++;
    ssize_t k = read(fd, b, sizeof b);
    (void)k;
}


static void write_byte(void *ud)
{
    ssize_t k = write(*(int *)ud, "x", 1);
    (void)k;
}

/* Runs l for ms milliseconds, with fd written to at half time when wfd >= 0. */
static void run_for(qt_loop *l, int ms, int *wfd)
{
    if (wfd)
        qt_loop_timer_add(l, qt_loop_now_ms(l) + (uint64_t)ms / 2, write_byte, wfd);
    qt_loop_timer_add(l, qt_loop_now_ms(l) + (uint64_t)ms, stop_loop, l);
    cr_assert_eq(qt_loop_run(l), 0);
}

Test(loop, parked_watch_is_not_called_and_comes_back, .timeout = 10)
{
    qt_loop *l = qt_loop_new(NULL);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    counter c = {.l = l};
    cr_assert_eq(qt_loop_io_watch(l, p[0], QT_LOOP_READ, count_and_drain, &c), QT_OK);
    qt_loop_io_park(l, p[0]);
    cr_assert_eq(qt_loop_watch_count(l), 0, "a parked fd is not watched");
    run_for(l, 40, &p[1]);   /* ready while parked: nobody called, the registration dropped */
    cr_assert_eq(c.calls, 0);
    /* Watched again (the byte is still unread): called. */
    cr_assert_eq(qt_loop_io_watch(l, p[0], QT_LOOP_READ, count_and_drain, &c), QT_OK);
    run_for(l, 20, NULL);
    cr_assert_eq(c.calls, 1);
    /* Parked with nothing ready, watched again, then written: called. */
    qt_loop_io_park(l, p[0]);
    cr_assert_eq(qt_loop_io_watch(l, p[0], QT_LOOP_READ, count_and_drain, &c), QT_OK);
    cr_assert_eq(qt_loop_watch_count(l), 1);
    run_for(l, 40, &p[1]);
    cr_assert_eq(c.calls, 2);
    qt_loop_io_watch(l, p[0], 0, NULL, NULL);
    close(p[0]);
    close(p[1]);
    qt_loop_free(l);
}

Test(loop, forgotten_fd_number_reused_is_watched_anew, .timeout = 10)
{
    qt_loop *l = qt_loop_new(NULL);
    int p[2], q[2];
    cr_assert_eq(pipe(p), 0);
    counter c = {.l = l};
    cr_assert_eq(qt_loop_io_watch(l, p[0], QT_LOOP_READ, count_and_drain, &c), QT_OK);
    qt_loop_io_park(l, p[0]);
    qt_loop_io_forget(l, p[0]);   /* about to close it */
    int old = p[0];
    close(p[0]);
    close(p[1]);
    cr_assert_eq(pipe(q), 0);
    cr_assert_eq(q[0], old, "the kernel reuses the lowest free number");
    /* Same number, same events: the new pipe must really be registered. */
    cr_assert_eq(qt_loop_io_watch(l, q[0], QT_LOOP_READ, count_and_drain, &c), QT_OK);
    run_for(l, 40, &q[1]);
    cr_assert_eq(c.calls, 1);
    qt_loop_io_watch(l, q[0], 0, NULL, NULL);
    close(q[0]);
    close(q[1]);
    qt_loop_free(l);
}

/* A post from the loop's own thread writes no eventfd (the loop looks at
 * its list before it sleeps): work posted from a timer callback and from a
 * descriptor callback still runs at once, with an hour-long timer being
 * the only other thing the loop could sleep for. */
typedef struct {
    qt_loop *l;
    int fd;
    int ran;
} self_post;

static void self_second(void *ud)
{
    self_post *s = ud;
    s->ran++;
    qt_loop_stop(s->l);
}

static void self_from_timer(void *ud)
{
    self_post *s = ud;
    cr_assert_eq(qt_loop_post(s->l, self_second, s), QT_OK);
}

static void self_from_io(void *ud, int fd, unsigned events)
{
    self_post *s = ud;
    (void)events;
    char c;
    ssize_t k = read(fd, &c, 1);
    (void)k;
    qt_loop_io_watch(s->l, fd, 0, NULL, NULL);
    cr_assert_eq(qt_loop_post(s->l, self_second, s), QT_OK);
}

Test(loop, post_from_its_own_thread_runs_without_a_wake, .timeout = 10)
{
    qt_loop *l = qt_loop_new(NULL);
    self_post s = {.l = l};
    qt_loop_timer_add(l, qt_loop_now_ms(l) + 3600000, stop_loop, l);   /* an hour away */
    qt_loop_timer_add(l, qt_loop_now_ms(l), self_from_timer, &s);
    cr_assert_eq(qt_loop_run(l), 0, "returned long before the hour");
    cr_assert_eq(s.ran, 1, "the work posted from a timer ran");
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(qt_loop_io_watch(l, p[0], QT_LOOP_READ, self_from_io, &s), QT_OK);
    cr_assert_eq(write(p[1], "x", 1), 1);
    cr_assert_eq(qt_loop_run(l), 0, "returned long before the hour");
    cr_assert_eq(s.ran, 2, "the work posted from a descriptor callback ran");
    close(p[0]);
    close(p[1]);
    qt_loop_free(l);
}
