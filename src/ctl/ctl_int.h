/* ctl_int.h: the control plane's private state (src/ctl only). */
#ifndef QT_CTL_INT_H
#define QT_CTL_INT_H

#include <pthread.h>
#include <stdint.h>

#include "quotatop/ctl.h"

struct qt_ctl {
    qt_engine *e;
    char mode[16];
    pthread_mutex_t mu;          /* guards the failure ring */
    qt_ctl_failed *failed;       /* ring of QT_CTL_MAX_FAILED */
    size_t failed_head, n_failed;
    uint64_t failed_total;
    /* the listener (ctl_server.c) */
    char path[256];
    int listening;
    int listen_fd;
    int wake[2];                 /* a byte on wake[1] stops the thread */
    pthread_t thread;
};

/* Queue counts for the JOBS title (defined in src/engine/engine_ui.c, first
 * declared in quotatop/ui.h, which ctl must not include). Any thread. */
void qt_engine_queue_counts(qt_engine *e, qt_queue_counts *out);

/* Wall clock in ms (for failure times). */
uint64_t ctl_wall_ms(void);

/* Stops the listener thread and removes the socket (no-op when none). */
void ctl_server_stop(qt_ctl *c);

#endif
