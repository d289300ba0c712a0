/* ui_int.h: the dashboard's private state, shared by ui.c (loop, terminal,
 * mouse), views.c (filtered and sorted rows of each list), draw.c (styles,
 * primitives), panels.c (header, limits, history, workflows, footer),
 * panel_jobs.c (JOBS, FAILED, EVENTS), panel_fleet.c (FLEET: the processes
 * sharing the quota through Redis), overlays.c (job detail, full texts,
 * confirmations) and keys.c (the key table). Only src/ui includes it (and
 * through it <ncurses.h>).
 *
 * Everything here belongs to the main thread. Frames come from a
 * qt_ctl_source (the local engine or a remote process); keys become
 * qt_ctl_cmd commands sent to the same source.
 */
#ifndef QT_UI_INT_H
#define QT_UI_INT_H

#include <ncurses.h>
#include <stdint.h>

#include "quotatop/ctl.h"
#include "quotatop/engine.h"
#include "quotatop/events.h"
#include "quotatop/queue.h"
#include "quotatop/ui.h"

#define UI_RATE_SAMPLES 64   /* (time, done) samples for rate and ETA */

/* Panels that take the focus (Tab order). */
typedef enum { FOCUS_LIMITS = 0, FOCUS_JOBS, FOCUS_WORKFLOWS, FOCUS_EVENTS, FOCUS__COUNT } ui_focus;

/* The lists a user can move in, filter and sort. */
typedef enum { L_LIMITS = 0, L_JOBS, L_FAILED, L_WORKFLOWS, L_EVENTS, L_FLEET, L__COUNT } ui_list;

/* What the JOBS panel shows (F: FAILED, P: FLEET, again: back to JOBS). */
typedef enum { JM_JOBS = 0, JM_FAILED, JM_FLEET } ui_jobs_mode;

typedef enum { CONFIRM_NONE = 0, CONFIRM_CANCEL, CONFIRM_QUIT, CONFIRM_WF_CANCEL } ui_confirm;

typedef enum { PROMPT_NONE = 0, PROMPT_FILTER, PROMPT_LIMIT, PROMPT_PRIO, PROMPT_WF_PRIO } ui_prompt;

typedef enum { OVL_NONE = 0, OVL_DETAIL, OVL_EVENT, OVL_FAILED } ui_overlay;

/* Reaction flags returned by key actions (as htop's HTOP_REFRESH...). */
enum {
    UI_REDRAW = 1 << 0,      /* draw again now */
    UI_RESNAP = 1 << 1,      /* take a new frame first (the process changed) */
    UI_QUIT = 1 << 2,        /* leave the dashboard */
    UI_RELAYOUT = 1 << 3,    /* recompute the layout and windows */
    UI_RETHEME = 1 << 4,     /* colours changed: repaint everything */
};

/* One list's view: which rows of the frame are shown, in which order. */
typedef struct {
    int *idx;                /* indices into the frame's array */
    int n, cap;
    int sel, top;            /* selected position in idx, first visible */
    char key[96];            /* the selected row's identity: the cursor follows it */
    char filter[64];         /* `/` text */
    int sort;                /* column to sort by, -1 = the natural order */
    int desc;                /* 1: largest first */
} ui_view;

