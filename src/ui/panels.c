/* panels.c: what each panel of the dashboard shows, drawn from the frame's
 * copies (ui->snap, ui->queue, ui->events): never from the engine.
 *
 * DESIGN
 * One function per panel, each drawing into its own window from row 0 (its
 * title) down, clipped to the window. Column widths are worked out from the
 * window width each frame: fixed columns first, optional columns (p50/p95,
 * tokens, calls) only when there is room, gauges take what is left. Every
 * window is erased and redrawn each frame; curses sends only what changed.
 */
#include "ui_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "quotatop/clock.h"

static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }

static const char *sep(const ui_state *ui) { return ui->utf8 ? " \u2502 " : " | "; }

/* ------------------------------------------------------------ header */

static double done_rate(const ui_state *ui)
{
    if (ui->rate_n < 2)
        return 0;
    int newest = (ui->rate_head + UI_RATE_SAMPLES - 1) % UI_RATE_SAMPLES;
    int oldest = (ui->rate_head + UI_RATE_SAMPLES - ui->rate_n) % UI_RATE_SAMPLES;
    double dt = (double)(ui->rate_t[newest] - ui->rate_t[oldest]) / 1000.0;
    if (dt < 0.5)
        return 0;
    return (double)(ui->rate_done[newest] - ui->rate_done[oldest]) / dt;
}

/* Appends one header segment at *x when it fits; returns 1 when drawn. */
static int seg(ui_state *ui, WINDOW *w, int y, int *x, qt_ui_role role, const char *text)
{
    int width = getmaxx(w);
    int need = (int)strlen(text) + (*x > 0 ? 3 : 0);
    if (*x + need > width)
        return 0;
    if (*x > 0)
        *x += ui_put(ui, w, y, *x, width - *x, QT_ROLE_HEADER, sep(ui));
    *x += ui_put(ui, w, y, *x, width - *x, role, text);
    return 1;
}

static void draw_header(ui_state *ui, WINDOW *w)
{
    const qt_engine_snapshot *s = &ui->snap;
    char b[160], t1[32], t2[32];
    ui_fill_line(ui, w, 0, QT_ROLE_HEADER);
    if (getmaxy(w) > 1)
        ui_fill_line(ui, w, 1, QT_ROLE_HEADER);
    int x = 0;
    snprintf(b, sizeof b, " quotatop %s", ui->opts.mode ? ui->opts.mode : "");
    seg(ui, w, 0, &x, QT_ROLE_HEADER, b);
    const char *state = ui->finished ? "DONE" : s->paused ? "PAUSED" : "RUNNING";
    seg(ui, w, 0, &x, ui->finished ? QT_ROLE_HEADER_DONE : s->paused ? QT_ROLE_HEADER_PAUSED : QT_ROLE_HEADER,
        state);
    uint64_t up = qt_now_ms() - ui->opts.t0_ms;
    snprintf(b, sizeof b, "up %s", qt_ui_fmt_dur(up, t1, sizeof t1));
    seg(ui, w, 0, &x, QT_ROLE_HEADER, b);
    snprintf(b, sizeof b, "workers %d/%d", s->busy, s->workers);
    seg(ui, w, 0, &x, QT_ROLE_HEADER, b);
    snprintf(b, sizeof b, "queue %zu", s->queued);
    seg(ui, w, 0, &x, QT_ROLE_HEADER, b);
    double rate = done_rate(ui);
    snprintf(b, sizeof b, "jobs %llu/%llu", (unsigned long long)s->done, (unsigned long long)s->jobs);
    seg(ui, w, 0, &x, QT_ROLE_HEADER, b);
    uint64_t left = s->jobs > s->done ? s->jobs - s->done : 0;
    if (rate > 0 && left > 0 && !s->paused)   /* paused: nothing moves, no ETA */
        snprintf(b, sizeof b, "%.1f/s ETA %s", rate,
                 qt_ui_fmt_dur((uint64_t)((double)left / rate * 1000.0), t2, sizeof t2));
    else
        snprintf(b, sizeof b, "%.1f/s", rate);
    seg(ui, w, 0, &x, QT_ROLE_HEADER, b);
    if (ui->opts.subtitle)
        seg(ui, w, 0, &x, QT_ROLE_HEADER, ui->opts.subtitle);

    int y = getmaxy(w) > 1 ? 1 : 0;
    if (y == 0)
        return;
    x = 0;
    if (s->run_limit_usd > 0)
        snprintf(b, sizeof b, " run $%.4f/$%.2f (%.0f%%)", s->run_spent_usd, s->run_limit_usd,
                 100.0 * s->run_spent_usd / s->run_limit_usd);
    else
        snprintf(b, sizeof b, " run $%.4f", s->run_spent_usd);
    int lvl = 0;
    qt_ui_gauge_cells(s->run_spent_usd, s->run_limit_usd, 10, &lvl);
    seg(ui, w, y, &x, lvl == 2 ? QT_ROLE_HEADER_PAUSED : QT_ROLE_HEADER, b);
    if (s->day_limit_usd > 0)
        snprintf(b, sizeof b, "day $%.2f/$%.2f", s->day_spent_usd, s->day_limit_usd);
    else
        snprintf(b, sizeof b, "day $%.2f", s->day_spent_usd);
    seg(ui, w, y, &x, QT_ROLE_HEADER, b);
    /* each status on its own: a rejected or invalid job is not a failure */
    snprintf(b, sizeof b, "ok %llu failed %llu rejected %llu cancelled %llu invalid %llu",
             (unsigned long long)s->ok, (unsigned long long)s->failed, (unsigned long long)s->rejected,
             (unsigned long long)s->cancelled, (unsigned long long)s->invalid);
    seg(ui, w, y, &x, QT_ROLE_HEADER, b);
    snprintf(b, sizeof b, "req %s", qt_ui_fmt_count((double)s->requests, t1, sizeof t1));
    seg(ui, w, y, &x, QT_ROLE_HEADER, b);
    snprintf(b, sizeof b, "429s %llu retries %llu fallbacks %llu", (unsigned long long)s->upstream_429,
             (unsigned long long)s->retries, (unsigned long long)s->fallbacks);
    seg(ui, w, y, &x, QT_ROLE_HEADER, b);
    snprintf(b, sizeof b, "theme %s", ui->theme.name);
    seg(ui, w, y, &x, QT_ROLE_HEADER, b);
}

