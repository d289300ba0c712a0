/* layout.c: the dashboard's arithmetic, free of curses so it can be tested
 * over every terminal size (as nvtop keeps its layout code).
 *
 * DESIGN
 * The screen is a stack of bands: header (1-2 lines), limits table, history
 * plots, a middle band with the queue beside the workflows, events, footer
 * (1 line). Each band's first line is its title, so no box borders are spent.
 * The limits table takes what its rows need, up to two fifths of the space;
 * the remainder goes to history, middle and events in proportion 3:4:3 once
 * each has its minimum. When the terminal is too short, the history goes
 * first, then the events; the middle band and the limits always stay.
 * Below QT_UI_MIN_COLS x QT_UI_MIN_ROWS only header and footer are placed.
 *
 * The plot helpers map per-second samples onto character cells: resampling
 * (mean per column), bar heights in eighths of a cell (for the block
 * characters U+2581..U+2588) and the row where a limit line is drawn.
 */
#include "quotatop/ui.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define HIST_MIN 4     /* title + 3 plot rows */
#define HIST_MAX 17    /* taller plots add nothing */
#define MID_MIN 4      /* title + 3 rows */
#define EVENTS_MIN 3   /* title + 2 events */

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

static qt_ui_rect rect(int y, int x, int h, int w)
{
    qt_ui_rect r = { y, x, h > 0 ? h : 0, w > 0 ? w : 0 };
    if (!r.h || !r.w)
        r.h = r.w = 0;
    return r;
}

void qt_ui_layout_compute(int cols, int rows, const qt_ui_layout_in *in, qt_ui_layout *out)
{
    memset(out, 0, sizeof *out);
    if (cols <= 0 || rows <= 0) {
        out->too_small = 1;
        return;
    }
    if (cols < QT_UI_MIN_COLS || rows < QT_UI_MIN_ROWS) {
        out->too_small = 1;
        out->r[QT_PANEL_HEADER] = rect(0, 0, 1, cols);
        if (rows >= 2)
            out->r[QT_PANEL_FOOTER] = rect(rows - 1, 0, 1, cols);
        return;
    }
    int header_h = rows >= 16 ? 2 : 1;
    out->r[QT_PANEL_HEADER] = rect(0, 0, header_h, cols);
    out->r[QT_PANEL_FOOTER] = rect(rows - 1, 0, 1, cols);
    int avail = rows - header_h - 1;   /* >= QT_UI_MIN_ROWS - 2 = 10 */
    int y = header_h;

    int want_rows = imax(1, in ? in->n_limit_rows : 1);
    int lim_cap = imax(2, avail * 2 / 5);
    int limits_h = imin(1 + want_rows, lim_cap);
    out->r[QT_PANEL_LIMITS] = rect(y, 0, limits_h, cols);
    out->limit_rows = limits_h - 1;
    y += limits_h;
    int rest = avail - limits_h;

    int hist = 0, events = 0, mid = rest;
    if (rest >= HIST_MIN + MID_MIN + EVENTS_MIN) {
        hist = HIST_MIN;
        events = EVENTS_MIN;
        mid = MID_MIN;
    } else if (rest >= MID_MIN + EVENTS_MIN) {
        events = EVENTS_MIN;
        mid = MID_MIN;
    }
    int extra = rest - hist - events - mid;
    if (extra > 0 && (hist || events)) {
        int wh = hist ? 3 : 0, wm = 4, we = events ? 3 : 0, ws = wh + wm + we;
        int add_h = extra * wh / ws, add_e = extra * we / ws;
        if (hist + add_h > HIST_MAX)
            add_h = HIST_MAX - hist;
        hist += add_h;
        events += add_e;
        extra -= add_h + add_e;
    }
    mid += extra;   /* leftovers (rounding, capped history) go to the middle */

    if (hist) {
        out->r[QT_PANEL_HISTORY] = rect(y, 0, hist, cols);
        y += hist;
    }
    if (cols >= 70) {
        /* JOBS gets 56%; from 110 columns WORKFLOWS keeps 40% (at least the
         * 44 its columns need) and JOBS the rest, so the column saying what a
         * job waits on and until when fits beside its state */
        int qw = cols >= 110 ? cols - imax(44, cols * 40 / 100) : cols * 56 / 100;
        out->r[QT_PANEL_JOBS] = rect(y, 0, mid, qw);
        out->r[QT_PANEL_WORKFLOWS] = rect(y, qw, mid, cols - qw);
    } else {
        int wf = imax(2, mid / 2);
        out->r[QT_PANEL_JOBS] = rect(y, 0, mid - wf, cols);
        out->r[QT_PANEL_WORKFLOWS] = rect(y + mid - wf, 0, wf, cols);
    }
    y += mid;
    if (events)
        out->r[QT_PANEL_EVENTS] = rect(y, 0, events, cols);
    out->two_plots = cols >= 60;
    out->wide = cols >= 120;
}

