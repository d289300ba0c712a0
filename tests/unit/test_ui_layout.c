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
        cr_assert(l.r[QT_PANEL_QUEUE].h >= 2 && l.r[QT_PANEL_WORKFLOWS].h >= 2, "%dx%d queue %d wf %d",
                  cols, rows, l.r[QT_PANEL_QUEUE].h, l.r[QT_PANEL_WORKFLOWS].h);
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
    cr_assert_eq(l.r[QT_PANEL_QUEUE].y, l.r[QT_PANEL_WORKFLOWS].y, "queue and workflows side by side");
    cr_assert(l.two_plots);
    cr_assert(!l.wide);
    qt_ui_layout_compute(200, 60, &demo_in, &l);
    cr_assert(l.wide);
    cr_assert_eq(l.limit_rows, 5);
    cr_assert_geq(l.r[QT_PANEL_HISTORY].h, 10);
    cr_assert_geq(l.r[QT_PANEL_EVENTS].h, 10);
    /* narrow: queue above workflows */
    qt_ui_layout_compute(60, 30, &demo_in, &l);
    cr_assert_lt(l.r[QT_PANEL_QUEUE].y, l.r[QT_PANEL_WORKFLOWS].y);
    /* many models: the table is capped at two fifths of the space */
    qt_ui_layout_in many = { 50, 3, 10 };
    qt_ui_layout_compute(80, 24, &many, &l);
    cr_assert_leq(l.r[QT_PANEL_LIMITS].h, (24 - 3) * 2 / 5);
    /* too short for history: it goes first, queue stays */
    qt_ui_layout_compute(80, 14, &demo_in, &l);
    cr_assert_eq(l.r[QT_PANEL_HISTORY].h, 0);
    cr_assert_gt(l.r[QT_PANEL_QUEUE].h, 0);
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
