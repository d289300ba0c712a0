/* columns.c: table columns and cell text that fit, free of curses so they
 * can be tested over every terminal width (tests/unit/test_ui_layout.c).
 *
 * DESIGN
 * A number is never cut into another number. Tables therefore never clip a
 * cell: each column has a minimum width that holds its widest abbreviated
 * value, and when the minimums do not fit the panel, whole columns are
 * dropped by priority (qt_ui_fit_columns) until they do. Cells are then
 * formatted for the width they got (qt_ui_fmt_*): the exact value when it
 * fits, else an abbreviation (1.2k, 32k, 4.5M), else nothing at all, never a
 * prefix of the digits. Identifiers that do not fit keep their head and
 * their tail around an ellipsis ("bat~000123"), because ids that differ
 * only at the end (job-000123, job-000124) must stay telling apart.
 */
#include "quotatop/ui.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int qt_ui_fit_columns(qt_ui_col *c, int n, int width)
{
    for (int i = 0; i < n; i++)
        c[i].w = c[i].min > 0 ? c[i].min : 0;
    /* drop columns, most droppable first, until the minimums fit */
    for (;;) {
        int need = -1, worst = -1;
        for (int i = 0; i < n; i++) {
            if (!c[i].w)
                continue;
            need += c[i].w + 1;
            if (c[i].drop > 0 && (worst < 0 || c[i].drop > c[worst].drop))
                worst = i;
        }
        if (need <= width || worst < 0)
            break;
        c[worst].w = 0;
    }
    int used = -1;
    for (int i = 0; i < n; i++)
        if (c[i].w)
            used += c[i].w + 1;
    int left = width - used;
    /* grow the fixed columns to what they want, most important first */
    for (int pass = 0; pass <= 100 && left > 0; pass++)
        for (int i = 0; i < n && left > 0; i++)
            if (c[i].w && !c[i].flex && c[i].drop == pass && c[i].want > c[i].w) {
                int add = c[i].want - c[i].w;
                if (add > left)
                    add = left;
                c[i].w += add;
                left -= add;
            }
    /* the flexible ones (gauges) share the rest evenly */
    for (int round = 0; round < 4 && left > 0; round++) {
        int nflex = 0;
        for (int i = 0; i < n; i++)
            nflex += c[i].w && c[i].flex && c[i].want > c[i].w;
        if (!nflex)
            break;
        int share = left / nflex;
        if (share < 1)
            share = 1;
        for (int i = 0; i < n && left > 0; i++)
            if (c[i].w && c[i].flex && c[i].want > c[i].w) {
                int add = c[i].want - c[i].w;
                if (add > share)
                    add = share;
                if (add > left)
                    add = left;
                c[i].w += add;
                left -= add;
            }
    }
    int x = 0, shown = 0;
    for (int i = 0; i < n; i++) {
        c[i].x = c[i].w ? x : 0;
        if (c[i].w) {
            x += c[i].w + 1;
            shown++;
        }
    }
    return shown;
}

int qt_ui_fmt_fit(double v, int width, char *buf, size_t len)
{
    char t[32];
    buf[0] = '\0';
    if (width <= 0 || len == 0)
        return 0;
    qt_ui_fmt_count(v, t, sizeof t);
    if ((int)strlen(t) > width)
        return 0;
    snprintf(buf, len, "%s", t);
    return (int)strlen(buf);
}

int qt_ui_fmt_pair(double used, double limit, int width, char *buf, size_t len)
{
    char a[32], b[32], t[72];
    buf[0] = '\0';
    if (width <= 0 || len == 0)
        return 0;
    qt_ui_fmt_count(used, a, sizeof a);
    if (limit > 0)
        qt_ui_fmt_count(limit, b, sizeof b);
    else
        snprintf(b, sizeof b, "-");
    snprintf(t, sizeof t, "%s/%s", a, b);
    if ((int)strlen(t) <= width) {
        snprintf(buf, len, "%s", t);
        return (int)strlen(buf);
    }
    if (limit > 0 && width >= 4) {   /* the share of the limit, not a cut number */
        double pct = floor(100.0 * used / limit + 0.5);
        if (pct > 999)
            snprintf(t, sizeof t, ">999%%");   /* a true bound, not a cut number */
        else
            snprintf(t, sizeof t, "%.0f%%", pct);
        if ((int)strlen(t) <= width) {
            snprintf(buf, len, "%s", t);
            return (int)strlen(buf);
        }
    }
    return 0;
}

int qt_ui_fmt_usd(double v, int width, char *buf, size_t len)
{
    char t[48];
    buf[0] = '\0';
    if (width <= 0 || len == 0)
        return 0;
    if (v < 0)
        v = 0;
    static const char *const fmts[] = { "%.4f", "%.2f", "%.0f" };
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        snprintf(t, sizeof t, fmts[i], v);
        if ((int)strlen(t) <= width) {
            snprintf(buf, len, "%s", t);
            return (int)strlen(buf);
        }
    }
    return qt_ui_fmt_fit(v, width, buf, len);
}

