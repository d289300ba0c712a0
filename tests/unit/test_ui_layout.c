/* test_ui_layout.c: the dashboard's layout arithmetic (suite "ui_layout").
 *
 * DESIGN
 * The layout is checked over every terminal size from 1x1 to 260x90 (and a
 * few extreme ones) against its invariants: every shown rectangle inside
 * the screen, no two overlapping, header on top and footer at the bottom,
 * every panel shown from 80x24 up, panels that appear never disappear when
 * the terminal grows. Gauge, plot and formatting helpers are checked with
 * parameter tables of hand-computed cases. No curses here: the layout code
 * has none.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quotatop/ui.h"

static const qt_ui_layout_in demo_in = { 5, 4, 100 };

static int inside(const qt_ui_rect *r, int cols, int rows)
{
    return r->y >= 0 && r->x >= 0 && r->y + r->h <= rows && r->x + r->w <= cols;
}

static int overlap(const qt_ui_rect *a, const qt_ui_rect *b)
{
    if (!a->h || !b->h)
        return 0;
    return a->x < b->x + b->w && b->x < a->x + a->w && a->y < b->y + b->h && b->y < a->y + a->h;
}

static void check_invariants(int cols, int rows, const qt_ui_layout_in *in)
{
    qt_ui_layout l;
    qt_ui_layout_compute(cols, rows, in, &l);
    for (int p = 0; p < QT_PANEL__COUNT; p++) {
        const qt_ui_rect *r = &l.r[p];
        cr_assert((r->h == 0) == (r->w == 0), "%dx%d panel %d: h %d w %d", cols, rows, p, r->h, r->w);
        if (r->h)
            cr_assert(inside(r, cols, rows), "%dx%d panel %d outside: y%d x%d h%d w%d", cols, rows, p,
                      r->y, r->x, r->h, r->w);
        for (int q = p + 1; q < QT_PANEL__COUNT; q++)
            cr_assert(!overlap(r, &l.r[q]), "%dx%d panels %d and %d overlap", cols, rows, p, q);
    }
    if (cols >= QT_UI_MIN_COLS && rows >= QT_UI_MIN_ROWS) {
        cr_assert(!l.too_small, "%dx%d flagged too small", cols, rows);
        cr_assert_eq(l.r[QT_PANEL_HEADER].y, 0);
        cr_assert_eq(l.r[QT_PANEL_FOOTER].y, rows - 1, "%dx%d footer at %d", cols, rows,
                     l.r[QT_PANEL_FOOTER].y);
        cr_assert(l.r[QT_PANEL_LIMITS].h >= 2, "%dx%d limits %d", cols, rows, l.r[QT_PANEL_LIMITS].h);
        cr_assert(l.r[QT_PANEL_JOBS].h >= 2 && l.r[QT_PANEL_WORKFLOWS].h >= 2, "%dx%d queue %d wf %d",
                  cols, rows, l.r[QT_PANEL_JOBS].h, l.r[QT_PANEL_WORKFLOWS].h);
        cr_assert_eq(l.limit_rows, l.r[QT_PANEL_LIMITS].h - 1);
        /* the bands cover every line between header and footer */
        int covered = 0;
        for (int y = 0; y < rows; y++)
            for (int p = 0; p < QT_PANEL__COUNT; p++)
                if (l.r[p].h && l.r[p].x == 0 && y >= l.r[p].y && y < l.r[p].y + l.r[p].h) {
                    covered++;
                    break;
                }
        cr_assert_eq(covered, rows, "%dx%d: %d of %d lines used", cols, rows, covered, rows);
    } else {
        cr_assert(l.too_small, "%dx%d not flagged too small", cols, rows);
        cr_assert_eq(l.r[QT_PANEL_LIMITS].h, 0);
    }
    if (cols >= 80 && rows >= 24)
        for (int p = 0; p < QT_PANEL__COUNT; p++)
            cr_assert(l.r[p].h >= (p == QT_PANEL_HEADER || p == QT_PANEL_FOOTER ? 1
                                   : p == QT_PANEL_LIMITS ? 2 : 3),
                      "%dx%d: panel %d has %d lines", cols, rows, p, l.r[p].h);
}

Test(ui_layout, invariants_over_every_size)
{
    for (int cols = 1; cols <= 260; cols++)
        for (int rows = 1; rows <= 90; rows++)
            check_invariants(cols, rows, &demo_in);
    check_invariants(1000, 400, &demo_in);
    check_invariants(32767, 2, &demo_in);
}