/* ------------------------------------------------------------ limits */

typedef struct {
    int name, circ, gauge, infl, n429, nerr, lat;   /* widths; 0 = hidden */
} limit_cols;

static limit_cols limits_columns(int width)
{
    limit_cols c = { .name = width >= 120 ? 20 : width >= 90 ? 16 : 15, .circ = 10, .infl = 6, .n429 = 5, .nerr = 5 };
    if (width >= 100)
        c.lat = 14;
    int fixed = c.name + 1 + c.circ + 1 + c.infl + 1 + c.n429 + 1 + c.nerr + (c.lat ? c.lat + 1 : 0);
    c.gauge = imax(8, (width - fixed - 2) / 2);
    if (c.gauge > 40)
        c.gauge = 40;   /* wider bars say nothing more */
    return c;
}

/* "used/limit" text plus a bar filling the column. */
static void limit_cell(ui_state *ui, WINDOW *w, int y, int x, int width, double used, double limit,
                       int changed)
{
    char a[16], b[16], t[40];
    if (limit > 0)
        snprintf(t, sizeof t, "%s/%s", qt_ui_fmt_count(used, a, sizeof a), qt_ui_fmt_count(limit, b, sizeof b));
    else
        snprintf(t, sizeof t, "%s/-", qt_ui_fmt_count(used, a, sizeof a));
    int tw = 10;
    int bar = width - tw - 1;
    if (bar >= 3 && limit > 0)
        ui_gauge(ui, w, y, x, bar, used, limit);
    else if (bar >= 3)
        ui_put(ui, w, y, x, bar, QT_ROLE_DIM, "");
    int level = 0;
    qt_ui_gauge_cells(used, limit, 100, &level);
    qt_ui_role r = level == 2 ? QT_ROLE_GAUGE_FULL : level == 1 ? QT_ROLE_GAUGE_WARN : QT_ROLE_TEXT;
    int tx = x + (bar >= 3 ? bar + 1 : 0);
    int used_w = ui_putf(ui, w, y, tx, tw, r, "%*s", changed ? tw - 1 : tw, t);
    if (changed)
        ui_put(ui, w, y, tx + used_w, 1, QT_ROLE_CHANGED, "*");
}