int qt_ui_fit_id(const char *id, int width, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!id || width <= 0 || len < 2)
        return 0;
    size_t n = strlen(id);
    if ((int)n <= width) {
        snprintf(buf, len, "%s", id);
        return (int)strlen(buf);
    }
    if (width < 3) {
        snprintf(buf, len, "%.*s", width, id + n - (size_t)width);
        return (int)strlen(buf);
    }
    /* head ~ tail ("~" marks what is left out): the tail tells rows apart */
    int keep = width - 1, head = keep / 3, tail = keep - head;
    snprintf(buf, len, "%.*s~%s", head, id, id + n - (size_t)tail);
    return (int)strlen(buf);
}

/* ---------------------------------------------------------- panel tables */

void qt_ui_limits_columns(int width, qt_ui_col out[QT_UI_LC__COUNT])
{
    static const qt_ui_col def[QT_UI_LC__COUNT] = {
        [QT_UI_LC_NAME] = { "LIMITS", 14, 16, 0, 0, 0, 0 },
        [QT_UI_LC_CIRC] = { "circuit", 10, 10, 2, 0, 0, 0 },
        [QT_UI_LC_RPM] = { "RPM (60s)", 9, 40, 0, 1, 0, 0 },
        [QT_UI_LC_TPM] = { "TPM (60s)", 9, 40, 0, 1, 0, 0 },
        [QT_UI_LC_INFL] = { "infl", 5, 7, 3, 0, 0, 0 },
        [QT_UI_LC_429] = { "429", 4, 5, 4, 0, 0, 0 },
        [QT_UI_LC_ERR] = { "err", 4, 5, 5, 0, 0, 0 },
        [QT_UI_LC_LAT] = { "p50/p95 ms", 11, 14, 6, 0, 0, 0 },
    };
    memcpy(out, def, sizeof def);
    if (width >= 120)
        out[QT_UI_LC_NAME].want = 20;
    qt_ui_fit_columns(out, QT_UI_LC__COUNT, width);
}

void qt_ui_jobs_columns(int width, qt_ui_col out[QT_UI_JC__COUNT])
{
    static const qt_ui_col def[QT_UI_JC__COUNT] = {
        [QT_UI_JC_ID] = { "id", 8, 22, 0, 0, 0, 0 },
        [QT_UI_JC_STATE] = { "state", 9, 12, 0, 0, 0, 0 },
        [QT_UI_JC_PRIO] = { "prio", 5, 5, 1, 0, 0, 0 },
        [QT_UI_JC_WORKFLOW] = { "workflow", 8, 14, 5, 0, 0, 0 },
        [QT_UI_JC_MODEL] = { "model", 10, 16, 2, 0, 0, 0 },
        /* what it waits on and until when (or its provider) and for how long
         * outlast the estimate, the age and the workflow (WORKFLOWS has it) */
        [QT_UI_JC_AGE] = { "age", 6, 6, 6, 0, 0, 0 },
        [QT_UI_JC_FOR] = { "for", 6, 6, 3, 0, 0, 0 },
        [QT_UI_JC_EST] = { "est", 5, 6, 7, 0, 0, 0 },
        [QT_UI_JC_WAIT] = { "on", 10, 30, 4, 1, 0, 0 },
    };
    memcpy(out, def, sizeof def);
    qt_ui_fit_columns(out, QT_UI_JC__COUNT, width);
}

void qt_ui_wf_columns(int width, qt_ui_col out[QT_UI_WC__COUNT])
{
    static const qt_ui_col def[QT_UI_WC__COUNT] = {
        [QT_UI_WC_NAME] = { "workflow", 12, 14, 0, 0, 0, 0 },
        [QT_UI_WC_CALLS] = { "calls", 5, 6, 3, 0, 0, 0 },
        [QT_UI_WC_TOKENS] = { "tokens", 5, 7, 4, 0, 0, 0 },
        [QT_UI_WC_SPEND] = { "spend", 6, 8, 1, 0, 0, 0 },
        [QT_UI_WC_BUDGET] = { "budget", 6, 30, 2, 1, 0, 0 },
        [QT_UI_WC_QUEUE] = { "queue", 5, 5, 0, 0, 0, 0 },
    };
    memcpy(out, def, sizeof def);
    qt_ui_fit_columns(out, QT_UI_WC__COUNT, width);
}

/* ---------------------------------------------------------- list filters */

/* Case-insensitive substring of n bytes of needle in hay. */
static int has_ci(const char *hay, const char *needle, size_t n)
{
    if (n == 0)
        return 1;
    for (const char *h = hay; *h; h++) {
        size_t i = 0;
        while (i < n && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

int qt_ui_filter_match(const char *filter, const char *const *keys, const char *const *vals, int n)
{
    const char *p = filter ? filter : "";
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        const char *colon = memchr(p, ':', (size_t)(end - p));
        int ok = 0;
        for (int i = 0; i < n && !ok; i++) {
            if (!vals[i])
                continue;
            if (colon) {
                size_t kl = (size_t)(colon - p);
                /* "wf" names "workflow": a key matches when it starts with the
                 * term's key, or its initials ("wf" for "workflow") do */
                int key_ok = kl > 0 && (!strncasecmp(keys[i], p, kl)
                                        || (kl == 2 && tolower((unsigned char)p[0]) == keys[i][0]
                                            && strchr(keys[i] + 1, tolower((unsigned char)p[1]))));
                ok = key_ok && has_ci(vals[i], colon + 1, (size_t)(end - colon - 1));
            } else {
                ok = has_ci(vals[i], p, (size_t)(end - p));
            }
        }
        if (!ok)
            return 0;
        p = end;
    }
    return 1;
}
