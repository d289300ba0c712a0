/* theme.c: colours by role, themes as data (no curses here).
 *
 * DESIGN
 * The dashboard draws with roles (gauge_ok, circuit_open, event_retry...),
 * never with colours. A theme maps each role to fg, bg and attributes; a
 * theme file is plain text, one `role = fg,bg,attrs` per line, read over the
 * built-in default so a file may name only the roles it changes. Parsing
 * stops at the first malformed line with a message naming file and line;
 * the caller then keeps the built-in default. The drawing code (draw.c)
 * turns styles into curses pairs and degrades colours the terminal lacks.
 */
#include "quotatop/ui.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const qt_theme_cycle[] = { "default", "dark", "light", "mono" };

static const char *const role_names[QT_ROLE__COUNT] = {
    [QT_ROLE_TEXT] = "text",
    [QT_ROLE_DIM] = "dim",
    [QT_ROLE_HEADER] = "header",
    [QT_ROLE_HEADER_PAUSED] = "header_paused",
    [QT_ROLE_HEADER_DONE] = "header_done",
    [QT_ROLE_TITLE] = "title",
    [QT_ROLE_TITLE_FOCUS] = "title_focus",
    [QT_ROLE_LABEL] = "label",
    [QT_ROLE_SELECTION] = "selection",
    [QT_ROLE_GAUGE_OK] = "gauge_ok",
    [QT_ROLE_GAUGE_WARN] = "gauge_warn",
    [QT_ROLE_GAUGE_FULL] = "gauge_full",
    [QT_ROLE_GAUGE_EMPTY] = "gauge_empty",
    [QT_ROLE_CIRCUIT_CLOSED] = "circuit_closed",
    [QT_ROLE_CIRCUIT_HALF_OPEN] = "circuit_half_open",
    [QT_ROLE_CIRCUIT_OPEN] = "circuit_open",
    [QT_ROLE_CHANGED] = "changed",
    [QT_ROLE_PLOT_REQUESTS] = "plot_requests",
    [QT_ROLE_PLOT_TOKENS] = "plot_tokens",
    [QT_ROLE_PLOT_LIMIT] = "plot_limit",
    [QT_ROLE_PAUSED] = "paused",
    [QT_ROLE_EVENT_INFO] = "event_info",
    [QT_ROLE_EVENT_RETRY] = "event_retry",
    [QT_ROLE_EVENT_RATE_LIMITED] = "event_rate_limited",
    [QT_ROLE_EVENT_FALLBACK] = "event_fallback",
    [QT_ROLE_EVENT_CIRCUIT] = "event_circuit",
    [QT_ROLE_EVENT_BUDGET] = "event_budget",
    [QT_ROLE_EVENT_LIMIT] = "event_limit",
    [QT_ROLE_EVENT_CANCEL] = "event_cancel",
    [QT_ROLE_EVENT_ERROR] = "event_error",
    [QT_ROLE_FOOTER] = "footer",
    [QT_ROLE_FOOTER_KEY] = "footer_key",
    [QT_ROLE_DIALOG] = "dialog",
};

const char *qt_theme_role_name(qt_ui_role role)
{
    return (unsigned)role < QT_ROLE__COUNT ? role_names[role] : "?";
}

int qt_theme_role_from_name(const char *name)
{
    for (int i = 0; i < QT_ROLE__COUNT; i++)
        if (!strcmp(role_names[i], name))
            return i;
    return -1;
}

#define D QT_COLOR_DEFAULT
#define B QT_ATTR_BOLD
#define R QT_ATTR_REVERSE