static void draw_limits(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w), h = getmaxy(w);
    limit_cols c = limits_columns(width);
    int focused = ui->focus == FOCUS_LIMITS;
    ui_fill_line(ui, w, 0, focused ? QT_ROLE_TITLE_FOCUS : QT_ROLE_TITLE);
    qt_ui_role tr = focused ? QT_ROLE_TITLE_FOCUS : QT_ROLE_TITLE;
    int x = 0;
    ui_putf(ui, w, 0, x, c.name + 1, tr, " %-*s", c.name - 1, "LIMITS");
    x += c.name + 1;
    ui_putf(ui, w, 0, x, c.circ, tr, "%-*s", c.circ, "circuit");
    x += c.circ + 1;
    ui_putf(ui, w, 0, x, c.gauge, tr, "%*s", c.gauge, "RPM (60s)");
    x += c.gauge + 1;
    ui_putf(ui, w, 0, x, c.gauge, tr, "%*s", c.gauge, "TPM (60s)");
    x += c.gauge + 1;
    ui_putf(ui, w, 0, x, c.infl, tr, "%*s", c.infl, "infl");
    x += c.infl + 1;
    ui_putf(ui, w, 0, x, c.n429, tr, "%*s", c.n429, "429");
    x += c.n429 + 1;
    ui_putf(ui, w, 0, x, c.nerr, tr, "%*s", c.nerr, "err");
    x += c.nerr + 1;
    if (c.lat)
        ui_putf(ui, w, 0, x, c.lat, tr, "%*s", c.lat, "p50/p95 ms");

    int n = (int)ui->snap.n_rows, rows = h - 1;
    ui->top[FOCUS_LIMITS] = qt_ui_scroll(ui->top[FOCUS_LIMITS], ui->sel[FOCUS_LIMITS], n, rows);
    for (int i = 0; i < rows && ui->top[FOCUS_LIMITS] + i < n; i++) {
        int idx = ui->top[FOCUS_LIMITS] + i;
        const qt_engine_row *r = &ui->snap.rows[idx];
        int y = 1 + i;
        int selected = idx == ui->sel[FOCUS_LIMITS];
        qt_ui_role nr = selected && focused ? QT_ROLE_SELECTION : r->is_provider ? QT_ROLE_LABEL : QT_ROLE_TEXT;
        if (selected && focused)
            ui_putf(ui, w, y, 0, c.name, nr, "%-*s", c.name, "");
        ui_putf(ui, w, y, 0, c.name, nr, "%s%.*s", r->is_provider ? (ui->utf8 ? "\u00bb " : "> ") : " ",
                c.name - 2, r->name);
        x = c.name + 1;
        char cb[32], t[32];
        qt_ui_role cr = QT_ROLE_CIRCUIT_CLOSED;
        if (!strcmp(r->circuit, "OPEN")) {
            cr = QT_ROLE_CIRCUIT_OPEN;
            snprintf(cb, sizeof cb, "OPEN %llus", (unsigned long long)((r->next_probe_in_ms + 999) / 1000));
        } else if (!strcmp(r->circuit, "HALF_OPEN")) {
            cr = QT_ROLE_CIRCUIT_HALF_OPEN;
            snprintf(cb, sizeof cb, "HALF_OPEN");
        } else if (r->held_until_in_ms > 0) {
            cr = QT_ROLE_CIRCUIT_HALF_OPEN;
            snprintf(cb, sizeof cb, "HOLD %s", qt_ui_fmt_dur(r->held_until_in_ms, t, sizeof t));
        } else {
            snprintf(cb, sizeof cb, "CLOSED");
        }
        ui_putf(ui, w, y, x, c.circ, cr, "%-*s", c.circ, cb);
        x += c.circ + 1;
        int rchg = r->changed_live && r->rpm != r->cfg_rpm;
        int tchg = r->changed_live && r->tpm != r->cfg_tpm;
        if (r->changed_live && !rchg && !tchg)
            rchg = 1;
        limit_cell(ui, w, y, x, c.gauge, (double)r->requests_60s, r->rpm, rchg);
        x += c.gauge + 1;
        limit_cell(ui, w, y, x, c.gauge, (double)r->tokens_60s, r->tpm, tchg);
        x += c.gauge + 1;
        if (r->max_concurrent > 0)
            snprintf(cb, sizeof cb, "%d/%d", r->in_flight, r->max_concurrent);
        else
            snprintf(cb, sizeof cb, "%d", r->in_flight);
        ui_putf(ui, w, y, x, c.infl, QT_ROLE_TEXT, "%*s", c.infl, cb);
        x += c.infl + 1;
        ui_putf(ui, w, y, x, c.n429, r->rate_limited ? QT_ROLE_EVENT_RATE_LIMITED : QT_ROLE_DIM, "%*s",
                c.n429, qt_ui_fmt_count((double)r->rate_limited, t, sizeof t));
        x += c.n429 + 1;
        ui_putf(ui, w, y, x, c.nerr, r->errors ? QT_ROLE_EVENT_ERROR : QT_ROLE_DIM, "%*s", c.nerr,
                qt_ui_fmt_count((double)r->errors, t, sizeof t));
        x += c.nerr + 1;
        if (c.lat)
            ui_putf(ui, w, y, x, c.lat, QT_ROLE_TEXT, "%*.0f/%-6.0f", c.lat - 7, r->p50_ms, r->p95_ms);
    }
}