Test(ui_layout, invariants_with_many_rows)
{
    qt_ui_layout_in in = { 200, 300, 10000 };
    for (int cols = 30; cols <= 220; cols += 7)
        for (int rows = 5; rows <= 80; rows++)
            check_invariants(cols, rows, &in);
    qt_ui_layout_in none = { 0, 0, 0 };
    for (int rows = 5; rows <= 80; rows++)
        check_invariants(80, rows, &none);
}

Test(ui_layout, panels_never_disappear_when_growing)
{
    for (int cols = QT_UI_MIN_COLS; cols <= 220; cols += 3)
        for (int rows = QT_UI_MIN_ROWS; rows < 90; rows++) {
            qt_ui_layout a, b, c;
            qt_ui_layout_compute(cols, rows, &demo_in, &a);
            qt_ui_layout_compute(cols, rows + 1, &demo_in, &b);
            qt_ui_layout_compute(cols + 1, rows, &demo_in, &c);
            for (int p = 0; p < QT_PANEL__COUNT; p++) {
                cr_assert(!a.r[p].h || b.r[p].h, "panel %d lost from %dx%d to %dx%d", p, cols, rows, cols,
                          rows + 1);
                cr_assert(!a.r[p].h || c.r[p].h, "panel %d lost from %dx%d to %dx%d", p, cols, rows,
                          cols + 1, rows);
            }
            cr_assert_geq(b.limit_rows, a.limit_rows);
        }
}

Test(ui_layout, shapes_at_80x24_and_200x60)
{
    qt_ui_layout l;
    qt_ui_layout_compute(80, 24, &demo_in, &l);
    cr_assert_eq(l.r[QT_PANEL_HEADER].h, 2);
    cr_assert_eq(l.limit_rows, 5, "all 5 limit rows fit at 80x24, got %d", l.limit_rows);
    cr_assert_eq(l.r[QT_PANEL_JOBS].y, l.r[QT_PANEL_WORKFLOWS].y, "queue and workflows side by side");
    cr_assert(l.two_plots);
    cr_assert(!l.wide);
    qt_ui_layout_compute(200, 60, &demo_in, &l);
    cr_assert(l.wide);
    cr_assert_eq(l.limit_rows, 5);
    cr_assert_geq(l.r[QT_PANEL_HISTORY].h, 10);
    cr_assert_geq(l.r[QT_PANEL_EVENTS].h, 10);
    /* narrow: queue above workflows */
    qt_ui_layout_compute(60, 30, &demo_in, &l);
    cr_assert_lt(l.r[QT_PANEL_JOBS].y, l.r[QT_PANEL_WORKFLOWS].y);
    /* many models: the table is capped at two fifths of the space */
    qt_ui_layout_in many = { 50, 3, 10 };
    qt_ui_layout_compute(80, 24, &many, &l);
    cr_assert_leq(l.r[QT_PANEL_LIMITS].h, (24 - 3) * 2 / 5);
    /* too short for history: it goes first, queue stays */
    qt_ui_layout_compute(80, 14, &demo_in, &l);
    cr_assert_eq(l.r[QT_PANEL_HISTORY].h, 0);
    cr_assert_gt(l.r[QT_PANEL_JOBS].h, 0);
}

/* From 100 columns the JOBS panel says what each job waits on and until
 * when (or the provider it is on) beside its state and time in it. */
Test(ui_layout, jobs_show_what_they_wait_on_from_100_columns)
{
    for (int cols = 100; cols <= 300; cols++) {
        qt_ui_layout l;
        qt_ui_layout_compute(cols, 40, &demo_in, &l);
        qt_ui_col jc[QT_UI_JC__COUNT];
        qt_ui_jobs_columns(l.r[QT_PANEL_JOBS].w - 2, jc);
        cr_assert(jc[QT_UI_JC_WAIT].w >= 10, "%d cols: the \"on\" column is dropped", cols);
        cr_assert(jc[QT_UI_JC_FOR].w && jc[QT_UI_JC_STATE].w, "%d cols: state / for dropped", cols);
        cr_assert_geq(l.r[QT_PANEL_WORKFLOWS].w, 44, "%d cols: WORKFLOWS keeps its columns", cols);
    }
}

/* ---- gauges ------------------------------------------------------------- */

struct gauge_case { double used, limit; int width, cells, level; };

