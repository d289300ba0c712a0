/* replay_run.h: one replay of a recording through the real engine under a
 * config, on a virtual clock (replay_run.c; not a public header).
 *
 * Thread-safety: runs the engine's loop on the calling thread; one replay
 * at a time per thread. */
#ifndef QT_REPLAY_RUN_H
#define QT_REPLAY_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "quotatop/config.h"
#include "quotatop/replay.h"
#include "replay_report.h"

typedef struct {
    uint64_t seed;               /* the simulated provider's draws and the engine's jitter */
    int upstream_from_config;    /* the simulated upstream enforces cfg's limits instead of
                                    the recording's (the "next tier" what-if) */
} rp_run_opts;

/* Submits every recorded request at its recorded time (relative to the
 * first) to an engine built on cfg, answered by a fresh simulated provider
 * of d (seeded with seed), and gathers the outcome into o (initialised by
 * the caller with rp_outcome_init). cfg is changed: its state_dir is
 * cleared so a replay never writes the spend ledger. Returns QT_OK, or an
 * error with a reason in err (the engine cannot run on a virtual clock,
 * out of memory). */
qt_err rp_run_config(const qt_trace_data *d, qt_config *cfg, const rp_run_opts *ro, rp_outcome *o,
                     char *err, size_t errlen);

#endif