/* ------------------------------------------------------------ history */

int ui_history_row(const ui_state *ui)
{
    int n = (int)ui->snap.n_rows;
    if (n <= 0)
        return -1;
    int i = ui->sel[FOCUS_LIMITS];
    return i < 0 ? 0 : i >= n ? n - 1 : i;
}

static void draw_history(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w), h = getmaxy(w);
    int ri = ui_history_row(ui);
    char extra[160];
    if (ri < 0) {
        ui_title(ui, w, "HISTORY", 0, "no models");
        return;
    }
    const qt_engine_row *r = &ui->snap.rows[ri];
    snprintf(extra, sizeof extra, "%s%s  last 2 min, per second (select a row in LIMITS)",
             r->is_provider ? "provider " : "", r->name);
    ui_title(ui, w, "HISTORY", 0, extra);
    if (h < 3)
        return;
    if (ui->lay.two_plots) {
        int pw = (width - 2) / 2;
        ui_plot(ui, w, 1, 0, h - 1, pw, r->rps, QT_ARRAY_LEN(r->rps), r->rpm / 60.0,
                QT_ROLE_PLOT_REQUESTS, "requests/s");
        ui_plot(ui, w, 1, pw + 2, h - 1, width - pw - 2, r->tps, QT_ARRAY_LEN(r->tps), r->tpm / 60.0,
                QT_ROLE_PLOT_TOKENS, "tokens/s");
    } else {
        ui_plot(ui, w, 1, 0, h - 1, width, r->rps, QT_ARRAY_LEN(r->rps), r->rpm / 60.0,
                QT_ROLE_PLOT_REQUESTS, "requests/s");
    }
}

/* ------------------------------------------------------------ queue */

