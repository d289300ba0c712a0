/* replay_run.c: one replay through the real engine on a virtual clock.
 *
 * NOT DONE: this needs the engine's transport and virtual time (contract C
 * in TEAM.md: qt_transport, virtual_time, qt_engine_run_virtual,
 * qt_engine_loop), which has not landed; the threaded engine waits on
 * condition variables in real time and sends with libcurl directly, so it
 * cannot be driven on a manual clock without sleeping.
 */
#include <stdio.h>

#include "replay_run.h"

qt_err rp_run_config(const qt_trace_data *d, qt_config *cfg, const rp_run_opts *ro, rp_outcome *o,
                     char *err, size_t errlen)
{
    (void)d;
    (void)cfg;
    (void)ro;
    (void)o;
    snprintf(err, errlen, "this build's engine cannot run on a virtual clock yet (contract C: "
                          "transport + virtual time); only the recorded column is shown");
    return QT_ERR_INVALID;
}
