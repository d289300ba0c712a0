/* loop.c: the event loop (see include/quotatop/loop.h).
 *
 * DESIGN. Three sources of work, all dispatched on the loop thread:
 * - descriptors: one epoll instance, level-triggered. The watch table is
 *   indexed by fd; each epoll registration carries (generation << 32 | fd)
 *   so an event still queued for a watch that was removed (or removed and
 *   re-created for a new socket with the same number) within the same
 *   epoll_wait batch is recognised and skipped. A watch can be parked
 *   (qt_loop_io_park): nobody is called any more, but the epoll
 *   registration stays, so the next watch of the same fd for the same
 *   events costs no epoll_ctl (a keep-alive connection between requests
 *   is parked, not removed and added again); a parked fd that becomes
 *   ready is removed then. `reg` is what epoll has, `events` what the
 *   user wants;
 * - timers: a binary min-heap of qt_timer pointers ordered by (deadline,
 *   sequence number), each timer remembering its heap index so cancel is an
 *   O(log n) removal. The sequence number makes timers with equal deadlines
 *   fire in the order they were added. A pass runs only timers added before
 *   the pass began, so a callback re-arming itself at "now" cannot starve
 *   descriptors or posted work;
 * - posted work: a FIFO list of (fn, ud) nodes behind a mutex, THE ONE LOCK
 *   of the loop. Posters append under it and write the eventfd (registered in
 *   the epoll set) only when the list goes from empty to non-empty, and not
 *   from the loop's own thread while it runs (it looks at the list before
 *   it sleeps: `serve` posts to its own loop several times a request); the loop
 *   swaps the whole list out under the lock and runs it outside the lock, so
 *   callbacks may post again without deadlock. Nothing else is shared
 *   between threads except the stop flag (an atomic).
 *
 * Live mode sleeps in epoll_wait for at most the time to the next deadline
 * (0 when work is posted). Virtual mode never waits: after a round of posted
 * work and due timers it sets the manual clock to the next deadline, and it
 * returns when the post list and the heap are both empty.
 */
#include "quotatop/loop.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "quotatop/common.h"

#define LOOP_EVENTS 256                 /* epoll events taken per wait */
#define WAKE_TAG    UINT64_MAX          /* epoll data of the eventfd */

/* The live loop this thread is running (qt_loop_run), NULL none: a post
 * from it needs no wake-up. */
static __thread qt_loop *tls_running;

struct qt_timer {
    uint64_t at_ms;    /* deadline on the loop's clock */
    uint64_t seq;      /* order of addition: ties on at_ms fire in this order */
    qt_loop_fn fn;
    void *ud;
    size_t idx;        /* position in the heap */
};

typedef struct {
    qt_loop_io_fn fn;  /* NULL: not watched (maybe parked: reg != 0) */
    void *ud;
    unsigned events;   /* QT_LOOP_READ | QT_LOOP_WRITE wanted; 0 when not watched */
    unsigned reg;      /* what the epoll set has for fd, 0 nothing */
    uint32_t gen;      /* generation of this registration (see DESIGN) */
} watch;

typedef struct post {
    qt_loop_fn fn;
    void *ud;
    struct post *next;
} post;

struct qt_loop {
    qt_clock *clock;
    bool virt;                 /* manual clock: qt_loop_run_virtual */
    int epfd, wakefd;
    atomic_int stop;           /* qt_loop_stop asked; consumed by the run it stops */

    qt_timer **heap;           /* min-heap on (at_ms, seq) */
    size_t n_timers, cap_timers;
    uint64_t next_seq;

    watch *watches;            /* indexed by fd */
    size_t cap_watches, n_watches;
    uint32_t next_gen;

    pthread_mutex_t post_mu;   /* the one lock: guards post_head/post_tail */
    post *post_head, *post_tail;

    qt_loop_fn before_wait;    /* qt_loop_set_before_wait */
    void *before_wait_ud;
};

/* ---- lifecycle ---- */

qt_loop *qt_loop_new(qt_clock *clock)
{
    qt_loop *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->clock = clock ? clock : qt_clock_system();
    l->virt = l->clock != qt_clock_system();
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
    if (l->epfd < 0 || l->wakefd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0 ||
        pthread_mutex_init(&l->post_mu, NULL) != 0) {
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->wakefd >= 0)
            close(l->wakefd);
        free(l);
        return NULL;
    }
    return l;
}

void qt_loop_free(qt_loop *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n_timers; i++)
        free(l->heap[i]);
    free(l->heap);
    free(l->watches);
    for (post *p = l->post_head, *n; p; p = n) {
        n = p->next;
        free(p);
    }
    pthread_mutex_destroy(&l->post_mu);
    close(l->epfd);
    close(l->wakefd);
    free(l);
}