static void draw_queue(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w), h = getmaxy(w);
    int focused = ui->focus == FOCUS_QUEUE;
    char extra[200];
    size_t off = 0;
    off += (size_t)snprintf(extra, sizeof extra, "%zu queued", ui->qcounts.total);
    if (ui->qcounts.total > ui->qcounts.ready && off < sizeof extra)
        off += (size_t)snprintf(extra + off, sizeof extra - off, " (%zu paused)",
                                ui->qcounts.total - ui->qcounts.ready);
    for (int p = 0; p < QT_QUEUE_PRIO_LEVELS && off < sizeof extra; p++)
        if (ui->qcounts.by_priority[p])
            off += (size_t)snprintf(extra + off, sizeof extra - off, " p%d:%zu", p + 1,
                                    ui->qcounts.by_priority[p]);
    ui_title(ui, w, "QUEUE", focused, extra);
    if (h < 2)
        return;
    /* columns: id, workflow, prio, model, age, est */
    int est = width >= 52 ? 6 : 0, age = 6, pr = 4;
    int rest = width - pr - age - (est ? est + 1 : 0) - 5;
    int idw = imax(6, rest * 30 / 100), wfw = imax(6, rest * 36 / 100), mw = imax(5, rest - idw - wfw);
    ui_putf(ui, w, 1, 0, width, QT_ROLE_LABEL, " %-*.*s %-*.*s %*s %-*.*s %*s", idw - 1, idw - 1, "id",
            wfw, wfw, "workflow", pr, "prio", mw, mw, "model", age, "age");
    if (est)
        ui_putf(ui, w, 1, width - est, est, QT_ROLE_LABEL, "%*s", est, "est");
    int rows = h - 2, n = (int)ui->nqueue;
    if (n == 0) {
        ui_put(ui, w, 2, 1, width - 1, QT_ROLE_DIM, ui->finished ? "empty: every job has its result" : "empty");
        return;
    }
    ui->top[FOCUS_QUEUE] = qt_ui_scroll(ui->top[FOCUS_QUEUE], ui->sel[FOCUS_QUEUE], n, rows);
    uint64_t now = qt_now_ms();
    for (int i = 0; i < rows && ui->top[FOCUS_QUEUE] + i < n; i++) {
        int idx = ui->top[FOCUS_QUEUE] + i;
        const qt_queue_view *q = &ui->queue[idx];
        int y = 2 + i;
        int selected = idx == ui->sel[FOCUS_QUEUE];
        qt_ui_role role = selected && focused ? QT_ROLE_SELECTION : q->paused ? QT_ROLE_DIM : QT_ROLE_TEXT;
        char p[16], a[32];
        if (q->effective_priority != q->priority)
            snprintf(p, sizeof p, "%d^%d", q->priority, q->effective_priority);
        else
            snprintf(p, sizeof p, "%d", q->priority);
        qt_ui_fmt_dur(now > q->enqueue_ms ? now - q->enqueue_ms : 0, a, sizeof a);
        if (selected && focused)
            ui_fill_line(ui, w, y, QT_ROLE_SELECTION);
        ui_putf(ui, w, y, 0, width, role, "%s%-*.*s %-*.*s %*s %-*.*s %*s",
                selected ? ">" : q->paused ? "=" : " ", idw - 1, idw - 1, q->id, wfw, wfw, q->workflow,
                pr, p, mw, mw, q->model, age, a);
        if (est)
            ui_putf(ui, w, y, width - est, est, role, "%*u", est, q->est_tokens);
    }
}

/* ------------------------------------------------------------ workflows */

static void draw_workflows(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w), h = getmaxy(w);
    int focused = ui->focus == FOCUS_WORKFLOWS;
    char extra[64];
    snprintf(extra, sizeof extra, "%zu", ui->snap.n_workflows);
    ui_title(ui, w, "WORKFLOWS", focused, extra);
    if (h < 2)
        return;
    int calls = width >= 44 ? 6 : 0, toks = width >= 60 ? 7 : 0, spend = 8, q = 5;
    int namew = width >= 50 ? 14 : width >= 34 ? 12 : 10;
    int bar = width - namew - (calls ? calls + 1 : 0) - (toks ? toks + 1 : 0) - spend - 1 - q - 2;
    int x = 1;
    ui_putf(ui, w, 1, x, namew, QT_ROLE_LABEL, "%-*s", namew, "workflow");
    x += namew + 1;
    if (calls) {
        ui_putf(ui, w, 1, x, calls, QT_ROLE_LABEL, "%*s", calls, "calls");
        x += calls + 1;
    }
    if (toks) {
        ui_putf(ui, w, 1, x, toks, QT_ROLE_LABEL, "%*s", toks, "tokens");
        x += toks + 1;
    }
    ui_putf(ui, w, 1, x, spend, QT_ROLE_LABEL, "%*s", spend, "spend");
    x += spend + 1;
    if (bar >= 4)
        ui_putf(ui, w, 1, x, bar, QT_ROLE_LABEL, "%-*s", bar, "budget");
    ui_putf(ui, w, 1, width - q, q, QT_ROLE_LABEL, "%*s", q, "queue");
    int rows = h - 2, n = (int)ui->snap.n_workflows;
    ui->top[FOCUS_WORKFLOWS] = qt_ui_scroll(ui->top[FOCUS_WORKFLOWS], ui->sel[FOCUS_WORKFLOWS], n, rows);
    for (int i = 0; i < rows && ui->top[FOCUS_WORKFLOWS] + i < n; i++) {
        int idx = ui->top[FOCUS_WORKFLOWS] + i;
        const qt_engine_wf *wf = &ui->snap.workflows[idx];
        int y = 2 + i;
        int selected = idx == ui->sel[FOCUS_WORKFLOWS];
        qt_ui_role role = selected && focused ? QT_ROLE_SELECTION : wf->paused ? QT_ROLE_PAUSED : QT_ROLE_TEXT;
        char t[32];
        ui_putf(ui, w, y, 0, namew + 1, role, "%s%-*.*s", wf->paused ? "=" : " ", namew, namew, wf->name);
        x = namew + 2;
        if (calls) {
            ui_putf(ui, w, y, x, calls, QT_ROLE_TEXT, "%*s", calls, qt_ui_fmt_count((double)wf->calls, t, sizeof t));
            x += calls + 1;
        }
        if (toks) {
            ui_putf(ui, w, y, x, toks, QT_ROLE_TEXT, "%*s", toks,
                    qt_ui_fmt_count((double)(wf->prompt_tokens + wf->completion_tokens), t, sizeof t));
            x += toks + 1;
        }
        ui_putf(ui, w, y, x, spend, QT_ROLE_TEXT, "%*.4f", spend, wf->cost_usd);
        x += spend + 1;
        if (bar >= 4) {
            if (wf->limit_usd > 0) {
                int pctw = 5;
                int level = 0;
                qt_ui_gauge_cells(wf->cost_usd, wf->limit_usd, 100, &level);
                if (bar - pctw - 1 >= 3)
                    ui_gauge(ui, w, y, x, bar - pctw - 1, wf->cost_usd, wf->limit_usd);
                ui_putf(ui, w, y, x + imax(0, bar - pctw), pctw,
                        level == 2 ? QT_ROLE_GAUGE_FULL : level == 1 ? QT_ROLE_GAUGE_WARN : QT_ROLE_TEXT, "%4.0f%%",
                        100.0 * wf->cost_usd / wf->limit_usd);
            } else {
                ui_put(ui, w, y, x, bar, QT_ROLE_DIM, "no budget");
            }
        }
        if (wf->paused)
            ui_putf(ui, w, y, width - q, q, QT_ROLE_PAUSED, "%*s", q, "PAUS");
        else
            ui_putf(ui, w, y, width - q, q, QT_ROLE_TEXT, "%*zu", q, wf->queued);
    }
}

