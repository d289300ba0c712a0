/* clock.h: monotonic and wall time behind one interface, so tests drive time.
 *
 * Policy modules never read a clock: they take `uint64_t now_ms` as an
 * argument. Whoever calls them (the engine, the proxy, the UI) reads a
 * qt_clock. The system clock reads CLOCK_MONOTONIC and CLOCK_REALTIME; a
 * manual clock returns whatever the test last set, for both.
 *
 * Thread-safety: qt_clock_now_ms/qt_clock_wall_ms are safe from any thread;
 * qt_clock_manual_* must not race with readers of the same manual clock
 * (tests drive it from one thread).
 */
#ifndef QT_CLOCK_H
#define QT_CLOCK_H

#include <stdint.h>

typedef struct qt_clock qt_clock;

/* Returns the process-wide system clock. Never NULL; never free it (freeing
 * it is a no-op). */
qt_clock *qt_clock_system(void);

/* Returns a new manual clock reading start_ms (monotonic and wall), or NULL
 * when out of memory. The caller frees it with qt_clock_free. */
qt_clock *qt_clock_manual_new(uint64_t start_ms);

/* Frees a manual clock. Accepts NULL and the system clock (no-op). */
void qt_clock_free(qt_clock *c);

/* Sets / advances a manual clock. No effect on the system clock. */
void qt_clock_manual_set(qt_clock *c, uint64_t now_ms);
void qt_clock_manual_advance(qt_clock *c, uint64_t delta_ms);

/* Monotonic milliseconds (arbitrary origin; never goes back). */
uint64_t qt_clock_now_ms(const qt_clock *c);

/* Wall-clock milliseconds since the Unix epoch. */
uint64_t qt_clock_wall_ms(const qt_clock *c);

/* Convenience: monotonic / wall milliseconds of the system clock. */
uint64_t qt_now_ms(void);
uint64_t qt_wall_ms(void);

#endif /* QT_CLOCK_H */
