/* engine_ui.c: engine readers the dashboard needs beyond engine.h (declared
 * in quotatop/ui.h). Same rule as engine_ctl.c: copy plain values under
 * e->lock, format nothing while holding it. */
#include "quotatop/ui.h"

#include <string.h>

#include "engine_int.h"

void qt_engine_queue_counts(qt_engine *e, qt_queue_counts *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&e->lock);
    qt_queue_counts_get(e->queue, out);
    pthread_mutex_unlock(&e->lock);
}