/* ------------------------------------------------------------ events */

static qt_ui_role event_role(qt_event_type t)
{
    switch (t) {
    case QT_EV_RETRY: return QT_ROLE_EVENT_RETRY;
    case QT_EV_RATE_LIMITED: return QT_ROLE_EVENT_RATE_LIMITED;
    case QT_EV_FALLBACK: return QT_ROLE_EVENT_FALLBACK;
    case QT_EV_CIRCUIT: return QT_ROLE_EVENT_CIRCUIT;
    case QT_EV_BUDGET_WARN:
    case QT_EV_BUDGET_EXHAUSTED: return QT_ROLE_EVENT_BUDGET;
    case QT_EV_LIMIT_CHANGE: return QT_ROLE_EVENT_LIMIT;
    case QT_EV_CANCEL: return QT_ROLE_EVENT_CANCEL;
    case QT_EV_PAUSE:
    case QT_EV_RESUME: return QT_ROLE_PAUSED;
    case QT_EV_ERROR: return QT_ROLE_EVENT_ERROR;
    default: return QT_ROLE_EVENT_INFO;
    }
}

static void draw_events(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w), h = getmaxy(w);
    char extra[64];
    snprintf(extra, sizeof extra, "newest first");
    ui_title(ui, w, "EVENTS", 0, extra);
    int rows = h - 1;
    for (int i = 0; i < rows && i < (int)ui->nevents; i++) {
        const qt_event *ev = &ui->events[ui->nevents - 1 - (size_t)i];
        time_t secs = (time_t)(ev->wall_ms / 1000);
        struct tm tm;
        char ts[16] = "--:--:--";
        if (localtime_r(&secs, &tm))
            strftime(ts, sizeof ts, "%H:%M:%S", &tm);
        int x = ui_putf(ui, w, 1 + i, 1, width - 1, QT_ROLE_DIM, "%s ", ts) + 1;
        x += ui_putf(ui, w, 1 + i, x, width - x, event_role(ev->type), "%-12.12s ", qt_event_type_name(ev->type));
        ui_put(ui, w, 1 + i, x, width - x, QT_ROLE_TEXT, ev->msg);
    }
    if (ui->nevents == 0)
        ui_put(ui, w, 1, 1, width - 1, QT_ROLE_DIM, "no events yet");
}