int qt_ui_gauge_cells(double used, double limit, int width, int *level)
{
    if (level)
        *level = 0;
    if (limit <= 0 || width <= 0 || !(used > 0))
        return 0;
    double f = used / limit;
    if (level)
        *level = f >= 0.98 ? 2 : f >= 0.8 ? 1 : 0;
    double cells = floor(f * width + 0.5);
    if (cells > width)
        cells = width;
    return (int)cells;
}

double qt_ui_resample(const uint32_t *src, size_t n, double *dst, int w)
{
    double mx = 0;
    if (w <= 0)
        return 0;
    if ((size_t)w >= n) {
        int pad = w - (int)n;
        for (int i = 0; i < pad; i++)
            dst[i] = -1;
        for (size_t i = 0; i < n; i++) {
            dst[pad + (int)i] = src[i];
            if (src[i] > mx)
                mx = src[i];
        }
        return mx;
    }
    for (int j = 0; j < w; j++) {
        size_t a = (size_t)j * n / (size_t)w, b = (size_t)(j + 1) * n / (size_t)w;
        double sum = 0;
        for (size_t i = a; i < b; i++)
            sum += src[i];
        dst[j] = b > a ? sum / (double)(b - a) : 0;
        if (dst[j] > mx)
            mx = dst[j];
    }
    return mx;
}

int qt_ui_bar_eighths(double v, double vmax, int h, int row)
{
    if (h <= 0 || vmax <= 0 || !(v > 0) || row < 0 || row >= h)
        return 0;
    double t = floor(v / vmax * h * 8 + 0.5);
    if (t < 1)
        t = 1;   /* any traffic shows */
    if (t > h * 8)
        t = h * 8;
    int level = h - 1 - row;   /* 0 = bottom cell */
    int filled = (int)t - level * 8;
    return filled < 0 ? 0 : filled > 8 ? 8 : filled;
}

int qt_ui_limit_row(double limit, double vmax, int h)
{
    if (limit <= 0 || vmax <= 0 || h <= 0 || limit > vmax * (1 + 1e-9))
        return -1;
    int level = (int)ceil(limit / vmax * h - 1e-9) - 1;
    if (level < 0)
        level = 0;
    if (level > h - 1)
        level = h - 1;
    return h - 1 - level;
}

double qt_ui_nice_max(double v)
{
    if (!(v > 0))
        return 1;
    double e = pow(10, floor(log10(v)));
    double m = v / e;
    double nm = m <= 1 + 1e-9 ? 1 : m <= 2 + 1e-9 ? 2 : m <= 5 + 1e-9 ? 5 : 10;
    return nm * e;
}

char *qt_ui_fmt_count(double v, char *buf, size_t len)
{
    if (v < 0)
        v = 0;
    if (v < 1000)
        snprintf(buf, len, "%.0f", v);
    else if (v < 9950)
        snprintf(buf, len, "%.1fk", v / 1e3);
    else if (v < 999500)
        snprintf(buf, len, "%.0fk", v / 1e3);
    else if (v < 9.95e6)
        snprintf(buf, len, "%.1fM", v / 1e6);
    else if (v < 999.5e6)
        snprintf(buf, len, "%.0fM", v / 1e6);
    else if (v < 9.95e9)
        snprintf(buf, len, "%.1fG", v / 1e9);
    else
        snprintf(buf, len, "%.0fG", v / 1e9);
    return buf;
}

char *qt_ui_fmt_dur(uint64_t ms, char *buf, size_t len)
{
    unsigned long long s = ms / 1000;
    if (ms < 1000)
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    else if (s < 60)
        snprintf(buf, len, "%llus", s);
    else if (s < 3600)
        snprintf(buf, len, "%llum%02llus", s / 60, s % 60);
    else
        snprintf(buf, len, "%lluh%02llum", s / 3600, s / 60 % 60);
    return buf;
}

int qt_ui_scroll(int top, int sel, int n, int h)
{
    if (h <= 0 || n <= 0)
        return 0;
    if (sel >= n)
        sel = n - 1;
    if (sel < 0)
        sel = 0;
    if (sel < top)
        top = sel;
    if (sel >= top + h)
        top = sel - h + 1;
    if (top > n - h)
        top = n - h;
    return top < 0 ? 0 : top;
}
