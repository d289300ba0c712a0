/* ui.h: the ncurses dashboard (run, serve and demo modes), its layout
 * arithmetic and its themes.
 *
 * The dashboard never touches the engine's structs: a few times a second it
 * takes a snapshot (qt_engine_snapshot_take, qt_engine_queue_head,
 * qt_events_latest), draws that into one window per panel with wnoutrefresh
 * and calls doupdate() once per frame. Keys go through a table (src/ui/keys.c)
 * whose actions call engine controls and return reaction flags.
 *
 * Two parts have no curses in them so they can be tested over many inputs:
 *   layout  (src/ui/layout.c): where each panel goes for a terminal size, gauge
 *           and plot arithmetic, number formatting;
 *   theme   (src/ui/theme.c): parsing `role = fg,bg,attrs` theme files and
 *           finding them on disk.
 * Only src/ui/draw.c, panels.c, keys.c and ui.c include <ncurses.h>.
 *
 * Thread-safety: qt_ui_run / qt_ui_run_opts run on the main thread only (one
 * dashboard per process). Layout and theme functions touch only their
 * arguments and may be called from any thread.
 */
#ifndef QT_UI_H
#define QT_UI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "quotatop/ctl.h"
#include "quotatop/engine.h"

/* ------------------------------------------------------------ dashboard */

/* Why qt_ui_run returned. */
typedef enum {
    QT_UI_EXIT_QUIT = 0,     /* the user pressed q (and confirmed when work was pending) */
    QT_UI_EXIT_SIGNAL,       /* SIGINT / SIGTERM arrived */
    QT_UI_EXIT_DEADLINE,     /* opts.deadline_ms passed (demo --duration) */
    QT_UI_EXIT_NO_TERMINAL,  /* the terminal could not be set up; nothing drawn */
    QT_UI_EXIT_ERROR,        /* out of memory while running; terminal restored */
    QT_UI_EXIT_DONE,         /* run: every job has its result (without opts.stay) */
    QT_UI_EXIT_GONE,         /* top: the process it was attached to went away */
} qt_ui_exit;

typedef struct {
    const char *mode;        /* "run", "serve", "demo", "top" */
    uint64_t t0_ms;          /* monotonic start (qt_now_ms) of the run */
    const char *theme;       /* name or path; NULL: $QUOTATOP_THEME, else "default" */
    const char *subtitle;    /* extra header text (the demo's mock ports, top's address) */
    uint64_t deadline_ms;    /* monotonic time to return at; 0 = none */
    int refresh_ms;          /* frame period; 0 = 250 */
    int (*should_stop)(void);/* nonzero: leave with QT_UI_EXIT_SIGNAL (the caller's signal
                                flag); NULL = never */
    int stay;                /* run: keep the final screen up until q (--stay) */
} qt_ui_opts;

/* Runs the dashboard on the process's terminal, drawing frames from src
 * (the local control plane, or a remote one for `quotatop top`) and sending
 * keys to it as commands, until the user quits (q; a remote source detaches
 * and leaves the process running), a signal arrives (opts->should_stop()),
 * the deadline passes, a remote process goes away, or, for `run`, every job
 * has its result (unless opts->stay keeps the final DONE screen until q).
 * The terminal is restored before it returns, on every path (an atexit hook
 * also restores it if the process exits while the dashboard is up). The
 * engine is not shut down: the caller does that. Main thread only. */
qt_ui_exit qt_ui_run_source(qt_ctl_source *src, const qt_ui_opts *opts);

/* Queue counts (per base priority, ready, paused) for the dashboard header
 * of the jobs panel. Defined in src/engine/engine_ui.c; locks the engine
 * briefly. Any thread. */
void qt_engine_queue_counts(qt_engine *e, qt_queue_counts *out);

/* Whether a row matches a list filter (the `/` key): space-separated terms,
 * all must match; "key:text" matches the field named key (or a key it
 * starts with: "wf:" matches "workflow"), plain "text" any field; matching
 * is a case-insensitive substring. An empty filter matches all. Pure. */
