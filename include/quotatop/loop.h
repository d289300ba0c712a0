/* loop.h: a single-threaded event loop: file descriptors (epoll), timers (a
 * min-heap of deadlines) and work posted from other threads.
 *
 * One qt_loop is driven by one thread, "the loop thread": whichever thread
 * calls qt_loop_run or qt_loop_run_virtual. Every callback runs on it, one at
 * a time, so state touched only from callbacks needs no lock.
 *
 * Two modes, chosen by the clock given to qt_loop_new:
 * - live (NULL or the system clock): qt_loop_run waits in epoll_wait until
 *   a descriptor is ready, the next timer is due, or work is posted;
 * - virtual (a manual clock, see clock.h): qt_loop_run_virtual never sleeps.
 *   It runs posted work and due timers, then sets the manual clock to the
 *   next timer's deadline and repeats, and returns when nothing is posted or
 *   timed. Descriptors are polled without waiting, if any are watched.
 *
 * Timers fire in deadline order; timers with the same deadline fire in the
 * order they were added. A timer handle is valid from qt_loop_timer_add until
 * its callback starts or it is cancelled, whichever comes first: the loop frees
 * it just before calling fn, so fn must not cancel its own timer (clear any
 * stored handle first thing in fn).
 *
 * Thread-safety: qt_loop_post and qt_loop_stop may be called from any thread
 * (they take the loop's one lock, a mutex around the posted-work list).
 * Everything else, qt_loop_free included, belongs to the loop thread (or to
 * any one thread while the loop is not running).
 */
#ifndef QT_LOOP_H
#define QT_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/clock.h"

typedef struct qt_loop qt_loop;
typedef void (*qt_loop_fn)(void *ud);
/* events: QT_LOOP_READ / QT_LOOP_WRITE as reported ready; QT_LOOP_ERROR is
 * added on EPOLLERR/EPOLLHUP (read and write are reported too, so a
 * callback that only looks at READ/WRITE still notices). */
typedef void (*qt_loop_io_fn)(void *ud, int fd, unsigned events);
enum { QT_LOOP_READ = 1, QT_LOOP_WRITE = 2, QT_LOOP_ERROR = 4 };
typedef struct qt_timer qt_timer;

/* Returns a new loop reading time from clock (NULL = the system clock; a
 * manual clock makes it a virtual-time loop; the loop does not own the clock,
 * which must outlive it), or NULL when out of memory or out of descriptors. */
qt_loop *qt_loop_new(qt_clock *clock);
/* Frees the loop. Timers not yet fired and work not yet run are dropped
 * without being called; watched descriptors are not closed. Accepts NULL. */
void qt_loop_free(qt_loop *l);

/* --- loop thread only --- */

/* Calls fn(ud) once, on the loop thread, when the loop's clock reaches at_ms
 * (an absolute qt_loop_now_ms time; a time in the past means "as soon as
 * possible", after timers already due). O(log n). Returns the handle, or
 * NULL when out of memory (fn will not run). */
qt_timer *qt_loop_timer_add(qt_loop *l, uint64_t at_ms, qt_loop_fn fn, void *ud);
/* Removes a timer that has not fired: fn will not run. O(log n). Accepts
 * NULL. The handle is invalid afterwards. */
void qt_loop_timer_cancel(qt_loop *l, qt_timer *t);
/* Deadline of a pending timer. */
uint64_t qt_loop_timer_at(const qt_timer *t);

/* Watches fd for events (QT_LOOP_READ | QT_LOOP_WRITE): fn(ud, fd, ready)
 * runs on the loop thread while fd is ready (level-triggered). Calling it
 * again for the same fd replaces events, fn and ud; events 0 removes the
 * watch (do that before closing fd; a watch on an fd closed without removal
 * is dropped the next time that fd number is watched). Returns QT_OK (0),
 * QT_ERR_INVALID (bad fd or events), QT_ERR_NOMEM or QT_ERR_IO (epoll_ctl
 * refused; errno says why). */
int qt_loop_io_watch(qt_loop *l, int fd, unsigned events, qt_loop_io_fn fn, void *ud);
/* Stops the watch of fd like events 0, but keeps its epoll registration,
 * so watching fd again for the same events costs no system call (a
 * keep-alive connection between two requests). If the parked fd becomes
 * ready meanwhile, the registration is dropped then (nobody is called).
 * The caller promises to call qt_loop_io_forget before closing fd. */
void qt_loop_io_park(qt_loop *l, int fd);
/* Forgets fd without a system call: the caller is about to close it (and
 * close drops its epoll registration), or has just been given its number
 * by socket() (so whatever the table held for it is stale). Any watch on
 * fd ends. */
void qt_loop_io_forget(qt_loop *l, int fd);

/* Number of pending timers / watched descriptors (for tests and gauges). */
size_t qt_loop_timer_count(const qt_loop *l);
size_t qt_loop_watch_count(const qt_loop *l);

/* --- any thread --- */

/* Queues fn(ud) to run on the loop thread soon, in posting order, and wakes
 * the loop. Work posted while the loop is not running runs when it next
 * runs. Returns QT_OK (0), or QT_ERR_NOMEM (fn will not run). */
int qt_loop_post(qt_loop *l, qt_loop_fn fn, void *ud);
/* Makes qt_loop_run / qt_loop_run_virtual return after the callback being
 * run (if any). A stop requested while the loop is not running makes the
 * next run return at once. The request is consumed by the run it stops. */
void qt_loop_stop(qt_loop *l);

/* --- the loop's thread --- */

/* fn(ud) runs on the loop's thread before each wait for descriptors (once
 * per turn of the loop: after the posted work, the due timers and the
 * events of the last wait have run) and when a run returns, in both modes.
 * A place to write out what a burst of callbacks buffered. NULL fn: none.
 * Set it before the loop runs. */
void qt_loop_set_before_wait(qt_loop *l, qt_loop_fn fn, void *ud);

/* Live mode: dispatches descriptors, timers and posted work until
 * qt_loop_stop. Returns 0, or -1 when epoll_wait fails (not EINTR) or the
 * loop is virtual. */
int qt_loop_run(qt_loop *l);
/* Virtual mode (manual clock): runs posted work and due timers, jumps the
 * clock to the next deadline, repeats; returns 0 when nothing is posted or
 * timed (or after qt_loop_stop). Never sleeps. The clock ends at the last
 * deadline that fired (it never goes back). Returns -1 for a live loop. */
int qt_loop_run_virtual(qt_loop *l);

/* The loop's clock now (qt_clock_now_ms of its clock). Any thread. */
uint64_t qt_loop_now_ms(const qt_loop *l);
/* The clock given to qt_loop_new (the system clock for NULL). Any thread. */
qt_clock *qt_loop_clock(const qt_loop *l);
/* 1 for a virtual-time loop (manual clock), else 0. Any thread. */
int qt_loop_is_virtual(const qt_loop *l);

#endif /* QT_LOOP_H */