typedef struct ui_state {
    qt_ctl_source *src;
    qt_ui_opts opts;
    char exe_dir[1024];
    int remote;              /* attached with `top`: q detaches */

    /* the frame */
    qt_ctl_frame fr;
    int have_frame;
    uint64_t rate_t[UI_RATE_SAMPLES], rate_done[UI_RATE_SAMPLES];
    int rate_n, rate_head;

    /* screen */
    int cols, rows;
    qt_ui_layout lay;
    WINDOW *win[QT_PANEL__COUNT];
    int utf8;

    /* navigation */
    int focus;               /* ui_focus */
    int jobs_mode;           /* ui_jobs_mode: JOBS, FAILED or FLEET in the JOBS panel */
    ui_view v[L__COUNT];
    int state_filter;        /* JOBS: 0 all, 1 queued, 2 waiting, 3 on the wire */
    int ev_type;             /* EVENTS: -1 every type, else a qt_event_type */

    /* overlays and modes */
    int help, help_top;
    ui_overlay ovl;
    int ovl_top;             /* first line shown of a tall overlay */
    char ovl_id[96];         /* job id (detail, failed) or event seq */
    qt_job_detail det;
    int det_ok;              /* det holds the job as last seen */
    int det_done;            /* the job has its result since (det is its last state) */
    ui_confirm confirm;
    char confirm_id[96];
    ui_prompt prompt;
    char pbuf[64];
    char ptarget[96];
    int ptarget_prov;
    char status[200];        /* transient message in the footer */
    uint64_t status_until;
    char gone[240];          /* top: why the process cannot be reached */

    /* look */
    qt_theme theme;
    int theme_idx;           /* index in qt_theme_cycle, -1 for a path */
    int use_color;
    attr_t attr[QT_ROLE__COUNT];

    qt_ui_exit exit;
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
/* Right / left aligned text in a table column (the text fits: columns.c). */
void ui_cell_r(ui_state *ui, WINDOW *w, int y, const qt_ui_col *c, qt_ui_role role, const char *text);
void ui_cell_l(ui_state *ui, WINDOW *w, int y, const qt_ui_col *c, qt_ui_role role, const char *text);
/* Column titles on row y (left-aligned where the bit of left_mask is set);
 * the sorted column is marked with an arrow. */
void ui_col_titles(ui_state *ui, WINDOW *w, int y, const qt_ui_col *c, int n, qt_ui_role role,
                   unsigned left_mask, int sort, int desc);

/* views.c */
/* Rebuilds every list's view from the frame (filters, sorts) and keeps each
 * cursor on the row it was on. */
void ui_views_build(ui_state *ui);
/* The list the focused panel shows. */
ui_list ui_focus_list(const ui_state *ui);
/* The frame index of a list's selected row, -1 when the list is empty. */
int ui_view_selected(const ui_state *ui, ui_list l);
/* Remembers the selected row's identity (after the cursor moved). */
void ui_view_remember(ui_state *ui, ui_list l);
/* Column names of a list's sort keys, and how many. */
int ui_sort_columns(ui_list l, const char *const **names);
/* The panel that shows list l. */
qt_ui_panel ui_list_panel(ui_list l);
/* Rows above a list's first data row inside its panel (title, labels). */
int ui_list_header_rows(ui_list l);
extern const char *const ui_state_filter_names[4];
/* The requests and tokens of the last minute a LIMITS row shows: the
 * fleet's (every process sharing the quota) when the shared backend is up
 * and reports the row's key, else this process's. Returns 1 for the fleet's. */
int ui_row_usage(const ui_state *ui, const qt_engine_row *r, double *requests, double *tokens);
/* 1 when the frame's figures are the fleet's (backend.kind "redis", Redis up). */
int ui_fleet_shared(const ui_state *ui);

/* panels.c */
void ui_draw_all(ui_state *ui);
/* Index of the limits row the history shows. */
int ui_history_row(const ui_state *ui);

/* panel_jobs.c */
void ui_draw_jobs(ui_state *ui, WINDOW *w);
void ui_draw_failed(ui_state *ui, WINDOW *w);
void ui_draw_events(ui_state *ui, WINDOW *w);
/* Appends "  /filter  sort age v" (what list l shows) to a panel title in out. */
void ui_title_extra(const ui_state *ui, ui_list l, char *out, size_t len);
qt_ui_role ui_event_role(qt_event_type t);

/* panel_fleet.c */
void ui_draw_fleet(ui_state *ui, WINDOW *w);

/* overlays.c */
void ui_draw_overlay(ui_state *ui);
void ui_draw_confirm(ui_state *ui);
/* Refreshes the detail overlay's copy of its job from the source. */
void ui_detail_refresh(ui_state *ui);

/* keys.c */
int ui_key(ui_state *ui, int ch);
/* Draws the help overlay listing every key of the table. */
void ui_draw_help(ui_state *ui);
int ui_pending_work(const ui_state *ui);
/* Sends a command to the source; puts its answer in the status line. */
int ui_send(ui_state *ui, const qt_ctl_cmd *cmd);

#endif
