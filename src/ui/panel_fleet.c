/* panel_fleet.c: FLEET (P), in the JOBS panel: every process sharing the
 * quota through Redis (backend.kind "redis"), as the heartbeat last
 * reported them, and what the fleet holds in common.
 *
 * DESIGN
 * Rows are the view's processes (frame.fleet, copied from the backend by
 * the process the dashboard reads, so `top` shows the same): host, pid,
 * run or serve, its requests in flight, and which one is the process this
 * dashboard belongs to (or is attached to). Under them, when there is
 * room: whether Redis is up (while it is down the rows are as last seen
 * and the marker says what the process does meanwhile), the fleet-wide
 * pauses, today's fleet spend and reservations against the day budget,
 * and the backend's counters. Numbers go through columns.c, never cut.
 */
#include "ui_int.h"

#include <stdio.h>
#include <string.h>

enum { PC_HOST, PC_PID, PC_MODE, PC_INFL, PC_NOTE, PC__COUNT };

/* The lines under the process rows; returns how many were written. */
static int fleet_notes(const ui_state *ui, char out[][200], int max)
{
    const qt_backend_view *v = &ui->fr.fleet;
    const qt_engine_snapshot *s = &ui->fr.snap;
    int n = 0;
    char a[32], b[32], c[32], d[32];
    if (n < max) {
        if (!v->up || s->fleet_state >= 2)
            snprintf(out[n++], 200, "REDIS DOWN%s%.120s%s: %s", v->error[0] ? " (" : "", v->error,
                     v->error[0] ? ")" : "",
                     s->fleet_state == 3 ? "nothing is dispatched (on_error closed)"
                                         : "this process's share of each limit; rows as last seen");
        else
            snprintf(out[n++], 200, "redis up: limits, budgets, pauses shared");
    }
    if (n < max) {
        if (s->day_limit_usd > 0)
            snprintf(out[n++], 200, "today, fleet: $%.4f + $%.4f reserved of $%.2f", v->day_spent_usd,
                     v->day_reserved_usd, s->day_limit_usd);
        else
            snprintf(out[n++], 200, "today, fleet: $%.4f + $%.4f reserved (no day budget)", v->day_spent_usd,
                     v->day_reserved_usd);
    }
    if (n < max && (v->paused || v->n_wf_paused)) {
        char wf[160] = "";
        for (int i = 0; i < v->n_wf_paused && i < QT_BACKEND_MAX_VIEW; i++) {
            size_t off = strlen(wf);
            snprintf(wf + off, sizeof wf - off, "%s%s", i ? ", " : "", v->wf_paused[i]);
        }
        snprintf(out[n++], 200, "%s%s%s", v->paused ? "PAUSED fleet-wide (p resumes all)" : "",
                 v->paused && v->n_wf_paused ? "; " : "", v->n_wf_paused ? "paused workflows: " : "");
        size_t off = strlen(out[n - 1]);
        snprintf(out[n - 1] + off, 200 - off, "%s", wf);
    }
    if (n < max)
        snprintf(out[n++], 200, "backend here: %s admits %s commits %s errors %s reconnects",
                 qt_ui_fmt_count((double)v->admits, a, sizeof a), qt_ui_fmt_count((double)v->commits, b, sizeof b),
                 qt_ui_fmt_count((double)v->errors, c, sizeof c), qt_ui_fmt_count((double)v->reconnects, d, sizeof d));
    return n;
}

void ui_draw_fleet(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w), h = getmaxy(w);
    int focused = ui->focus == FOCUS_JOBS;
    const qt_backend_view *fv = &ui->fr.fleet;
    char extra[300], t[96];
    if (!ui->fr.has_fleet)
        snprintf(extra, sizeof extra, "no shared backend  (P: JOBS)");
    else
        snprintf(extra, sizeof extra, "%d process%s, %d in flight  (P: JOBS)", fv->n_procs,
                 fv->n_procs == 1 ? "" : "es", fv->fleet_in_flight);
    ui_title_extra(ui, L_FLEET, extra, sizeof extra);
    ui_title(ui, w, "FLEET", focused, extra);
    if (h < 2)
        return;
    if (!ui->fr.has_fleet) {
        ui_put(ui, w, 1, 1, width - 1, QT_ROLE_DIM,
               "backend.kind \"local\": this process is the whole fleet");
        return;
    }
    qt_ui_col c[PC__COUNT] = {
        [PC_HOST] = { "host", 8, 24, 0, 0, 0, 0 },  [PC_PID] = { "pid", 7, 7, 0, 0, 0, 0 },
        [PC_MODE] = { "mode", 5, 5, 2, 0, 0, 0 },   [PC_INFL] = { "infl", 5, 5, 0, 0, 0, 0 },
        [PC_NOTE] = { "", 8, 16, 1, 0, 0, 0 },
    };
    qt_ui_fit_columns(c, PC__COUNT, width - 1);
    for (int i = 0; i < PC__COUNT; i++)
        c[i].x += 1;   /* column 0 holds the cursor mark */
    ui_view *v = &ui->v[L_FLEET];
    ui_col_titles(ui, w, 1, c, PC__COUNT, QT_ROLE_LABEL, 1u << PC_HOST | 1u << PC_MODE | 1u << PC_NOTE, v->sort,
                  v->desc);
    int rows = h - 2, y = 2;
    if (v->n == 0) {
        ui_put(ui, w, y++, 1, width - 1, QT_ROLE_DIM,
               fv->n_procs ? "no process matches the filter" : "no process seen yet (the first heartbeat is due)");
    } else {
        v->top = qt_ui_scroll(v->top, v->sel, v->n, rows);
        for (int i = 0; i < rows && v->top + i < v->n; i++, y++) {
            int p = v->top + i, selected = focused && p == v->sel;
            const qt_backend_proc *pr = &fv->procs[v->idx[p]];
            qt_ui_role role = selected ? QT_ROLE_SELECTION : QT_ROLE_TEXT;
            if (selected)
                ui_fill_line(ui, w, y, QT_ROLE_SELECTION);
            ui_put(ui, w, y, 0, 1, role, p == v->sel ? ">" : " ");
            qt_ui_fit_id(pr->host, c[PC_HOST].w, t, sizeof t);
            ui_cell_l(ui, w, y, &c[PC_HOST], role, t);
            snprintf(t, sizeof t, "%d", pr->pid);
            ui_cell_r(ui, w, y, &c[PC_PID], role, (int)strlen(t) <= c[PC_PID].w ? t : "");
            ui_cell_l(ui, w, y, &c[PC_MODE], role, pr->mode);
            qt_ui_fmt_fit(pr->in_flight, c[PC_INFL].w, t, sizeof t);
            ui_cell_r(ui, w, y, &c[PC_INFL], role, t);
            if (pr->self)
                ui_cell_l(ui, w, y, &c[PC_NOTE], selected ? role : QT_ROLE_LABEL,
                          ui->remote ? (c[PC_NOTE].w >= 11 ? "attached to" : "attached")
                                     : (c[PC_NOTE].w >= 12 ? "this process" : "this"));
        }
    }
    char notes[6][200];
    int nn = fleet_notes(ui, notes, 6);
    if (y < h && nn)
        y++;   /* a blank line between the rows and the notes */
    for (int i = 0; i < nn && y < h; i++, y++)
        ui_put_ell(ui, w, y, 1, width - 1, i == 0 && (!fv->up || ui->fr.snap.fleet_state >= 2)
                                               ? QT_ROLE_HEADER_PAUSED : QT_ROLE_DIM, notes[i]);
}