int qt_ui_filter_match(const char *filter, const char *const *keys, const char *const *vals, int n);

/* ------------------------------------------------------------ layout */

typedef enum {
    QT_PANEL_HEADER = 0,
    QT_PANEL_LIMITS,
    QT_PANEL_HISTORY,
    QT_PANEL_JOBS,
    QT_PANEL_WORKFLOWS,
    QT_PANEL_EVENTS,
    QT_PANEL_FOOTER,
    QT_PANEL__COUNT
} qt_ui_panel;

typedef struct {
    int y, x, h, w;          /* h == 0 or w == 0: not shown */
} qt_ui_rect;

/* What the layout has to fit. */
typedef struct {
    int n_limit_rows;        /* models + providers */
    int n_workflows;
    int n_jobs;              /* jobs available for the view */
} qt_ui_layout_in;

typedef struct {
    qt_ui_rect r[QT_PANEL__COUNT];
    int too_small;           /* 1: only a "terminal too small" line fits */
    int limit_rows;          /* data rows of the limits table that fit */
    int two_plots;           /* history shows requests and tokens side by side */
    int wide;                /* >= 120 columns: extra columns in tables */
} qt_ui_layout;

#define QT_UI_MIN_COLS 40
#define QT_UI_MIN_ROWS 12

/* Places the panels for a cols x rows terminal. Every shown rectangle lies
 * inside the screen and no two overlap; at 80x24 and larger every panel is
 * shown (each panel's first line is its title); smaller terminals drop the
 * history, then the events, then shrink the rest. Below QT_UI_MIN_COLS x
 * QT_UI_MIN_ROWS sets too_small and shows only the header and footer when
 * they fit. Pure arithmetic. */
void qt_ui_layout_compute(int cols, int rows, const qt_ui_layout_in *in, qt_ui_layout *out);

/* Gauge fill: how many of `width` cells show used/limit (rounded, clamped to
 * width; 0 when limit <= 0). *level (if not NULL) gets 0 ok (< 80%), 1 warn
 * (< 98%), 2 full. */
int qt_ui_gauge_cells(double used, double limit, int width, int *level);

/* Resamples the last `n` per-second samples of src (oldest first) into w
 * columns, each the mean of the samples it covers (w >= n: one sample per
 * column, right-aligned, missing columns -1). Returns the largest value. */
double qt_ui_resample(const uint32_t *src, size_t n, double *dst, int w);

/* Vertical bar of value v on a plot h rows high scaled to vmax: eighths of
 * the cell in row `row` (0 = top) that are filled, 0..8. */
int qt_ui_bar_eighths(double v, double vmax, int h, int row);

/* Row (0 = top) where a limit line of value `limit` goes on a plot h rows
 * high scaled to vmax; -1 when limit <= 0 or above the plot. */
int qt_ui_limit_row(double limit, double vmax, int h);

/* A "nice" plot scale >= v (1, 2, 5 x 10^k). */
double qt_ui_nice_max(double v);

/* Formats a count compactly into buf: 999, 1.2k, 45k, 1.2M, 3.4G (at most
 * 4 characters below 1e12). Returns buf. */
char *qt_ui_fmt_count(double v, char *buf, size_t len);

/* Formats a duration in ms: "850ms", "12s", "3m05s", "2h01m". Returns buf. */
char *qt_ui_fmt_dur(uint64_t ms, char *buf, size_t len);

/* Index of the first visible row of a list of n rows shown in h lines so
 * that `sel` is visible, keeping `top` when possible. */
int qt_ui_scroll(int top, int sel, int n, int h);

/* ------------------------------------------------------------ columns */

