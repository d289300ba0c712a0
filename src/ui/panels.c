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
    const qt_engine_snapshot *s = &ui->fr.snap;
    char b[160], t1[32], t2[32];
    ui_fill_line(ui, w, 0, QT_ROLE_HEADER);
    if (getmaxy(w) > 1)
        ui_fill_line(ui, w, 1, QT_ROLE_HEADER);
    int x = 0;
    if (ui->remote)
        snprintf(b, sizeof b, " quotatop top > %s", ui->fr.mode[0] ? ui->fr.mode : "?");
    else
        snprintf(b, sizeof b, " quotatop %s", ui->opts.mode ? ui->opts.mode : "");
    seg(ui, w, 0, &x, QT_ROLE_HEADER, b);
    const char *state = ui->fr.finished ? "DONE" : s->paused ? "PAUSED" : "RUNNING";
    seg(ui, w, 0, &x, ui->fr.finished ? QT_ROLE_HEADER_DONE : s->paused ? QT_ROLE_HEADER_PAUSED : QT_ROLE_HEADER,
        state);
    if (s->fleet_state == 1) {   /* backend.kind "redis": limits shared by the fleet */
        snprintf(b, sizeof b, "fleet %d proc%s infl %d rpm %llu $%.2f today (P)", s->fleet_procs,
                 s->fleet_procs == 1 ? "" : "s", s->fleet_in_flight,
                 (unsigned long long)s->fleet_requests_60s, s->fleet_day_spent_usd);
        seg(ui, w, 0, &x, QT_ROLE_HEADER, b);
    } else if (s->fleet_state >= 2) {
        if (s->fleet_state == 2)
            snprintf(b, sizeof b, "REDIS DOWN: this process's share, limits /%d", s->fleet_divisor);
        else
            snprintf(b, sizeof b, "REDIS DOWN: dispatch stopped (on_error closed)");
        seg(ui, w, 0, &x, QT_ROLE_HEADER_PAUSED, b);
    }
    uint64_t up = s->uptime_ms;
    snprintf(b, sizeof b, "up %s", qt_ui_fmt_dur(up, t1, sizeof t1));
    seg(ui, w, 0, &x, QT_ROLE_HEADER, b);
    snprintf(b, sizeof b, "workers %d/%d", s->busy, s->workers);
    seg(ui, w, 0, &x, QT_ROLE_HEADER, b);
    snprintf(b, sizeof b, "queue %zu", s->queued);
    seg(ui, w, 0, &x, QT_ROLE_HEADER, b);
    snprintf(b, sizeof b, "waiting %zu", s->waiting);
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
    /* each status on its own (a rejected or invalid job is not a failure),
     * first on the line; shorter names when the long ones do not fit */
    unsigned long long st[5] = { s->ok, s->failed, s->rejected, s->cancelled, s->invalid };
    snprintf(b, sizeof b, " ok %llu failed %llu rejected %llu cancelled %llu invalid %llu", st[0], st[1], st[2],
             st[3], st[4]);
    if (!seg(ui, w, y, &x, QT_ROLE_HEADER, b)) {
        snprintf(b, sizeof b, " ok %llu fail %llu rej %llu canc %llu inv %llu", st[0], st[1], st[2], st[3], st[4]);
        seg(ui, w, y, &x, QT_ROLE_HEADER, b);
    }
    if (s->run_limit_usd > 0)
        snprintf(b, sizeof b, "run $%.4f/$%.2f (%.0f%%)", s->run_spent_usd, s->run_limit_usd,
                 100.0 * s->run_spent_usd / s->run_limit_usd);
    else
        snprintf(b, sizeof b, "run $%.4f", s->run_spent_usd);
    int lvl = 0;
    qt_ui_gauge_cells(s->run_spent_usd, s->run_limit_usd, 10, &lvl);
    seg(ui, w, y, &x, lvl == 2 ? QT_ROLE_HEADER_PAUSED : QT_ROLE_HEADER, b);
    /* with the shared backend the day budget is the fleet's: its spend is every process's */
    int fleet_day = ui_fleet_shared(ui);
    double day = fleet_day ? ui->fr.fleet.day_spent_usd : s->day_spent_usd;
    if (s->day_limit_usd > 0)
        snprintf(b, sizeof b, "%sday $%.2f/$%.2f", fleet_day ? "fleet " : "", day, s->day_limit_usd);
    else
        snprintf(b, sizeof b, "%sday $%.2f", fleet_day ? "fleet " : "", day);
    seg(ui, w, y, &x, QT_ROLE_HEADER, b);
    snprintf(b, sizeof b, "req %s", qt_ui_fmt_count((double)s->requests, t1, sizeof t1));
    seg(ui, w, y, &x, QT_ROLE_HEADER, b);
    snprintf(b, sizeof b, "429s %llu retries %llu fallbacks %llu", (unsigned long long)s->upstream_429,
             (unsigned long long)s->retries, (unsigned long long)s->fallbacks);
    seg(ui, w, y, &x, QT_ROLE_HEADER, b);
    if (s->by_endpoint[QT_ENDPOINT_MESSAGES] + s->by_endpoint[QT_ENDPOINT_RESPONSES]
        + s->by_endpoint[QT_ENDPOINT_EMBEDDINGS] > 0) {   /* jobs of other APIs: say which */
        snprintf(b, sizeof b, "chat %llu msg %llu resp %llu emb %llu",
                 (unsigned long long)s->by_endpoint[QT_ENDPOINT_CHAT],
                 (unsigned long long)s->by_endpoint[QT_ENDPOINT_MESSAGES],
                 (unsigned long long)s->by_endpoint[QT_ENDPOINT_RESPONSES],
                 (unsigned long long)s->by_endpoint[QT_ENDPOINT_EMBEDDINGS]);
        seg(ui, w, y, &x, QT_ROLE_HEADER, b);
    }
    snprintf(b, sizeof b, "theme %s", ui->theme.name);
    seg(ui, w, y, &x, QT_ROLE_HEADER, b);
}

