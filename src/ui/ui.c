/* ui.c: placeholder while the dashboard is written. */
#include "quotatop/ui.h"
qt_ui_exit qt_ui_run_opts(qt_engine *e, const qt_ui_opts *opts) { (void)e; (void)opts; return QT_UI_EXIT_NO_TERMINAL; }
int qt_ui_run(qt_engine *e, const char *mode, uint64_t t0_ms) { (void)e; (void)mode; (void)t0_ms; return -1; }