/* One column of a table (src/ui/columns.c). */
typedef struct {
    const char *name;        /* header label */
    int min;                 /* narrowest width that holds every value (abbreviated) */
    int want;                /* width it grows to when there is room */
    int drop;                /* 0 never dropped; larger numbers are dropped first and
                                grow later */
    int flex;                /* 1: shares the room left over (gauges, free text) */
    int w;                   /* out: width given; 0 = not shown */
    int x;                   /* out: first column (0-based) */
} qt_ui_col;

/* Fits columns into width, one space between shown ones: drops whole
 * columns (largest `drop` first, never drop 0) until the minimums fit, then
 * grows fixed columns toward `want` (lowest drop first) and splits what is
 * left among the flex ones. Never gives a shown column less than its min.
 * Returns how many are shown. Pure. */
int qt_ui_fit_columns(qt_ui_col *cols, int n, int width);

/* Cell text for a width; each returns the length written (0 = nothing fits:
 * buf is ""), never a cut number. fmt_fit: a count (qt_ui_fmt_count).
 * fmt_pair: "used/limit" ("50/108", "21k/32k"; "used/-" with no limit),
 * else the share "46%", else "". fmt_usd: 0.0347, 12.35, 1234, 12k.
 * fit_id: the id, or its head and tail around a "~" (the tail tells
 * numbered ids apart). Pure. */
int qt_ui_fmt_fit(double v, int width, char *buf, size_t len);
int qt_ui_fmt_pair(double used, double limit, int width, char *buf, size_t len);
int qt_ui_fmt_usd(double v, int width, char *buf, size_t len);
int qt_ui_fit_id(const char *id, int width, char *buf, size_t len);

/* The LIMITS, JOBS and WORKFLOWS tables' columns for a panel width. */
enum { QT_UI_LC_NAME, QT_UI_LC_CIRC, QT_UI_LC_RPM, QT_UI_LC_TPM, QT_UI_LC_INFL, QT_UI_LC_429,
       QT_UI_LC_ERR, QT_UI_LC_LAT, QT_UI_LC__COUNT };
enum { QT_UI_JC_ID, QT_UI_JC_STATE, QT_UI_JC_PRIO, QT_UI_JC_WORKFLOW, QT_UI_JC_MODEL,
       QT_UI_JC_AGE, QT_UI_JC_FOR, QT_UI_JC_EST, QT_UI_JC_WAIT, QT_UI_JC__COUNT };
enum { QT_UI_WC_NAME, QT_UI_WC_CALLS, QT_UI_WC_TOKENS, QT_UI_WC_SPEND, QT_UI_WC_BUDGET,
       QT_UI_WC_QUEUE, QT_UI_WC__COUNT };
void qt_ui_limits_columns(int width, qt_ui_col out[QT_UI_LC__COUNT]);
void qt_ui_jobs_columns(int width, qt_ui_col out[QT_UI_JC__COUNT]);
void qt_ui_wf_columns(int width, qt_ui_col out[QT_UI_WC__COUNT]);

/* ------------------------------------------------------------ themes */

typedef enum {
    QT_ROLE_TEXT = 0,
    QT_ROLE_DIM,
    QT_ROLE_HEADER,
    QT_ROLE_HEADER_PAUSED,
    QT_ROLE_HEADER_DONE,
    QT_ROLE_TITLE,
    QT_ROLE_TITLE_FOCUS,
    QT_ROLE_LABEL,
    QT_ROLE_SELECTION,
    QT_ROLE_GAUGE_OK,
    QT_ROLE_GAUGE_WARN,
    QT_ROLE_GAUGE_FULL,
    QT_ROLE_GAUGE_EMPTY,
    QT_ROLE_CIRCUIT_CLOSED,
    QT_ROLE_CIRCUIT_HALF_OPEN,
    QT_ROLE_CIRCUIT_OPEN,
    QT_ROLE_CHANGED,
    QT_ROLE_PLOT_REQUESTS,
    QT_ROLE_PLOT_TOKENS,
    QT_ROLE_PLOT_LIMIT,
    QT_ROLE_PAUSED,
    QT_ROLE_EVENT_INFO,
    QT_ROLE_EVENT_RETRY,
    QT_ROLE_EVENT_RATE_LIMITED,
    QT_ROLE_EVENT_FALLBACK,
    QT_ROLE_EVENT_CIRCUIT,
    QT_ROLE_EVENT_BUDGET,
    QT_ROLE_EVENT_LIMIT,
    QT_ROLE_EVENT_CANCEL,
    QT_ROLE_EVENT_ERROR,
    QT_ROLE_FOOTER,
    QT_ROLE_FOOTER_KEY,
    QT_ROLE_DIALOG,
    QT_ROLE__COUNT
} qt_ui_role;