uint64_t qt_loop_now_ms(const qt_loop *l) { return qt_clock_now_ms(l->clock); }
qt_clock *qt_loop_clock(const qt_loop *l) { return l->clock; }
int qt_loop_is_virtual(const qt_loop *l) { return l->virt ? 1 : 0; }
size_t qt_loop_timer_count(const qt_loop *l) { return l->n_timers; }
size_t qt_loop_watch_count(const qt_loop *l) { return l->n_watches; }
uint64_t qt_loop_timer_at(const qt_timer *t) { return t->at_ms; }

/* ---- timers: a binary min-heap on (at_ms, seq) ---- */

static bool earlier(const qt_timer *a, const qt_timer *b)
{
    return a->at_ms < b->at_ms || (a->at_ms == b->at_ms && a->seq < b->seq);
}

static void heap_set(qt_loop *l, size_t i, qt_timer *t)
{
    l->heap[i] = t;
    t->idx = i;
}

static void sift_up(qt_loop *l, size_t i)
{
    qt_timer *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(t, l->heap[parent]))
            break;
        heap_set(l, i, l->heap[parent]);
        i = parent;
    }
    heap_set(l, i, t);
}

static void sift_down(qt_loop *l, size_t i)
{
    qt_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->n_timers)
            break;
        if (c + 1 < l->n_timers && earlier(l->heap[c + 1], l->heap[c]))
            c++;
        if (!earlier(l->heap[c], t))
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

/* Takes t out of the heap (does not free it). */
static void heap_remove(qt_loop *l, qt_timer *t)
{
    size_t i = t->idx;
    qt_timer *last = l->heap[--l->n_timers];
    if (last == t)
        return;
    heap_set(l, i, last);
    if (i > 0 && earlier(last, l->heap[(i - 1) / 2]))
        sift_up(l, i);
    else
        sift_down(l, i);
}

qt_timer *qt_loop_timer_add(qt_loop *l, uint64_t at_ms, qt_loop_fn fn, void *ud)
{
    if (l == NULL || fn == NULL)
        return NULL;
    if (l->n_timers == l->cap_timers) {
        size_t cap = l->cap_timers ? l->cap_timers * 2 : 64;
        qt_timer **h = realloc(l->heap, cap * sizeof *h);
        if (h == NULL)
            return NULL;
        l->heap = h;
        l->cap_timers = cap;
    }
    qt_timer *t = malloc(sizeof *t);
    if (t == NULL)
        return NULL;
    uint64_t now = qt_loop_now_ms(l);
    t->at_ms = at_ms < now ? now : at_ms;   /* the past means now, after what is due */
    t->seq = l->next_seq++;
    t->fn = fn;
    t->ud = ud;
    l->heap[l->n_timers++] = t;
    sift_up(l, l->n_timers - 1);
    return t;
}

void qt_loop_timer_cancel(qt_loop *l, qt_timer *t)
{
    if (l == NULL || t == NULL)
        return;
    heap_remove(l, t);
    free(t);
}

static bool stopping(qt_loop *l)
{
    return atomic_load_explicit(&l->stop, memory_order_relaxed) != 0;
}

/* Runs the timers due at now that were added before this pass began.
 * Each timer leaves the heap and is freed before its callback runs. */
static void run_due(qt_loop *l, uint64_t now)
{
    uint64_t seq_limit = l->next_seq;
    while (l->n_timers > 0 && !stopping(l)) {
        qt_timer *t = l->heap[0];
        if (t->at_ms > now || t->seq >= seq_limit)
            break;
        heap_remove(l, t);
        qt_loop_fn fn = t->fn;
        void *ud = t->ud;
        free(t);
        fn(ud);
    }
}

/* ---- descriptors ---- */

static uint32_t to_epoll(unsigned events)
{
    return (events & QT_LOOP_READ ? EPOLLIN : 0) | (events & QT_LOOP_WRITE ? EPOLLOUT : 0);
}

static int watch_remove(qt_loop *l, int fd)
{
    if ((size_t)fd >= l->cap_watches)
        return QT_OK;
    watch *w = &l->watches[fd];
    if (w->reg)   /* EBADF/ENOENT: the fd was closed first; epoll already forgot it */
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    if (w->fn)
        l->n_watches--;
    memset(w, 0, sizeof *w);
    return QT_OK;
}

