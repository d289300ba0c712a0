/* ui_int.h: the dashboard's private state, shared by ui.c (loop, terminal),
 * draw.c (styles, primitives), panels.c (what each panel shows) and keys.c
 * (the key table). Only src/ui includes it (and through it <ncurses.h>).
 *
 * Everything here belongs to the main thread: the engine is only reached
 * through its public functions (snapshots in, controls out).
 */
#ifndef QT_UI_INT_H
#define QT_UI_INT_H

#include <ncurses.h>
#include <stdint.h>

#include "quotatop/engine.h"
#include "quotatop/events.h"
#include "quotatop/queue.h"
#include "quotatop/ui.h"

#define UI_MAX_QUEUE 256     /* queued jobs copied per frame */
#define UI_MAX_EVENTS 64     /* newest events copied per frame */
#define UI_RATE_SAMPLES 64   /* (time, done) samples for rate and ETA */

/* Panels that take the focus (Tab order). */
typedef enum { FOCUS_LIMITS = 0, FOCUS_QUEUE, FOCUS_WORKFLOWS, FOCUS__COUNT } ui_focus;

typedef enum { CONFIRM_NONE = 0, CONFIRM_CANCEL, CONFIRM_QUIT } ui_confirm;

/* Reaction flags returned by key actions (as htop's HTOP_REFRESH...). */
enum {
    UI_REDRAW = 1 << 0,      /* draw again now */
    UI_RESNAP = 1 << 1,      /* take a new snapshot first (the engine changed) */
    UI_QUIT = 1 << 2,        /* leave the dashboard */
    UI_RELAYOUT = 1 << 3,    /* recompute the layout and windows */
    UI_RETHEME = 1 << 4,     /* colours changed: repaint everything */
};

typedef struct ui_state {
    qt_engine *e;
    qt_ui_opts opts;
    char exe_dir[1024];

    /* the frame's copies */
    qt_engine_snapshot snap;
    int have_snap;
    qt_queue_view *queue;    /* UI_MAX_QUEUE */
    size_t nqueue;
    qt_queue_counts qcounts;
    qt_event events[UI_MAX_EVENTS];
    size_t nevents;
    int finished;            /* every job has its result and intake is closed */
    uint64_t rate_t[UI_RATE_SAMPLES], rate_done[UI_RATE_SAMPLES];
    int rate_n, rate_head;

    /* screen */
    int cols, rows;
    qt_ui_layout lay;
    WINDOW *win[QT_PANEL__COUNT];
    int utf8;

    /* navigation */
    int focus;               /* ui_focus */
    int sel[FOCUS__COUNT];   /* selected row per focusable panel */
    int top[FOCUS__COUNT];   /* first visible row */
    char sel_job[QT_QUEUE_ID_LEN];   /* the cursor follows this job */
    int help;
    int help_top;            /* first line of the help shown (it scrolls when tall) */
    ui_confirm confirm;
    char confirm_id[QT_QUEUE_ID_LEN];
    char status[200];        /* transient message in the footer */
    uint64_t status_until;

    /* look */
    qt_theme theme;
    int theme_idx;           /* index in qt_theme_cycle, -1 for a path */
    int use_color;
    attr_t attr[QT_ROLE__COUNT];

    qt_ui_exit exit;
    int quit;
} ui_state;

/* draw.c */
void ui_colors_init(ui_state *ui);
void ui_theme_apply(ui_state *ui, const qt_theme *t);
/* Loads theme `name` (name or path) into ui; on failure keeps the built-in
 * default and puts the reason in *why. Returns 0 or -1. */
int ui_theme_select(ui_state *ui, const char *name, char *why, size_t whylen);
void ui_status(ui_state *ui, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes text clipped to w columns at (y, x) in role; returns columns used. */
int ui_put(ui_state *ui, WINDOW *w, int y, int x, int width, qt_ui_role role, const char *s);
/* As ui_put, but text that does not fit ends in an ellipsis (free text). */
int ui_put_ell(ui_state *ui, WINDOW *w, int y, int x, int width, qt_ui_role role, const char *s);
int ui_putf(ui_state *ui, WINDOW *w, int y, int x, int width, qt_ui_role role, const char *fmt,
            ...) __attribute__((format(printf, 7, 8)));
/* Fills a whole line of w with spaces in role. */
void ui_fill_line(ui_state *ui, WINDOW *w, int y, qt_ui_role role);
/* A gauge [####    ] of width cells for used/limit; returns cells drawn. */
int ui_gauge(ui_state *ui, WINDOW *w, int y, int x, int width, double used, double limit);
/* A bar plot of n per-second samples in the rectangle, limit line at limit. */
void ui_plot(ui_state *ui, WINDOW *w, int y, int x, int h, int width, const uint32_t *samples,
             size_t n, double limit, qt_ui_role role, const char *label);
/* A centred dialog box h x wd (clipped to the screen) titled `title`; *out
 * gets the window (NULL when it cannot be made); the caller deletes it. */
void ui_box(ui_state *ui, int h, int wd, const char *title, WINDOW **out);
/* Panel title line: "NAME  extra" with focus highlighting. */
void ui_title(ui_state *ui, WINDOW *w, const char *name, int focused, const char *extra);

/* panels.c */
void ui_draw_all(ui_state *ui);
/* Index of the limits row the history shows. */
int ui_history_row(const ui_state *ui);

/* keys.c */
int ui_key(ui_state *ui, int ch);
/* Draws the help overlay listing every key of the table. */
void ui_draw_help(ui_state *ui);
int ui_pending_work(const ui_state *ui);

#endif