/* ------------------------------------------------------------ limits */

/* "used/limit" text plus a bar filling the rest of the column. */
static void limit_cell(ui_state *ui, WINDOW *w, int y, const qt_ui_col *c, double used, double limit,
                       int changed)
{
    if (!c->w)
        return;
    int tw = c->w < 10 ? c->w : 10;
    char t[40];
    qt_ui_fmt_pair(used, limit, changed ? tw - 1 : tw, t, sizeof t);
    int bar = c->w - tw - 1;
    if (bar >= 3 && limit > 0)
        ui_gauge(ui, w, y, c->x, bar, used, limit);
    int level = 0;
    qt_ui_gauge_cells(used, limit, 100, &level);
    qt_ui_role r = level == 2 ? QT_ROLE_GAUGE_FULL : level == 1 ? QT_ROLE_GAUGE_WARN : QT_ROLE_TEXT;
    int tx = c->x + (bar >= 3 ? bar + 1 : 0);
    int tww = c->x + c->w - tx;
    int used_w = ui_putf(ui, w, y, tx, tww, r, "%*s", changed ? tww - 1 : tww, t);
    if (changed)
        ui_put(ui, w, y, tx + used_w, 1, QT_ROLE_CHANGED, "*");
}

static void circuit_text(const qt_engine_row *r, char *cb, size_t len, qt_ui_role *cr)
{
    char t[32];
    *cr = QT_ROLE_CIRCUIT_CLOSED;
    if (!strcmp(r->circuit, "OPEN")) {
        *cr = QT_ROLE_CIRCUIT_OPEN;
        uint64_t s = (r->next_probe_in_ms + 999) / 1000;
        snprintf(cb, len, "OPEN %s", qt_ui_fmt_dur(s * 1000, t, sizeof t));
    } else if (!strcmp(r->circuit, "HALF_OPEN")) {
        *cr = QT_ROLE_CIRCUIT_HALF_OPEN;
        snprintf(cb, len, "HALF_OPEN");
    } else if (r->held_until_in_ms > 0) {
        *cr = QT_ROLE_CIRCUIT_HALF_OPEN;
        snprintf(cb, len, "HOLD %s", qt_ui_fmt_dur(r->held_until_in_ms, t, sizeof t));
    } else {
        snprintf(cb, len, "CLOSED");
    }
}

