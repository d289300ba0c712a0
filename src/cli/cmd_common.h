/* cmd_common.h: pieces shared by the subcommands (private to src/). */
#ifndef QT_CMD_COMMON_H
#define QT_CMD_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "quotatop/config.h"
#include "quotatop/ctl.h"
#include "quotatop/engine.h"

/* Loads a config, printing every diagnostic to stderr. NULL when invalid. */
qt_config *qt_cmd_load_config(const char *path);

/* Prints one warning per provider whose api_key_env names an unset (or
 * empty) variable, naming the variable (never a value). Returns how many. */
size_t qt_cmd_warn_unset_keys(const qt_config *cfg, FILE *out, const char *who);

/* open(path, O_RDONLY) with a check that it is not a directory; -1 + errno. */
int open_readonly(const char *path);

/* Installs SIGINT/SIGTERM handlers that only count signals, and ignores
 * SIGPIPE. qt_cmd_signal_count() returns how many arrived. */
void qt_cmd_signals_install(void);
int qt_cmd_signal_count(void);

/* Runs until the engine has every result (intake closed) or a signal
 * arrives: the dashboard when mode is not NULL and the terminal allows,
 * else one progress line per second on stderr (when progress is set).
 * stay: the `run` dashboard keeps its final screen until q (--stay).
 * events: without the dashboard, print each engine event as a line (-v). */
void qt_cmd_watch(qt_engine *e, qt_ctl *ctl, const char *mode, uint64_t t0_ms, int progress, int stay,
                  int events);

/* An on_result tap that records not-ok results in the control plane (the
 * FAILED view) and then passes every result on. Worker threads. */
typedef struct {
    qt_ctl *ctl;
    qt_engine_on_result next;
    void *next_ud;
} qt_cmd_ctl_tap;
void qt_cmd_ctl_on_result(void *ud, const qt_job *job, const qt_result *res, const qt_result_extra *x);

/* Opens ctl's control socket (STATE_DIR/MODE-PID.sock) and says where on
 * stderr, or why there is none (the run goes on either way). */
void qt_cmd_ctl_listen(qt_ctl *ctl, const qt_config *cfg, const char *who, const char *mode);

/* Prints the events after *seq as "[  1.2s] type            message" lines
 * (time since t0) and advances *seq. Main thread. */
void qt_cmd_print_events(FILE *out, qt_engine *e, uint64_t t0, uint64_t *seq);

/* One progress line (done/total, ok/failed, queue, per-model RPM/TPM, spend). */
void qt_cmd_print_progress(FILE *out, const qt_engine_snapshot *s);

/* The short human summary at the end of a run. */
void qt_cmd_print_summary(FILE *out, const qt_engine_snapshot *s, double elapsed_s);

#endif