void qt_theme_builtin(qt_theme *t)
{
    static const qt_ui_style def[QT_ROLE__COUNT] = {
        [QT_ROLE_TEXT] = { D, D, 0 },
        [QT_ROLE_DIM] = { D, D, QT_ATTR_DIM },
        [QT_ROLE_HEADER] = { 0, 6, 0 },
        [QT_ROLE_HEADER_PAUSED] = { 0, 3, B },
        [QT_ROLE_HEADER_DONE] = { 0, 2, B },
        [QT_ROLE_TITLE] = { 6, D, B },
        [QT_ROLE_TITLE_FOCUS] = { 0, 6, B },
        [QT_ROLE_LABEL] = { 6, D, 0 },
        [QT_ROLE_SELECTION] = { D, D, R },
        [QT_ROLE_GAUGE_OK] = { 2, D, 0 },
        [QT_ROLE_GAUGE_WARN] = { 3, D, B },
        [QT_ROLE_GAUGE_FULL] = { 1, D, B },
        [QT_ROLE_GAUGE_EMPTY] = { D, D, QT_ATTR_DIM },
        [QT_ROLE_CIRCUIT_CLOSED] = { 2, D, 0 },
        [QT_ROLE_CIRCUIT_HALF_OPEN] = { 3, D, B },
        [QT_ROLE_CIRCUIT_OPEN] = { 1, D, B | R },
        [QT_ROLE_CHANGED] = { 5, D, B },
        [QT_ROLE_PLOT_REQUESTS] = { 4, D, 0 },
        [QT_ROLE_PLOT_TOKENS] = { 5, D, 0 },
        [QT_ROLE_PLOT_LIMIT] = { 1, D, B },
        [QT_ROLE_PAUSED] = { 3, D, B },
        [QT_ROLE_EVENT_INFO] = { D, D, 0 },
        [QT_ROLE_EVENT_RETRY] = { 3, D, 0 },
        [QT_ROLE_EVENT_RATE_LIMITED] = { 3, D, B },
        [QT_ROLE_EVENT_FALLBACK] = { 5, D, 0 },
        [QT_ROLE_EVENT_CIRCUIT] = { 1, D, B },
        [QT_ROLE_EVENT_BUDGET] = { 3, D, B },
        [QT_ROLE_EVENT_LIMIT] = { 6, D, 0 },
        [QT_ROLE_EVENT_CANCEL] = { 5, D, B },
        [QT_ROLE_EVENT_ERROR] = { 1, D, 0 },
        [QT_ROLE_FOOTER] = { 0, 6, 0 },
        [QT_ROLE_FOOTER_KEY] = { 7, 4, B },
        [QT_ROLE_DIALOG] = { 7, 4, B },
    };
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "builtin");
    memcpy(t->roles, def, sizeof def);
}

#undef D
#undef B
#undef R

static const char *const color_names[] = { "black", "red", "green", "yellow",
                                           "blue", "magenta", "cyan", "white" };

/* Parses one colour word into *out. Returns 0, or -1 when unknown. An empty
 * word is the terminal default. */
static int parse_color(const char *w, short *out)
{
    if (!*w || !strcmp(w, "default") || !strcmp(w, "none")) {
        *out = QT_COLOR_DEFAULT;
        return 0;
    }
    if (isdigit((unsigned char)w[0]) || (w[0] == '-' && w[1])) {
        char *end;
        long v = strtol(w, &end, 10);
        if (*end || v < -1 || v > 255)
            return -1;
        *out = (short)v;
        return 0;
    }
    if (!strcmp(w, "grey") || !strcmp(w, "gray")) {
        *out = 8;
        return 0;
    }
    int bright = 0;
    if (!strncmp(w, "bright_", 7)) {
        bright = 8;
        w += 7;
    }
    for (int i = 0; i < 8; i++)
        if (!strcmp(w, color_names[i])) {
            *out = (short)(i + bright);
            return 0;
        }
    return -1;
}