void qt_loop_io_park(qt_loop *l, int fd)
{
    if (l == NULL || fd < 0 || (size_t)fd >= l->cap_watches || l->watches[fd].fn == NULL)
        return;
    watch *w = &l->watches[fd];
    w->fn = NULL;
    w->ud = NULL;
    w->events = 0;
    l->n_watches--;
}

void qt_loop_io_forget(qt_loop *l, int fd)
{
    if (l == NULL || fd < 0 || (size_t)fd >= l->cap_watches)
        return;
    if (l->watches[fd].fn)
        l->n_watches--;
    memset(&l->watches[fd], 0, sizeof l->watches[fd]);
}

static bool watches_grow(qt_loop *l, int fd)
{
    if ((size_t)fd < l->cap_watches)
        return true;
    size_t cap = l->cap_watches ? l->cap_watches : 64;
    while (cap <= (size_t)fd)
        cap *= 2;
    watch *w = realloc(l->watches, cap * sizeof *w);
    if (w == NULL)
        return false;
    memset(w + l->cap_watches, 0, (cap - l->cap_watches) * sizeof *w);
    l->watches = w;
    l->cap_watches = cap;
    return true;
}

int qt_loop_io_watch(qt_loop *l, int fd, unsigned events, qt_loop_io_fn fn, void *ud)
{
    if (l == NULL || fd < 0 || (events & ~(unsigned)(QT_LOOP_READ | QT_LOOP_WRITE)) ||
        (events && fn == NULL))
        return QT_ERR_INVALID;
    if (events == 0)
        return watch_remove(l, fd);
    if (!watches_grow(l, fd))
        return QT_ERR_NOMEM;
    watch *w = &l->watches[fd];
    bool watched = w->fn != NULL, existed = w->reg != 0;
    if (existed && w->reg == events) {
        /* Same interest (a parked or live watch): no epoll_ctl. */
        w->fn = fn;
        w->ud = ud;
        w->events = events;
        if (!watched)
            l->n_watches++;
        return QT_OK;
    }
    uint32_t gen = existed ? w->gen : ++l->next_gen;
    struct epoll_event ev = {.events = to_epoll(events),
                             .data.u64 = (uint64_t)gen << 32 | (uint32_t)fd};
    int rc = epoll_ctl(l->epfd, existed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    if (rc < 0 && existed && errno == ENOENT) {
        /* The old fd was closed without removal and the number reused. */
        gen = ++l->next_gen;
        ev.data.u64 = (uint64_t)gen << 32 | (uint32_t)fd;
        rc = epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
    } else if (rc < 0 && !existed && errno == EEXIST) {
        rc = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    if (rc < 0) {
        if (existed) {   /* whatever epoll has now, it is not what we had */
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
            if (watched)
                l->n_watches--;
            memset(w, 0, sizeof *w);
        }
        return QT_ERR_IO;
    }
    if (!watched)
        l->n_watches++;
    *w = (watch){.fn = fn, .ud = ud, .events = events, .reg = events, .gen = gen};
    return QT_OK;
}

static void drain_wakefd(qt_loop *l)
{
    uint64_t v;   /* one read takes the whole counter (not EFD_SEMAPHORE) */
    ssize_t r = read(l->wakefd, &v, sizeof v);
    (void)r;
}

/* Waits up to timeout_ms (-1 = no limit, 0 = poll) and dispatches what is
 * ready. Returns 0, or -1 when epoll_wait fails. */
static int poll_io(qt_loop *l, int timeout_ms)
{
    struct epoll_event evs[LOOP_EVENTS];
    int n = epoll_wait(l->epfd, evs, LOOP_EVENTS, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n && !stopping(l); i++) {
        uint64_t tag = evs[i].data.u64;
        if (tag == WAKE_TAG) {
            drain_wakefd(l);
            continue;
        }
        int fd = (int)(uint32_t)tag;
        if ((size_t)fd >= l->cap_watches)
            continue;
        watch *w = &l->watches[fd];
        if (w->reg == 0 || w->gen != (uint32_t)(tag >> 32))
            continue;   /* removed (or replaced) earlier in this batch */
        if (w->fn == NULL) {
            /* Parked and now ready (the peer closed an idle connection):
             * a level-triggered registration nobody reads would spin. */
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
            w->reg = 0;
            continue;
        }
        uint32_t e = evs[i].events;
        unsigned ready = (e & EPOLLIN ? QT_LOOP_READ : 0) | (e & EPOLLOUT ? QT_LOOP_WRITE : 0);
        if (e & (EPOLLERR | EPOLLHUP))
            ready |= QT_LOOP_ERROR | w->events;
        ready &= w->events | QT_LOOP_ERROR;
        if (ready)
            w->fn(w->ud, fd, ready);
    }
    return 0;
}

/* ---- posted work ---- */

int qt_loop_post(qt_loop *l, qt_loop_fn fn, void *ud)
{
    if (l == NULL || fn == NULL)
        return QT_ERR_INVALID;
    post *p = malloc(sizeof *p);
    if (p == NULL)
        return QT_ERR_NOMEM;
    p->fn = fn;
    p->ud = ud;
    p->next = NULL;
    pthread_mutex_lock(&l->post_mu);
    bool was_empty = l->post_head == NULL;
    if (was_empty)
        l->post_head = p;
    else
        l->post_tail->next = p;
    l->post_tail = p;
    pthread_mutex_unlock(&l->post_mu);
    if (was_empty && tls_running != l) {
        /* The loop drains the list after reading the eventfd, so one write
         * per empty -> non-empty transition is enough; none from the
         * loop's own thread, which looks at the list before it sleeps. */
        uint64_t one = 1;
        ssize_t w = write(l->wakefd, &one, sizeof one);
        (void)w;   /* EAGAIN: the counter is already non-zero, the loop wakes */
    }
    return QT_OK;
}

static bool have_posted(qt_loop *l)
{
    pthread_mutex_lock(&l->post_mu);
    bool any = l->post_head != NULL;
    pthread_mutex_unlock(&l->post_mu);
    return any;
}

/* Runs the work posted so far (not what those callbacks post). On a stop,
 * what was not run goes back to the front of the list. */
static void run_posted(qt_loop *l)
{
    pthread_mutex_lock(&l->post_mu);
    post *p = l->post_head;
    l->post_head = l->post_tail = NULL;
    pthread_mutex_unlock(&l->post_mu);
    while (p && !stopping(l)) {
        post *next = p->next;
        qt_loop_fn fn = p->fn;
        void *ud = p->ud;
        free(p);
        fn(ud);
        p = next;
    }
    if (p) {
        post *last = p;
        while (last->next)
            last = last->next;
        pthread_mutex_lock(&l->post_mu);
        last->next = l->post_head;
        if (l->post_head == NULL)
            l->post_tail = last;
        l->post_head = p;
        pthread_mutex_unlock(&l->post_mu);
    }
}

void qt_loop_stop(qt_loop *l)
{
    if (l == NULL)
        return;
    atomic_store(&l->stop, 1);
    uint64_t one = 1;
    ssize_t w = write(l->wakefd, &one, sizeof one);
    (void)w;
}

/* ---- running ---- */

/* True (and the request consumed) when a stop was asked. */
static bool take_stop(qt_loop *l)
{
    return atomic_exchange(&l->stop, 0) != 0;
}

static int next_timeout(qt_loop *l, uint64_t now)
{
    if (have_posted(l))
        return 0;
    if (l->n_timers == 0)
        return -1;
    uint64_t at = l->heap[0]->at_ms;
    if (at <= now)
        return 0;
    return at - now > INT_MAX ? INT_MAX : (int)(at - now);
}

void qt_loop_set_before_wait(qt_loop *l, qt_loop_fn fn, void *ud)
{
    if (l == NULL)
        return;
    l->before_wait = fn;
    l->before_wait_ud = ud;
}

static void before_wait(qt_loop *l)
{
    if (l->before_wait)
        l->before_wait(l->before_wait_ud);
}

int qt_loop_run(qt_loop *l)
{
    if (l == NULL || l->virt)
        return -1;
    qt_loop *outer = tls_running;
    tls_running = l;
    while (!stopping(l)) {
        run_posted(l);
        run_due(l, qt_loop_now_ms(l));
        if (stopping(l))
            break;
        before_wait(l);
        if (poll_io(l, next_timeout(l, qt_loop_now_ms(l))) < 0) {
            take_stop(l);
            tls_running = outer;
            return -1;
        }
    }
    before_wait(l);
    take_stop(l);
    tls_running = outer;
    return 0;
}

int qt_loop_run_virtual(qt_loop *l)
{
    if (l == NULL || !l->virt)
        return -1;
    while (!stopping(l)) {
        run_posted(l);
        run_due(l, qt_loop_now_ms(l));
        before_wait(l);
        if (l->n_watches > 0 && poll_io(l, 0) < 0) {
            take_stop(l);
            return -1;
        }
        if (stopping(l) || have_posted(l))
            continue;
        if (l->n_timers == 0)
            break;
        uint64_t at = l->heap[0]->at_ms;
        if (at > qt_loop_now_ms(l))
            qt_clock_manual_set(l->clock, at);   /* jump: nothing happens in between */
    }
    before_wait(l);
    take_stop(l);
    return 0;
}