static void limits_row(ui_state *ui, WINDOW *w, int y, const qt_ui_col *c, const qt_engine_row *r,
                       int selected)
{
    char cb[48], t[48], a[16], b[16];
    qt_ui_role nr = selected ? QT_ROLE_SELECTION : r->is_provider ? QT_ROLE_LABEL : QT_ROLE_TEXT;
    const qt_ui_col *nc = &c[QT_UI_LC_NAME];
    if (selected)
        ui_putf(ui, w, y, 0, nc->w, nr, "%-*s", nc->w, "");
    qt_ui_fit_id(r->name, nc->w - 2, t, sizeof t);
    ui_putf(ui, w, y, 0, nc->w, nr, "%s%s", r->is_provider ? (ui->utf8 ? "\u00bb " : "> ") : " ", t);
    qt_ui_role cr;
    circuit_text(r, cb, sizeof cb, &cr);
    ui_cell_l(ui, w, y, &c[QT_UI_LC_CIRC], cr, cb);
    int rchg = r->changed_live && r->rpm != r->cfg_rpm;
    int tchg = r->changed_live && r->tpm != r->cfg_tpm;
    if (r->changed_live && !rchg && !tchg)
        rchg = 1;
    double req, tok;   /* the fleet's with the shared backend: its limits are the fleet's */
    ui_row_usage(ui, r, &req, &tok);
    limit_cell(ui, w, y, &c[QT_UI_LC_RPM], req, r->rpm, rchg);
    limit_cell(ui, w, y, &c[QT_UI_LC_TPM], tok, r->tpm, tchg);
    const qt_ui_col *ic = &c[QT_UI_LC_INFL];
    if (r->max_concurrent > 0)
        snprintf(cb, sizeof cb, "%s/%s", qt_ui_fmt_count(r->in_flight, a, sizeof a),
                 qt_ui_fmt_count(r->max_concurrent, b, sizeof b));
    else
        qt_ui_fmt_count(r->in_flight, cb, sizeof cb);
    if ((int)strlen(cb) > ic->w)
        qt_ui_fmt_fit(r->in_flight, ic->w, cb, sizeof cb);
    ui_cell_r(ui, w, y, ic, QT_ROLE_TEXT, cb);
    qt_ui_fmt_fit((double)r->rate_limited, c[QT_UI_LC_429].w, t, sizeof t);
    ui_cell_r(ui, w, y, &c[QT_UI_LC_429], r->rate_limited ? QT_ROLE_EVENT_RATE_LIMITED : QT_ROLE_DIM, t);
    qt_ui_fmt_fit((double)r->errors, c[QT_UI_LC_ERR].w, t, sizeof t);
    ui_cell_r(ui, w, y, &c[QT_UI_LC_ERR], r->errors ? QT_ROLE_EVENT_ERROR : QT_ROLE_DIM, t);
    const qt_ui_col *lc = &c[QT_UI_LC_LAT];
    if (lc->w) {
        snprintf(cb, sizeof cb, "%.0f/%.0f", r->p50_ms, r->p95_ms);
        if ((int)strlen(cb) > lc->w)
            snprintf(cb, sizeof cb, "%s/%s", qt_ui_fmt_count(r->p50_ms, a, sizeof a),
                     qt_ui_fmt_count(r->p95_ms, b, sizeof b));
        ui_cell_r(ui, w, y, lc, QT_ROLE_TEXT, cb);
    }
}

static void draw_limits(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w), h = getmaxy(w);
    qt_ui_col c[QT_UI_LC__COUNT];
    qt_ui_limits_columns(width, c);
    if (ui_fleet_shared(ui)) {   /* every process's requests against the one limit */
        c[QT_UI_LC_RPM].name = c[QT_UI_LC_RPM].w >= 15 ? "fleet RPM (60s)" : "fleet RPM";
        c[QT_UI_LC_TPM].name = c[QT_UI_LC_TPM].w >= 15 ? "fleet TPM (60s)" : "fleet TPM";
    }
    int focused = ui->focus == FOCUS_LIMITS;
    qt_ui_role tr = focused ? QT_ROLE_TITLE_FOCUS : QT_ROLE_TITLE;
    ui_fill_line(ui, w, 0, tr);
    ui_putf(ui, w, 0, 0, c[QT_UI_LC_NAME].w, tr, " %s", "LIMITS");
    qt_ui_col t[QT_UI_LC__COUNT];
    memcpy(t, c, sizeof t);
    t[QT_UI_LC_NAME].w = 0;
    ui_view *v = &ui->v[L_LIMITS];
    ui_col_titles(ui, w, 0, t, QT_UI_LC__COUNT, tr, 1u << QT_UI_LC_CIRC, v->sort, v->desc);
    if (v->filter[0])
        ui_putf(ui, w, 0, 8, c[QT_UI_LC_NAME].w - 8, tr, "/%s", v->filter);
    int rows = h - 1;
    v->top = qt_ui_scroll(v->top, v->sel, v->n, rows);
    for (int i = 0; i < rows && v->top + i < v->n; i++) {
        int p = v->top + i;
        limits_row(ui, w, 1 + i, c, &ui->fr.snap.rows[v->idx[p]], focused && p == v->sel);
    }
}

