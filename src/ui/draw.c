/* draw.c: styles and drawing primitives of the dashboard.
 *
 * DESIGN
 * Colours by role: each qt_ui_role gets one curses colour pair (role + 1)
 * and an attribute set, computed once per theme into ui->attr[]; drawing
 * code only ever says wattrset(w, ui->attr[ROLE]) (as htop's CRT_colors).
 * Colours the terminal lacks are degraded (bright -> bold on 8 colours,
 * 256-colour -> nearest basic); with NO_COLOR set, or no colour support,
 * roles keep only their attributes and coloured backgrounds become reverse
 * video so headers and selections stay visible.
 *
 * The primitives clip to the width they are given and never wrap: a panel
 * draws into its own window and cannot spill into another.
 */
#include "ui_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }

void ui_colors_init(ui_state *ui)
{
    const char *nc = getenv("NO_COLOR");
    ui->use_color = has_colors() && !(nc && *nc);
    if (ui->use_color && start_color() == ERR)
        ui->use_color = 0;
    if (ui->use_color && COLOR_PAIRS < QT_ROLE__COUNT + 1)
        ui->use_color = 0;
    if (ui->use_color)
        use_default_colors();
}

static attr_t attrs_of(unsigned a)
{
    attr_t r = A_NORMAL;
    if (a & QT_ATTR_BOLD)
        r |= A_BOLD;
    if (a & QT_ATTR_DIM)
        r |= A_DIM;
    if (a & QT_ATTR_REVERSE)
        r |= A_REVERSE;
    if (a & QT_ATTR_UNDERLINE)
        r |= A_UNDERLINE;
    if (a & QT_ATTR_STANDOUT)
        r |= A_STANDOUT;
#ifdef A_ITALIC
    if (a & QT_ATTR_ITALIC)
        r |= A_ITALIC;
#endif
    return r;
}

void ui_theme_apply(ui_state *ui, const qt_theme *t)
{
    ui->theme = *t;
    for (int i = 0; i < QT_ROLE__COUNT; i++) {
        const qt_ui_style *st = &t->roles[i];
        attr_t a = attrs_of(st->attrs);
        if (ui->use_color) {
            int bold = 0, unused = 0;
            short fg = qt_theme_degrade_color(st->fg, COLORS, &bold);
            short bg = qt_theme_degrade_color(st->bg, COLORS, &unused);
            init_pair((short)(i + 1), fg, bg);
            a |= COLOR_PAIR(i + 1);
            if (bold)
                a |= A_BOLD;
        } else if (st->bg != QT_COLOR_DEFAULT && !(st->attrs & QT_ATTR_REVERSE)) {
            a |= A_REVERSE;   /* a coloured background: keep it visible */
        }
        ui->attr[i] = a;
    }
}

int ui_theme_select(ui_state *ui, const char *name, char *why, size_t whylen)
{
    qt_theme t;
    char path[4096];
    why[0] = '\0';
    if (qt_theme_find(name, ui->exe_dir[0] ? ui->exe_dir : NULL, QT_DATADIR, path, sizeof path)
        != QT_OK) {
        qt_theme_builtin(&t);
        ui_theme_apply(ui, &t);
        if (!strcmp(name, "default")) {
            snprintf(ui->theme.name, sizeof ui->theme.name, "default");
            return 0;   /* the built-in one is the default theme */
        }
        snprintf(why, whylen, "theme '%s' not found (looked in %s/../themes, ./themes, %s/themes); "
                              "using the default", name, ui->exe_dir[0] ? ui->exe_dir : ".", QT_DATADIR);
        return -1;
    }
    char err[600];
    qt_err r = qt_theme_load(path, &t, err, sizeof err);
    ui_theme_apply(ui, &t);   /* the built-in default when loading failed */
    if (r != QT_OK) {
        snprintf(why, whylen, "%s; using the default theme", err);
        return -1;
    }
    return 0;
}

void ui_status(ui_state *ui, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ui->status, sizeof ui->status, fmt, ap);
    va_end(ap);
    ui->status_until = 0;   /* set by the loop: shown for a few seconds */
}