static int parse_attr(const char *w, unsigned *out)
{
    static const struct { const char *n; unsigned v; } attrs[] = {
        { "bold", QT_ATTR_BOLD },       { "dim", QT_ATTR_DIM },
        { "reverse", QT_ATTR_REVERSE }, { "underline", QT_ATTR_UNDERLINE },
        { "standout", QT_ATTR_STANDOUT }, { "italic", QT_ATTR_ITALIC },
        { "normal", 0 },                { "none", 0 },
    };
    for (size_t i = 0; i < QT_ARRAY_LEN(attrs); i++)
        if (!strcmp(w, attrs[i].n)) {
            *out |= attrs[i].v;
            return 0;
        }
    return -1;
}

/* Trims spaces at both ends in place; returns the start. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Parses one non-blank, comment-free line. Returns 0 or -1 with why. */
static int parse_line(char *line, qt_theme *t, char *why, size_t whylen)
{
    char *eq = strchr(line, '=');
    if (!eq) {
        snprintf(why, whylen, "expected `role = fg,bg,attrs`");
        return -1;
    }
    *eq = '\0';
    char *role = trim(line), *val = trim(eq + 1);
    if (!*role) {
        snprintf(why, whylen, "missing role name before '='");
        return -1;
    }
    int r = qt_theme_role_from_name(role);
    if (r < 0) {
        snprintf(why, whylen, "unknown role '%.40s'", role);
        return -1;
    }
    if (!*val) {
        snprintf(why, whylen, "role '%s' has no value", role);
        return -1;
    }
    char *parts[3] = { val, NULL, NULL };
    int np = 1;
    for (char *p = val; *p; p++)
        if (*p == ',') {
            if (np == 3) {
                snprintf(why, whylen, "too many fields for '%s' (fg,bg,attrs)", role);
                return -1;
            }
            *p = '\0';
            parts[np++] = p + 1;
        }
    qt_ui_style st = { QT_COLOR_DEFAULT, QT_COLOR_DEFAULT, 0 };
    char *fg = trim(parts[0]), *bg = parts[1] ? trim(parts[1]) : (char *)"";
    if (parse_color(fg, &st.fg)) {
        snprintf(why, whylen, "unknown colour '%.40s' for %s", fg, role);
        return -1;
    }
    if (parse_color(bg, &st.bg)) {
        snprintf(why, whylen, "unknown colour '%.40s' for %s", bg, role);
        return -1;
    }
    if (parts[2]) {
        char *save = NULL;
        for (char *w = strtok_r(parts[2], " |+\t", &save); w; w = strtok_r(NULL, " |+\t", &save))
            if (parse_attr(w, &st.attrs)) {
                snprintf(why, whylen, "unknown attribute '%.40s' for %s", w, role);
                return -1;
            }
    }
    t->roles[r] = st;
    return 0;
}

qt_err qt_theme_parse(const char *text, size_t len, const char *origin, qt_theme *t, char *err,
                      size_t errlen)
{
    qt_theme_builtin(t);
    if (!origin)
        origin = "theme";
    size_t pos = 0;
    long line_no = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        line_no++;
        char line[512];
        size_t n = end - pos;
        if (n >= sizeof line) {
            if (err)
                snprintf(err, errlen, "%s:%ld: line too long", origin, line_no);
            qt_theme_builtin(t);
            return QT_ERR_INVALID;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos = end + 1;
        if (memchr(line, '\0', n)) {
            if (err)
                snprintf(err, errlen, "%s:%ld: NUL byte in line", origin, line_no);
            qt_theme_builtin(t);
            return QT_ERR_INVALID;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        char why[160];
        if (parse_line(s, t, why, sizeof why)) {
            if (err)
                snprintf(err, errlen, "%s:%ld: %s", origin, line_no, why);
            qt_theme_builtin(t);
            return QT_ERR_INVALID;
        }
    }
    snprintf(t->name, sizeof t->name, "%.63s", origin);
    return QT_OK;
}

qt_err qt_theme_load(const char *path, qt_theme *t, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (err)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        qt_theme_builtin(t);
        return QT_ERR_IO;
    }
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    int toolong = n == sizeof buf;
    fclose(f);
    if (toolong) {
        if (err)
            snprintf(err, errlen, "%s: theme file larger than 64 KiB", path);
        qt_theme_builtin(t);
        return QT_ERR_INVALID;
    }
    qt_err r = qt_theme_parse(buf, n, path, t, err, errlen);
    if (r == QT_OK) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t bl = strlen(base);
        if (bl > 6 && !strcmp(base + bl - 6, ".theme"))
            bl -= 6;
        snprintf(t->name, sizeof t->name, "%.*s", (int)(bl < 63 ? bl : 63), base);
    }
    return r;
}