/* ------------------------------------------------------------ history */

int ui_history_row(const ui_state *ui)
{
    int i = ui_view_selected(ui, L_LIMITS);
    return i >= 0 ? i : ui->fr.snap.n_rows ? 0 : -1;
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
    const qt_engine_row *r = &ui->fr.snap.rows[ri];
    snprintf(extra, sizeof extra, "%s%s  last 2 min, per second%s (select a row in LIMITS)",
             r->is_provider ? "provider " : "", r->name, ui->fr.has_fleet ? ", this process" : "");
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

/* ------------------------------------------------------------ workflows */

static void wf_row(ui_state *ui, WINDOW *w, int y, const qt_ui_col *c, const qt_engine_wf *wf,
                   int selected)
{
    char t[48];
    qt_ui_role role = selected ? QT_ROLE_SELECTION : wf->paused ? QT_ROLE_PAUSED : QT_ROLE_TEXT;
    const qt_ui_col *nc = &c[QT_UI_WC_NAME];
    qt_ui_fit_id(wf->name, nc->w - 1, t, sizeof t);
    ui_putf(ui, w, y, 0, nc->w, role, "%s%-*s", wf->paused ? "=" : " ", nc->w - 1, t);   /* mark + name */
    qt_ui_fmt_fit((double)wf->calls, c[QT_UI_WC_CALLS].w, t, sizeof t);
    ui_cell_r(ui, w, y, &c[QT_UI_WC_CALLS], QT_ROLE_TEXT, t);
    qt_ui_fmt_fit((double)(wf->prompt_tokens + wf->completion_tokens), c[QT_UI_WC_TOKENS].w, t, sizeof t);
    ui_cell_r(ui, w, y, &c[QT_UI_WC_TOKENS], QT_ROLE_TEXT, t);
    qt_ui_fmt_usd(wf->cost_usd, c[QT_UI_WC_SPEND].w, t, sizeof t);
    ui_cell_r(ui, w, y, &c[QT_UI_WC_SPEND], QT_ROLE_TEXT, t);
    const qt_ui_col *bc = &c[QT_UI_WC_BUDGET];
    if (bc->w) {
        if (wf->limit_usd > 0) {
            int pctw = 5, level = 0;
            qt_ui_gauge_cells(wf->cost_usd, wf->limit_usd, 100, &level);
            if (bc->w - pctw - 1 >= 3)
                ui_gauge(ui, w, y, bc->x, bc->w - pctw - 1, wf->cost_usd, wf->limit_usd);
            double pct = 100.0 * wf->cost_usd / wf->limit_usd;
            snprintf(t, sizeof t, "%.0f%%", pct > 9999 ? 9999 : pct);
            ui_putf(ui, w, y, bc->x + bc->w - pctw, pctw,
                    level == 2 ? QT_ROLE_GAUGE_FULL : level == 1 ? QT_ROLE_GAUGE_WARN : QT_ROLE_TEXT, "%*s",
                    pctw, t);
        } else {
            ui_put(ui, w, y, bc->x, bc->w, QT_ROLE_DIM, bc->w >= 9 ? "no budget" : "-");
        }
    }
    const qt_ui_col *qc = &c[QT_UI_WC_QUEUE];
    if (wf->paused) {
        ui_cell_r(ui, w, y, qc, QT_ROLE_PAUSED, "PAUS");
    } else {
        qt_ui_fmt_fit((double)wf->queued, qc->w, t, sizeof t);
        ui_cell_r(ui, w, y, qc, QT_ROLE_TEXT, t);
    }
}

static void draw_workflows(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w), h = getmaxy(w);
    int focused = ui->focus == FOCUS_WORKFLOWS;
    char extra[128];
    if (ui->v[L_WORKFLOWS].filter[0])
        snprintf(extra, sizeof extra, "%zu  /%s", ui->fr.snap.n_workflows, ui->v[L_WORKFLOWS].filter);
    else
        snprintf(extra, sizeof extra, "%zu", ui->fr.snap.n_workflows);
    ui_title(ui, w, "WORKFLOWS", focused, extra);
    if (h < 2)
        return;
    qt_ui_col c[QT_UI_WC__COUNT];
    qt_ui_wf_columns(width, c);
    ui_view *v = &ui->v[L_WORKFLOWS];
    ui_col_titles(ui, w, 1, c, QT_UI_WC__COUNT, QT_ROLE_LABEL, 1u << QT_UI_WC_NAME | 1u << QT_UI_WC_BUDGET,
                  v->sort, v->desc);
    int rows = h - 2;
    v->top = qt_ui_scroll(v->top, v->sel, v->n, rows);
    for (int i = 0; i < rows && v->top + i < v->n; i++) {
        int p = v->top + i;
        wf_row(ui, w, 2 + i, c, &ui->fr.snap.workflows[v->idx[p]], focused && p == v->sel);
    }
}