/* Columns taken by the first n bytes of UTF-8 text (one per code point). */
static int cols_of(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

int ui_put(ui_state *ui, WINDOW *w, int y, int x, int width, qt_ui_role role, const char *s)
{
    if (!w || width <= 0 || !s)
        return 0;
    size_t n = 0;
    int c = 0;
    while (s[n]) {
        size_t k = 1;
        while (s[n + k] && ((unsigned char)s[n + k] & 0xC0) == 0x80)
            k++;
        if (c + 1 > width)
            break;
        c++;
        n += k;
    }
    wattrset(w, ui->attr[role]);
    mvwaddnstr(w, y, x, s, (int)n);
    return cols_of(s, n);
}

int ui_put_ell(ui_state *ui, WINDOW *w, int y, int x, int width, qt_ui_role role, const char *s)
{
    if (!w || width <= 0 || !s)
        return 0;
    if (cols_of(s, strlen(s)) <= width)
        return ui_put(ui, w, y, x, width, role, s);
    int used = ui_put(ui, w, y, x, width - 1, role, s);
    return used + ui_put(ui, w, y, x + used, 1, QT_ROLE_DIM, ui->utf8 ? "\u2026" : "~");
}

int ui_putf(ui_state *ui, WINDOW *w, int y, int x, int width, qt_ui_role role, const char *fmt,
            ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return ui_put(ui, w, y, x, width, role, buf);
}

void ui_fill_line(ui_state *ui, WINDOW *w, int y, qt_ui_role role)
{
    int mx = getmaxx(w);
    wattrset(w, ui->attr[role]);
    mvwhline(w, y, 0, ' ', mx);
}

int ui_gauge(ui_state *ui, WINDOW *w, int y, int x, int width, double used, double limit)
{
    if (width <= 0)
        return 0;
    int level = 0;
    int filled = qt_ui_gauge_cells(used, limit, width, &level);
    qt_ui_role r = level == 2 ? QT_ROLE_GAUGE_FULL : level == 1 ? QT_ROLE_GAUGE_WARN : QT_ROLE_GAUGE_OK;
    const char *full = ui->utf8 ? "\u2588" : "#";
    const char *empty = ui->utf8 ? "\u00b7" : ".";
    if (limit <= 0) {
        ui_put(ui, w, y, x, width, QT_ROLE_DIM, "unlimited");
        return width;
    }
    wattrset(w, ui->attr[r]);
    for (int i = 0; i < filled; i++)
        mvwaddstr(w, y, x + i, full);
    wattrset(w, ui->attr[QT_ROLE_GAUGE_EMPTY]);
    for (int i = filled; i < width; i++)
        mvwaddstr(w, y, x + i, empty);
    return width;
}

void ui_plot(ui_state *ui, WINDOW *w, int y, int x, int h, int width, const uint32_t *samples,
             size_t n, double limit, qt_ui_role role, const char *label)
{
    static const char *const blocks[9] = { " ", "\u2581", "\u2582", "\u2583", "\u2584",
                                           "\u2585", "\u2586", "\u2587", "\u2588" };
    static const char *const ascii[9] = { " ", ".", ".", "_", "_", "=", "=", "#", "#" };
    if (h < 2 || width < 12)
        return;
    int axis = 6, pw = width - axis, ph = h - 1;
    double col[512];
    if (pw > (int)QT_ARRAY_LEN(col))
        pw = (int)QT_ARRAY_LEN(col);
    double peak = qt_ui_resample(samples, n, col, pw);
    double vmax = qt_ui_nice_max((peak > limit ? peak : limit) * 1.05);
    int lrow = qt_ui_limit_row(limit, vmax, ph);
    char a[32], b[32];
    /* caption: label, now, peak, limit */
    double last = n ? samples[n - 1] : 0;
    /* "peak" is the largest single second shown, so "now" never exceeds it
     * (column means of a resampled plot can be lower than one sample). */
    double raw_peak = 0;
    for (size_t i = 0; i < n; i++)
        if (samples[i] > raw_peak)
            raw_peak = samples[i];
    /* each caption part is drawn whole or not at all: no cut numbers */
    char cap[96], lim[48];
    qt_ui_fmt_count(last, a, sizeof a);
    qt_ui_fmt_count(raw_peak, b, sizeof b);
    snprintf(cap, sizeof cap, "%s now %s peak %s", label, a, b);
    if ((int)strlen(cap) > width)
        snprintf(cap, sizeof cap, "now %s peak %s", a, b);
    if ((int)strlen(cap) > width)
        snprintf(cap, sizeof cap, "%.*s", width, label);
    int used = ui_put(ui, w, y, x, width, QT_ROLE_LABEL, cap);
    snprintf(lim, sizeof lim, "  %s limit %.1f", ui->utf8 ? "\u2500\u2500" : "--", limit);
    if (limit > 0 && used + (int)strlen(lim) - (ui->utf8 ? 4 : 0) <= width)
        ui_put(ui, w, y, x + used, width - used, QT_ROLE_PLOT_LIMIT, lim);
    for (int r = 0; r < ph; r++) {
        const char *ax = "";
        char buf[16];
        if (r == 0)
            ax = qt_ui_fmt_count(vmax, buf, sizeof buf);
        else if (r == ph - 1)
            ax = "0";
        ui_putf(ui, w, y + 1 + r, x, axis, QT_ROLE_DIM, "%5s", ax);
        mvwaddstr(w, y + 1 + r, x + axis - 1, ui->utf8 ? "\u2502" : "|");
        for (int c = 0; c < pw; c++) {
            int e = col[c] < 0 ? 0 : qt_ui_bar_eighths(col[c], vmax, ph, r);
            qt_ui_role rr = role;
            const char *g = ui->utf8 ? blocks[e] : ascii[e];
            if (r == lrow && e < 8) {
                if (e == 0) {
                    g = ui->utf8 ? "\u2500" : "-";
                }
                rr = QT_ROLE_PLOT_LIMIT;
            } else if (lrow >= 0 && r < lrow && e > 0) {
                rr = QT_ROLE_PLOT_LIMIT;   /* above the limit line */
            }
            wattrset(w, ui->attr[rr]);
            mvwaddstr(w, y + 1 + r, x + axis + c, g);
        }
    }
}

void ui_title(ui_state *ui, WINDOW *w, const char *name, int focused, const char *extra)
{
    qt_ui_role r = focused ? QT_ROLE_TITLE_FOCUS : QT_ROLE_TITLE;
    ui_fill_line(ui, w, 0, r);
    int used = ui_putf(ui, w, 0, 0, getmaxx(w), r, " %s ", name);
    if (extra && *extra)
        ui_putf(ui, w, 0, used, getmaxx(w) - used, r, " %s", extra);
}

void ui_box(ui_state *ui, int h, int wd, const char *title, WINDOW **out)
{
    int y = imax(0, (ui->rows - h) / 2), x = imax(0, (ui->cols - wd) / 2);
    h = imin(h, ui->rows);
    wd = imin(wd, ui->cols);
    WINDOW *w = newwin(h, wd, y, x);
    *out = w;
    if (!w)
        return;
    wbkgdset(w, ' ' | ui->attr[QT_ROLE_DIALOG]);
    werase(w);
    wattrset(w, ui->attr[QT_ROLE_DIALOG]);
    box(w, 0, 0);
    ui_putf(ui, w, 0, 2, wd - 4, QT_ROLE_DIALOG, " %s ", title);
}

void ui_cell_r(ui_state *ui, WINDOW *w, int y, const qt_ui_col *c, qt_ui_role role, const char *text)
{
    if (c->w)
        ui_putf(ui, w, y, c->x, c->w, role, "%*s", c->w, text);
}

void ui_cell_l(ui_state *ui, WINDOW *w, int y, const qt_ui_col *c, qt_ui_role role, const char *text)
{
    if (c->w)
        ui_putf(ui, w, y, c->x, c->w, role, "%-*s", c->w, text);
}

void ui_col_titles(ui_state *ui, WINDOW *w, int y, const qt_ui_col *c, int n, qt_ui_role role,
                   unsigned left_mask, int sort, int desc)
{
    for (int i = 0; i < n; i++) {
        if (!c[i].w)
            continue;
        char t[48];
        if (i == sort)   /* the sorted column: "age v" (largest first) or "age ^" */
            snprintf(t, sizeof t, "%.*s%s", c[i].w > 2 ? c[i].w - 2 : 0, c[i].name, desc ? " v" : " ^");
        else
            snprintf(t, sizeof t, "%.*s", c[i].w, c[i].name);
        if (left_mask & (1u << i))
            ui_cell_l(ui, w, y, &c[i], role, t);
        else
            ui_cell_r(ui, w, y, &c[i], role, t);
    }
}