ParameterizedTestParameters(ui_layout, gauge)
{
    static struct gauge_case cases[] = {
        { 0, 100, 10, 0, 0 },     { 50, 100, 10, 5, 0 },   { 79, 100, 10, 8, 0 },
        { 80, 100, 10, 8, 1 },    { 97.9, 100, 10, 10, 1 }, { 98, 100, 10, 10, 2 },
        { 150, 100, 10, 10, 2 },  { 5, 0, 10, 0, 0 },      { 5, -1, 10, 0, 0 },
        { 1, 100, 10, 0, 0 },     { 6, 100, 10, 1, 0 },    { 50, 100, 0, 0, 0 },
        { 1, 3, 3, 1, 0 },        { -5, 100, 10, 0, 0 },   { NAN, 100, 10, 0, 0 },
    };
    return cr_make_param_array(struct gauge_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct gauge_case *c, ui_layout, gauge)
{
    int level = -1;
    int cells = qt_ui_gauge_cells(c->used, c->limit, c->width, &level);
    cr_assert_eq(cells, c->cells, "%g/%g over %d: %d cells, want %d", c->used, c->limit, c->width, cells,
                 c->cells);
    cr_assert_eq(level, c->level, "%g/%g: level %d, want %d", c->used, c->limit, level, c->level);
}

/* ---- plots -------------------------------------------------------------- */

Test(ui_layout, resample_right_aligns_when_wide)
{
    uint32_t src[4] = { 1, 2, 3, 9 };
    double dst[6];
    double mx = qt_ui_resample(src, 4, dst, 6);
    cr_assert_float_eq(mx, 9, 1e-9);
    cr_assert_float_eq(dst[0], -1, 1e-9);
    cr_assert_float_eq(dst[1], -1, 1e-9);
    cr_assert_float_eq(dst[2], 1, 1e-9);
    cr_assert_float_eq(dst[5], 9, 1e-9);
}

Test(ui_layout, resample_means_when_narrow)
{
    uint32_t src[120];
    for (int i = 0; i < 120; i++)
        src[i] = (uint32_t)(i < 60 ? 2 : 10);
    double dst[30];
    double mx = qt_ui_resample(src, 120, dst, 30);
    cr_assert_float_eq(mx, 10, 1e-9);
    for (int j = 0; j < 15; j++)
        cr_assert_float_eq(dst[j], 2, 1e-9, "col %d = %g", j, dst[j]);
    for (int j = 15; j < 30; j++)
        cr_assert_float_eq(dst[j], 10, 1e-9, "col %d = %g", j, dst[j]);
    /* uneven split: every sample counted once, mean preserved overall */
    uint32_t ramp[120];
    double total = 0;
    for (int i = 0; i < 120; i++)
        total += ramp[i] = (uint32_t)i;
    double d7[7], sum = 0;
    qt_ui_resample(ramp, 120, d7, 7);
    for (int j = 0; j < 7; j++) {
        size_t a = (size_t)j * 120 / 7, b = (size_t)(j + 1) * 120 / 7;
        sum += d7[j] * (double)(b - a);
    }
    cr_assert_float_eq(sum, total, 1e-6);
}

Test(ui_layout, bar_eighths_add_up)
{
    for (int h = 1; h <= 12; h++)
        for (double v = 0; v <= 20; v += 0.37) {
            int total = 0;
            for (int r = 0; r < h; r++) {
                int e = qt_ui_bar_eighths(v, 20, h, r);
                cr_assert(e >= 0 && e <= 8);
                if (r > 0 && qt_ui_bar_eighths(v, 20, h, r - 1) > 0)
                    cr_assert_eq(e, 8, "cells below a filled cell are full (h %d v %g row %d)", h, v, r);
                total += e;
            }
            int want = v > 0 ? (int)floor(v / 20 * h * 8 + 0.5) : 0;
            if (v > 0 && want < 1)
                want = 1;
            cr_assert_eq(total, want, "h %d v %g: %d eighths, want %d", h, v, total, want);
        }
    cr_assert_eq(qt_ui_bar_eighths(1000, 20, 4, 0), 8, "clamped to the top");
    cr_assert_eq(qt_ui_bar_eighths(5, 0, 4, 3), 0);
}

struct limit_case { double limit, vmax; int h, row; };

ParameterizedTestParameters(ui_layout, limit_row)
{
    static struct limit_case cases[] = {
        { 10, 10, 5, 0 },  { 9, 10, 5, 0 },   { 8, 10, 5, 1 },  { 2, 10, 5, 4 },
        { 0.1, 10, 5, 4 }, { 0, 10, 5, -1 },  { 11, 10, 5, -1 }, { 5, 10, 1, 0 },
        { 6, 10, 10, 4 },  { 6, 10, 0, -1 },  { -3, 10, 5, -1 },
    };
    return cr_make_param_array(struct limit_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct limit_case *c, ui_layout, limit_row)
{
    int r = qt_ui_limit_row(c->limit, c->vmax, c->h);
    cr_assert_eq(r, c->row, "limit %g of %g on %d rows: row %d, want %d", c->limit, c->vmax, c->h, r,
                 c->row);
}

Test(ui_layout, nice_max)
{
    double in[] = { 0, -1, 0.3, 1, 1.01, 2, 2.5, 7, 10, 11, 180, 2250, 9999 };
    double want[] = { 1, 1, 0.5, 1, 2, 2, 5, 10, 10, 20, 200, 5000, 10000 };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        cr_assert_float_eq(qt_ui_nice_max(in[i]), want[i], 1e-9, "nice(%g) = %g, want %g", in[i],
                           qt_ui_nice_max(in[i]), want[i]);
}

/* ---- formatting --------------------------------------------------------- */

struct count_case { double v; char want[16]; };

ParameterizedTestParameters(ui_layout, fmt_count)
{
    static struct count_case cases[] = {
        { 0, "0" },         { 999, "999" },      { 1000, "1.0k" },  { 1234, "1.2k" },
        { 9949, "9.9k" },   { 9950, "10k" },     { 45000, "45k" },  { 999499, "999k" },
        { 999500, "1.0M" }, { 1234567, "1.2M" }, { 5e7, "50M" },    { -3, "0" },
    };
    return cr_make_param_array(struct count_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct count_case *c, ui_layout, fmt_count)
{
    char buf[16];
    cr_assert_str_eq(qt_ui_fmt_count(c->v, buf, sizeof buf), c->want);
}

struct dur_case { uint64_t ms; char want[16]; };

ParameterizedTestParameters(ui_layout, fmt_dur)
{
    static struct dur_case cases[] = {
        { 0, "0ms" },     { 850, "850ms" },   { 1000, "1s" },      { 59999, "59s" },
        { 60000, "1m00s" }, { 185000, "3m05s" }, { 3600000, "1h00m" }, { 7260000, "2h01m" },
    };
    return cr_make_param_array(struct dur_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct dur_case *c, ui_layout, fmt_dur)
{
    char buf[16];
    cr_assert_str_eq(qt_ui_fmt_dur(c->ms, buf, sizeof buf), c->want);
}

Test(ui_layout, scroll_keeps_selection_visible)
{
    for (int n = 0; n < 40; n++)
        for (int h = 1; h < 12; h++)
            for (int top = 0; top < 40; top += 3)
                for (int sel = 0; sel < n; sel++) {
                    int t = qt_ui_scroll(top, sel, n, h);
                    cr_assert(t >= 0 && t <= (n > h ? n - h : 0), "n %d h %d top %d sel %d -> %d", n, h, top,
                              sel, t);
                    cr_assert(sel >= t && sel < t + h, "n %d h %d top %d sel %d -> %d", n, h, top, sel, t);
                }
    cr_assert_eq(qt_ui_scroll(5, 6, 20, 4), 5, "a visible selection keeps the top");
    cr_assert_eq(qt_ui_scroll(3, 0, 0, 4), 0);
}

/* ---- columns and cells: no shown number differs from its value ----------- */

/* Parses a count as the dashboard shows it ("999", "1.2k", "32k", "4.5M",
 * "2G"); *tol gets half a unit of its last digit. Returns 0 on garbage. */
static int parse_count(const char *s, double *v, double *tol)
{
    char *end;
    double x = strtod(s, &end);
    if (end == s)
        return 0;
    double mul = 1;
    if (*end == 'k')
        mul = 1e3;
    else if (*end == 'M')
        mul = 1e6;
    else if (*end == 'G')
        mul = 1e9;
    if (mul > 1)
        end++;
    if (*end)
        return 0;
    const char *dot = strchr(s, '.');
    double unit = 1;
    if (dot)
        for (const char *p = dot + 1; *p >= '0' && *p <= '9'; p++)
            unit /= 10;
    *v = x * mul;
    *tol = unit * mul / 2 + 1e-9;
    return 1;
}

static void assert_count_is(const char *shown, double value, const char *what)
{
    double v, tol;
    cr_assert(parse_count(shown, &v, &tol), "%s: \"%s\" is not a number", what, shown);
    cr_assert(fabs(v - value) <= tol, "%s: shows \"%s\" for %.0f", what, shown, value);
}

/* A pair cell: "used/limit" (both right) or the share "NN%" or nothing. */
static void assert_pair_is(const char *shown, double used, double limit, int width, const char *what)
{
    cr_assert((int)strlen(shown) <= width, "%s: \"%s\" wider than %d", what, shown, width);
    if (!*shown)
        return;
    const char *slash = strchr(shown, '/');
    if (slash) {
        char a[32];
        snprintf(a, sizeof a, "%.*s", (int)(slash - shown), shown);
        assert_count_is(a, used, what);
        if (strcmp(slash + 1, "-"))
            assert_count_is(slash + 1, limit, what);
        return;
    }
    cr_assert(shown[strlen(shown) - 1] == '%', "%s: \"%s\" is neither a pair nor a share", what, shown);
    if (shown[0] == '>')
        cr_assert(100.0 * used / limit > atoi(shown + 1), "%s: \"%s\"", what, shown);
    else
        cr_assert_eq(atoi(shown), (int)floor(100.0 * used / limit + 0.5), "%s: \"%s\"", what, shown);
}

static void assert_columns_fit(const qt_ui_col *c, int n, int width, const char *what)
{
    int last_end = 0;
    for (int i = 0; i < n; i++) {
        if (!c[i].w)
            continue;
        cr_assert(c[i].w >= c[i].min, "%s w%d: column %s %d < min %d", what, width, c[i].name, c[i].w,
                  c[i].min);
        cr_assert(c[i].x >= last_end, "%s w%d: column %s overlaps", what, width, c[i].name);
        cr_assert(c[i].x + c[i].w <= width, "%s w%d: column %s past the edge", what, width, c[i].name);
        last_end = c[i].x + c[i].w + 1;
    }
    /* a column is only dropped when every shown one is at least as important */
    for (int i = 0; i < n; i++)
        if (!c[i].w)
            for (int j = 0; j < n; j++)
                cr_assert(!c[j].w || c[j].drop <= c[i].drop, "%s w%d: %s dropped before %s", what,
                          width, c[i].name, c[j].name);
}

static const double sample_counts[] = { 0, 6, 50, 108, 360, 999, 1000, 1234, 9949, 9950, 21000,
                                        32000, 135000, 999499, 999500, 4.5e6, 1.2e8, 3.4e9 };

static void check_cells_at(int width, const char *what, const qt_ui_col *c, int num_col, int pair)
{
    const qt_ui_col *col = &c[num_col];
    if (!col->w)
        return;
    int tw = pair ? (col->w < 10 ? col->w : 10) - 1 : col->w;   /* room left by a "*" mark */
    char buf[64], name[96];
    for (size_t i = 0; i < sizeof sample_counts / sizeof sample_counts[0]; i++) {
        double v = sample_counts[i];
        snprintf(name, sizeof name, "%s col %s width %d value %.0f", what, col->name, width, v);
        if (pair) {
            for (size_t j = 1; j < sizeof sample_counts / sizeof sample_counts[0]; j++) {
                qt_ui_fmt_pair(v, sample_counts[j], tw, buf, sizeof buf);
                cr_assert(buf[0], "%s: a pair column shows nothing", name);
                assert_pair_is(buf, v, sample_counts[j], tw, name);
            }
        } else {
            qt_ui_fmt_fit(v, col->w, buf, sizeof buf);
            cr_assert(buf[0], "%s: nothing fits", name);
            assert_count_is(buf, v, name);
        }
    }
}

Test(ui_layout, no_shown_number_differs_from_its_value_at_any_size)
{
    for (int cols = 60; cols <= 240; cols++)
        for (int rows = 15; rows <= 70; rows += (rows < 30 ? 1 : 7)) {
            qt_ui_layout l;
            qt_ui_layout_compute(cols, rows, &demo_in, &l);
            qt_ui_col lc[QT_UI_LC__COUNT], jc[QT_UI_JC__COUNT], wc[QT_UI_WC__COUNT];
            int lw = l.r[QT_PANEL_LIMITS].w, jw = l.r[QT_PANEL_JOBS].w - 2, ww = l.r[QT_PANEL_WORKFLOWS].w;
            cr_assert(lw > 0 && jw > 0 && ww > 0, "%dx%d: a table panel is missing", cols, rows);
            qt_ui_limits_columns(lw, lc);
            qt_ui_jobs_columns(jw, jc);
            qt_ui_wf_columns(ww, wc);
            assert_columns_fit(lc, QT_UI_LC__COUNT, lw, "LIMITS");
            assert_columns_fit(jc, QT_UI_JC__COUNT, jw, "JOBS");
            assert_columns_fit(wc, QT_UI_WC__COUNT, ww, "WORKFLOWS");
            cr_assert(lc[QT_UI_LC_RPM].w && lc[QT_UI_LC_TPM].w, "%dx%d: RPM/TPM dropped", cols, rows);
            cr_assert(jc[QT_UI_JC_ID].w && jc[QT_UI_JC_STATE].w, "%dx%d: job id/state dropped", cols, rows);
            check_cells_at(lw, "LIMITS", lc, QT_UI_LC_RPM, 1);
            check_cells_at(lw, "LIMITS", lc, QT_UI_LC_TPM, 1);
            check_cells_at(lw, "LIMITS", lc, QT_UI_LC_429, 0);
            check_cells_at(lw, "LIMITS", lc, QT_UI_LC_ERR, 0);
            check_cells_at(jw, "JOBS", jc, QT_UI_JC_EST, 0);
            check_cells_at(ww, "WORKFLOWS", wc, QT_UI_WC_CALLS, 0);
            check_cells_at(ww, "WORKFLOWS", wc, QT_UI_WC_TOKENS, 0);
            check_cells_at(ww, "WORKFLOWS", wc, QT_UI_WC_QUEUE, 0);
        }
}

Test(ui_layout, the_issue_examples_are_never_cut)
{
    char buf[32];
    /* 60x15 showed "50/10", "6/36" and "21k/32": each pair is whole or not at all */
    struct { double u, l; const char *want; } ex[] = { { 50, 108, "50/108" }, { 6, 360, "6/360" },
                                                       { 21000, 32000, "21k/32k" } };
    for (size_t i = 0; i < 3; i++)
        for (int w = 1; w <= 12; w++) {
            qt_ui_fmt_pair(ex[i].u, ex[i].l, w, buf, sizeof buf);
            if (w >= (int)strlen(ex[i].want))
                cr_assert_str_eq(buf, ex[i].want, "width %d", w);
            else
                assert_pair_is(buf, ex[i].u, ex[i].l, w, ex[i].want);
        }
}

Test(ui_layout, usd_cells_round_never_cut)
{
    char buf[32];
    double vals[] = { 0, 0.0347, 1.5, 12.3456, 1234.5678, 98765.4321 };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        for (int w = 1; w <= 10; w++) {
            int n = qt_ui_fmt_usd(vals[i], w, buf, sizeof buf);
            cr_assert(n <= w);
            if (!n)
                continue;
            double v, tol;
            if (parse_count(buf, &v, &tol))
                cr_assert(fabs(v - vals[i]) <= tol + 1e-6, "%g at width %d shows %s", vals[i], w, buf);
            else
                cr_assert_fail("%g at width %d shows %s", vals[i], w, buf);
        }
}

Test(ui_layout, ids_stay_telling_apart_when_narrow)
{
    char a[64], b[64], id1[64], id2[64];
    for (int w = 7; w <= 24; w++)
        for (int i = 0; i < 1000; i += 7) {
            snprintf(id1, sizeof id1, "batch-2026-12-01-job-%06d", i);
            snprintf(id2, sizeof id2, "batch-2026-12-01-job-%06d", i + 1);
            qt_ui_fit_id(id1, w, a, sizeof a);
            qt_ui_fit_id(id2, w, b, sizeof b);
            cr_assert((int)strlen(a) <= w, "width %d: %s", w, a);
            cr_assert_str_neq(a, b, "width %d: %s and %s both show as %s", w, id1, id2, a);
        }
    qt_ui_fit_id("j12", 7, a, sizeof a);
    cr_assert_str_eq(a, "j12");
}

Test(ui_layout, columns_drop_whole_by_priority)
{
    qt_ui_col c[QT_UI_LC__COUNT];
    qt_ui_limits_columns(200, c);
    for (int i = 0; i < QT_UI_LC__COUNT; i++)
        cr_assert(c[i].w > 0, "200 columns: %s hidden", c[i].name);
    qt_ui_limits_columns(60, c);
    cr_assert_eq(c[QT_UI_LC_LAT].w, 0, "60 columns drop p50/p95 first");
    cr_assert(c[QT_UI_LC_NAME].w >= 14 && c[QT_UI_LC_RPM].w >= 9);
}