/* ------------------------------------------------------------ footer */

static void draw_footer(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w);
    ui_fill_line(ui, w, 0, QT_ROLE_FOOTER);
    int x = 0;
    if (ui->prompt) {   /* the line editor of / and = */
        static const char *const what[] = { "", "filter (key:text, Enter keeps, Esc clears): /",
                                            "", "priority 1..10 for job ", "priority 1..10 for workflow " };
        char lead[200];
        if (ui->prompt == PROMPT_LIMIT)
            snprintf(lead, sizeof lead, "%s: new RPM limit (t then a number for TPM): ", ui->ptarget);
        else if (ui->prompt == PROMPT_FILTER)
            snprintf(lead, sizeof lead, "%s", what[PROMPT_FILTER]);
        else
            snprintf(lead, sizeof lead, "%s%s: ", what[ui->prompt], ui->ptarget);
        x += ui_put(ui, w, 0, 0, width, QT_ROLE_FOOTER_KEY, lead);
        x += ui_put(ui, w, 0, x, width - x, QT_ROLE_FOOTER, ui->pbuf);
        ui_put(ui, w, 0, x, width - x, QT_ROLE_FOOTER_KEY, "_");
        return;
    }
    if (ui->status[0]) {
        x += ui_putf(ui, w, 0, 0, width, QT_ROLE_FOOTER_KEY, " %s ", ui->status);
        x += 1;
    }
    static const struct { const char *k, *t; int focus; } hints[] = {
        { "q", "Quit", -1 },           { "p", "Pause", -1 },        { "Tab", "Panel", -1 },
        { "Enter", "Detail", FOCUS_JOBS }, { "+-=", "Prio", FOCUS_JOBS }, { "x", "Cancel", FOCUS_JOBS },
        { "f", "State", FOCUS_JOBS },  { "F", "Failed", -1 },      { "P", "Fleet", -2 },
        { "Spc", "Pause wf", FOCUS_WORKFLOWS }, { "x", "Cancel queued", FOCUS_WORKFLOWS },
        { "+-=", "Prio", FOCUS_WORKFLOWS },
        { "[]", "RPM", FOCUS_LIMITS }, { "{}", "TPM", FOCUS_LIMITS }, { "=", "Set", FOCUS_LIMITS },
        { "r", "Reset", FOCUS_LIMITS }, { "Enter", "Full text", FOCUS_EVENTS }, { "f", "Type", FOCUS_EVENTS },
        { "/", "Filter", -1 },         { "s<>", "Sort", -1 },       { "?", "Help", -1 },
    };
    for (size_t i = 0; i < QT_ARRAY_LEN(hints); i++) {
        if (hints[i].focus >= 0 && hints[i].focus != ui->focus)
            continue;
        if (hints[i].focus == -2 && !ui->fr.has_fleet)   /* -2: only with the shared backend */
            continue;
        int need = (int)(strlen(hints[i].k) + strlen(hints[i].t)) + 3;
        if (x + need > width)
            break;
        x += ui_put(ui, w, 0, x, width - x, QT_ROLE_FOOTER_KEY, hints[i].k);
        x += ui_putf(ui, w, 0, x, width - x, QT_ROLE_FOOTER, " %s  ", hints[i].t);
    }
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
        case QT_PANEL_JOBS:
            if (ui->jobs_mode == JM_FAILED)
                ui_draw_failed(ui, w);
            else if (ui->jobs_mode == JM_FLEET)
                ui_draw_fleet(ui, w);
            else
                ui_draw_jobs(ui, w);
            break;
        case QT_PANEL_WORKFLOWS: draw_workflows(ui, w); break;
        case QT_PANEL_EVENTS: ui_draw_events(ui, w); break;
        case QT_PANEL_FOOTER: draw_footer(ui, w); break;
        }
        wnoutrefresh(w);
    }
    if (ui->help)
        ui_draw_help(ui);
    else if (ui->ovl)
        ui_draw_overlay(ui);
    if (!ui->help && ui->confirm)
        ui_draw_confirm(ui);
    doupdate();   /* the one terminal update of the frame */
}
