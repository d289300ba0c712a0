/* clock.c: the system clock and a manual clock for tests.
 *
 * A qt_clock is either the immutable system clock (reads clock_gettime) or a
 * manual clock holding one number that tests set. The manual value is stored
 * atomically so a test may advance it while a worker thread reads it.
 */
#include "quotatop/clock.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct qt_clock {
    int manual;                /* 0: system clock, 1: manual */
    _Atomic uint64_t now_ms;   /* manual clocks only */
};

static qt_clock system_clock = { 0, 0 };   /* immutable: never written */

static uint64_t read_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

qt_clock *qt_clock_system(void) { return &system_clock; }

qt_clock *qt_clock_manual_new(uint64_t start_ms)
{
    qt_clock *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->manual = 1;
    atomic_store(&c->now_ms, start_ms);
    return c;
}

void qt_clock_free(qt_clock *c)
{
    if (c && c != &system_clock)
        free(c);
}

void qt_clock_manual_set(qt_clock *c, uint64_t now_ms)
{
    if (c && c->manual)
        atomic_store(&c->now_ms, now_ms);
}

void qt_clock_manual_advance(qt_clock *c, uint64_t delta_ms)
{
    if (c && c->manual)
        atomic_fetch_add(&c->now_ms, delta_ms);
}

uint64_t qt_clock_now_ms(const qt_clock *c)
{
    if (c && c->manual)
        return atomic_load(&((qt_clock *)c)->now_ms);
    return read_ms(CLOCK_MONOTONIC);
}

uint64_t qt_clock_wall_ms(const qt_clock *c)
{
    if (c && c->manual)
        return atomic_load(&((qt_clock *)c)->now_ms);
    return read_ms(CLOCK_REALTIME);
}

uint64_t qt_now_ms(void) { return read_ms(CLOCK_MONOTONIC); }
uint64_t qt_wall_ms(void) { return read_ms(CLOCK_REALTIME); }