/* Colours: -1 terminal default, 0..7 black red green yellow blue magenta cyan
 * white, 8..15 their bright forms, 16..255 the xterm palette. */
#define QT_COLOR_DEFAULT (-1)

/* Attribute bits (mapped to curses attributes by the drawing code). */
#define QT_ATTR_BOLD      0x01u
#define QT_ATTR_DIM       0x02u
#define QT_ATTR_REVERSE   0x04u
#define QT_ATTR_UNDERLINE 0x08u
#define QT_ATTR_STANDOUT  0x10u
#define QT_ATTR_ITALIC    0x20u

typedef struct {
    short fg, bg;
    unsigned attrs;
} qt_ui_style;

typedef struct {
    char name[64];                    /* file stem or "builtin" */
    qt_ui_style roles[QT_ROLE__COUNT];
} qt_theme;

/* Static lower-case name of a role ("gauge_ok"), "?" when out of range. */
const char *qt_theme_role_name(qt_ui_role role);

/* Returns the role named `name`, or -1. */
int qt_theme_role_from_name(const char *name);

/* Fills *t with the built-in default theme (what themes/default.theme holds). */
void qt_theme_builtin(qt_theme *t);

/* Parses theme text over the built-in default (roles not named keep it).
 * Lines: `role = fg,bg,attrs` where fg/bg are a colour name (default, black,
 * red, green, yellow, blue, magenta, cyan, white, bright_<name>, grey/gray)
 * or a number -1..255, attrs a `|`- or space-separated list of bold, dim,
 * reverse, underline, standout, italic, normal (may be empty, as may bg).
 * `#` starts a comment; blank lines are ignored. On the first malformed line
 * returns QT_ERR_INVALID with "ORIGIN:LINE: reason" in err and *t reset to
 * the built-in default; else QT_OK. origin names the text in messages. */
qt_err qt_theme_parse(const char *text, size_t len, const char *origin, qt_theme *t,
                      char *err, size_t errlen);

/* Reads and parses a theme file (as qt_theme_parse; a missing file is
 * QT_ERR_IO with "PATH: reason" in err). t->name gets the file stem. */
qt_err qt_theme_load(const char *path, qt_theme *t, char *err, size_t errlen);

/* Finds the file of theme `name`: a path when name contains '/', else
 * NAME.theme in exe_dir/../themes, then ./themes, then datadir/themes.
 * Writes the first that exists into out and returns QT_OK; QT_ERR_NOTFOUND
 * otherwise. exe_dir and datadir may be NULL. */
qt_err qt_theme_find(const char *name, const char *exe_dir, const char *datadir, char *out,
                     size_t outlen);

/* Maps colour c (-1..255) onto a terminal with ncolors colours: unchanged
 * when it fits; 8..15 on 8 colours becomes 0..7 with *bold set; 16..255 on
 * fewer than 256 colours becomes the nearest of the 16 (or 8) basic ones. */
short qt_theme_degrade_color(short c, int ncolors, int *bold);

/* Names of the themes `t` cycles through, in order. */
extern const char *const qt_theme_cycle[];
#define QT_THEME_CYCLE_LEN 4

#endif /* QT_UI_H */