static int readable(const char *p) { return access(p, R_OK) == 0; }

qt_err qt_theme_find(const char *name, const char *exe_dir, const char *datadir, char *out,
                     size_t outlen)
{
    if (!name || !*name)
        return QT_ERR_NOTFOUND;
    if (strchr(name, '/')) {
        if (!readable(name))
            return QT_ERR_NOTFOUND;
        snprintf(out, outlen, "%s", name);
        return QT_OK;
    }
    char p[4096];
    /* Next to the binary: the source tree (build/quotatop -> themes/) and a
     * relocated install (bin/quotatop -> share/quotatop/themes/). */
    static const char *const beside[] = { "%s/../themes/%s.theme",
                                          "%s/../share/quotatop/themes/%s.theme" };
    for (size_t i = 0; exe_dir && i < sizeof beside / sizeof beside[0]; i++) {
        snprintf(p, sizeof p, beside[i], exe_dir, name);
        if (readable(p)) {
            snprintf(out, outlen, "%s", p);
            return QT_OK;
        }
    }
    snprintf(p, sizeof p, "themes/%s.theme", name);
    if (readable(p)) {
        snprintf(out, outlen, "%s", p);
        return QT_OK;
    }
    if (datadir) {
        snprintf(p, sizeof p, "%s/themes/%s.theme", datadir, name);
        if (readable(p)) {
            snprintf(out, outlen, "%s", p);
            return QT_OK;
        }
    }
    return QT_ERR_NOTFOUND;
}

/* xterm's 6x6x6 cube levels and the 16 basic colours as RGB, for degrading. */
static const int cube[6] = { 0, 95, 135, 175, 215, 255 };
static const int basic[16][3] = {
    { 0, 0, 0 },       { 205, 0, 0 },     { 0, 205, 0 },     { 205, 205, 0 },
    { 0, 0, 238 },     { 205, 0, 205 },   { 0, 205, 205 },   { 229, 229, 229 },
    { 127, 127, 127 }, { 255, 0, 0 },     { 0, 255, 0 },     { 255, 255, 0 },
    { 92, 92, 255 },   { 255, 0, 255 },   { 0, 255, 255 },   { 255, 255, 255 },
};

short qt_theme_degrade_color(short c, int ncolors, int *bold)
{
    if (bold)
        *bold = 0;
    if (c < 0 || c < ncolors)
        return c;
    if (c >= 16) {
        int r, g, b;
        if (c >= 232) {
            r = g = b = 8 + (c - 232) * 10;
        } else {
            int i = c - 16;
            r = cube[i / 36];
            g = cube[i / 6 % 6];
            b = cube[i % 6];
        }
        int best = 0;
        long bd = -1;
        int lim = ncolors >= 16 ? 16 : 8;
        for (int k = 0; k < lim; k++) {
            long dr = r - basic[k][0], dg = g - basic[k][1], db = b - basic[k][2];
            long d = dr * dr + dg * dg + db * db;
            if (bd < 0 || d < bd) {
                bd = d;
                best = k;
            }
        }
        c = (short)best;
        if (c < ncolors)
            return c;
    }
    /* 8..15 on a terminal with 8 colours: the dark form, bold. */
    if (bold)
        *bold = 1;
    return (short)(c - 8 < ncolors ? c - 8 : 7);
}
