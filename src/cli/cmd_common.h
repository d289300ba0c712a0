/* cmd_common.h: pieces shared by the subcommands (private to src/). */
#ifndef QT_CMD_COMMON_H
#define QT_CMD_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "quotatop/config.h"
#include "quotatop/engine.h"

/* Loads a config, printing every diagnostic to stderr. NULL when invalid. */
qt_config *qt_cmd_load_config(const char *path);

/* open(path, O_RDONLY) with a check that it is not a directory; -1 + errno. */
int open_readonly(const char *path);

/* Installs SIGINT/SIGTERM handlers that only count signals, and ignores
 * SIGPIPE. qt_cmd_signal_count() returns how many arrived. */
void qt_cmd_signals_install(void);
int qt_cmd_signal_count(void);

/* Runs until the engine has every result (intake closed) or a signal
 * arrives: the dashboard when mode is not NULL and the terminal allows,
 * else one progress line per second on stderr (when progress is set). */
void qt_cmd_watch(qt_engine *e, const char *mode, uint64_t t0_ms, int progress);

/* One progress line (done/total, ok/failed, queue, per-model RPM/TPM, spend). */
void qt_cmd_print_progress(FILE *out, const qt_engine_snapshot *s);

/* The short human summary at the end of a run. */
void qt_cmd_print_summary(FILE *out, const qt_engine_snapshot *s, double elapsed_s);

#endif