/* ------------------------------------------------------------ footer */

static void draw_footer(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w);
    ui_fill_line(ui, w, 0, QT_ROLE_FOOTER);
    int x = 0;
    if (ui->status[0]) {
        x += ui_putf(ui, w, 0, 0, width, QT_ROLE_FOOTER_KEY, " %s ", ui->status);
        x += 1;
    }
    static const struct { const char *k, *t; int focus; } hints[] = {
        { "q", "Quit", -1 },      { "p", "Pause", -1 },       { "Tab", "Panel", -1 },
        { "+-", "Prio", FOCUS_QUEUE }, { "x", "Cancel", FOCUS_QUEUE }, { "Spc", "Pause wf", FOCUS_WORKFLOWS },
        { "[]", "RPM", FOCUS_LIMITS }, { "{}", "TPM", FOCUS_LIMITS }, { "r", "Reset", FOCUS_LIMITS },
        { "jk", "Move", -1 },     { "t", "Theme", -1 },       { "?", "Help", -1 },
    };
    for (size_t i = 0; i < QT_ARRAY_LEN(hints); i++) {
        if (hints[i].focus >= 0 && hints[i].focus != ui->focus)
            continue;
        int need = (int)(strlen(hints[i].k) + strlen(hints[i].t)) + 3;
        if (x + need > width)
            break;
        x += ui_put(ui, w, 0, x, width - x, QT_ROLE_FOOTER_KEY, hints[i].k);
        x += ui_putf(ui, w, 0, x, width - x, QT_ROLE_FOOTER, " %s  ", hints[i].t);
    }
}

/* ------------------------------------------------------------ overlays */

static void draw_confirm(ui_state *ui)
{
    char q[200];
    if (ui->confirm == CONFIRM_CANCEL)
        snprintf(q, sizeof q, "Cancel job %s? Its result will say `cancelled`.", ui->confirm_id);
    else
        snprintf(q, sizeof q, "Quit? %llu jobs are not done; they get `cancelled` results.",
                 (unsigned long long)(ui->snap.jobs > ui->snap.done ? ui->snap.jobs - ui->snap.done : 0));
    int wd = imin(ui->cols, imax(40, (int)strlen(q) + 6));
    WINDOW *w = NULL;
    ui_box(ui, 5, wd, ui->confirm == CONFIRM_CANCEL ? "cancel" : "quit", &w);
    if (!w)
        return;
    ui_put(ui, w, 1, 2, wd - 4, QT_ROLE_DIALOG, q);
    ui_put(ui, w, 3, 2, wd - 4, QT_ROLE_DIALOG, "y: yes    n / Esc: no");
    wnoutrefresh(w);
    delwin(w);
}

/* ------------------------------------------------------------ frame */

void ui_draw_all(ui_state *ui)
{
    if (ui->lay.too_small) {
        erase();
        attrset(ui->attr[QT_ROLE_TEXT]);
        mvaddnstr(0, 0, "quotatop: terminal too small (need 40x12)", ui->cols);
        if (ui->rows > 1)
            mvaddnstr(1, 0, "q quits", ui->cols);
        wnoutrefresh(stdscr);
        doupdate();
        return;
    }
    for (int p = 0; p < QT_PANEL__COUNT; p++) {
        WINDOW *w = ui->win[p];
        if (!w)
            continue;
        wattrset(w, ui->attr[QT_ROLE_TEXT]);
        werase(w);
        switch (p) {
        case QT_PANEL_HEADER: draw_header(ui, w); break;
        case QT_PANEL_LIMITS: draw_limits(ui, w); break;
        case QT_PANEL_HISTORY: draw_history(ui, w); break;
        case QT_PANEL_QUEUE: draw_queue(ui, w); break;
        case QT_PANEL_WORKFLOWS: draw_workflows(ui, w); break;
        case QT_PANEL_EVENTS: draw_events(ui, w); break;
        case QT_PANEL_FOOTER: draw_footer(ui, w); break;
        }
        wnoutrefresh(w);
    }
    if (ui->help)
        ui_draw_help(ui);
    else if (ui->confirm)
        draw_confirm(ui);
    doupdate();   /* the one terminal update of the frame */
}
