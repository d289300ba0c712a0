/* panel_jobs.c: the lists of the lower half: JOBS (every job without a
 * result, with its state), FAILED (jobs that ended not ok, with their
 * errors; F switches the JOBS panel to it) and EVENTS (a log: focusable,
 * scrollable, searchable, filtered by type).
 *
 * DESIGN
 * Each draws its view (views.c: filtered, sorted indices into the frame)
 * from the view's first visible row, one row per line, columns fitted by
 * columns.c so nothing is cut into something else. The title says what
 * is shown: counts, the filter, the sort column.
 */
#include "ui_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void ui_title_extra(const ui_state *ui, ui_list l, char *out, size_t len)
{
    const ui_view *v = &ui->v[l];
    size_t off = strlen(out);
    if (v->filter[0] && off < len)
        off += (size_t)snprintf(out + off, len - off, "  /%s", v->filter);
    if (v->sort >= 0 && off < len) {
        const char *const *names;
        int n = ui_sort_columns(l, &names);
        if (v->sort < n)
            snprintf(out + off, len - off, "  sort %s %s", names[v->sort], v->desc ? "v" : "^");
    }
}

static void fmt_clock(uint64_t wall_ms, char *ts, size_t len)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    snprintf(ts, len, "--:--:--");
    if (localtime_r(&secs, &tm))
        strftime(ts, len, "%H:%M:%S", &tm);
}

/* ------------------------------------------------------------ JOBS */

/* What a job waits on or where it is: "key gpt-4o:rpm 1.2s", "openai". */
static void job_where(const qt_job_view *j, char *out, size_t len)
{
    char t[32];
    if (j->state == QT_JOB_IN_FLIGHT || j->state == QT_JOB_STREAMING) {
        snprintf(out, len, "%s%s%s", j->provider, strcmp(j->cur_model, j->model) && j->cur_model[0] ? " " : "",
                 strcmp(j->cur_model, j->model) ? j->cur_model : "");
    } else if (j->wait_on[0] && j->until_in_ms) {
        snprintf(out, len, "%s %s", j->wait_on, qt_ui_fmt_dur(j->until_in_ms, t, sizeof t));
    } else {
        snprintf(out, len, "%s", j->wait_on);
    }
}

/* The state's name, or a shorter one (at most 9 characters) for a narrow column. */
static const char *state_text(qt_job_state s, int width)
{
    static const char *const shortn[QT_JOB_STATES] = { "queued", "routed", "wait-key", "backoff", "probe",
                                                      "budget", "in-flight", "streaming", "done" };
    const char *n = qt_job_state_name(s);
    return (int)strlen(n) <= width || (unsigned)s >= QT_JOB_STATES ? n : shortn[s];
}

static qt_ui_role state_role(qt_job_state s)
{
    switch (s) {
    case QT_JOB_IN_FLIGHT:
    case QT_JOB_STREAMING: return QT_ROLE_GAUGE_OK;
    case QT_JOB_WAIT_KEY: return QT_ROLE_EVENT_RATE_LIMITED;
    case QT_JOB_WAIT_BACKOFF: return QT_ROLE_EVENT_RETRY;
    case QT_JOB_WAIT_PROBE: return QT_ROLE_EVENT_CIRCUIT;
    case QT_JOB_WAIT_BUDGET: return QT_ROLE_EVENT_BUDGET;
    default: return QT_ROLE_TEXT;
    }
}

static void jobs_row(ui_state *ui, WINDOW *w, int y, const qt_ui_col *c, const qt_job_view *j, int selected,
                     int cursor)
{
    char t[128];
    qt_ui_role role = selected ? QT_ROLE_SELECTION : QT_ROLE_TEXT;
    if (selected)
        ui_fill_line(ui, w, y, QT_ROLE_SELECTION);
    ui_put(ui, w, y, 0, 1, role, cursor ? ">" : " ");
    qt_ui_fit_id(j->id, c[QT_UI_JC_ID].w, t, sizeof t);
    ui_cell_l(ui, w, y, &c[QT_UI_JC_ID], role, t);
    ui_cell_l(ui, w, y, &c[QT_UI_JC_STATE], selected ? role : state_role(j->state),
              state_text(j->state, c[QT_UI_JC_STATE].w));
    if (j->aged_priority != j->priority)
        snprintf(t, sizeof t, "%d^%d", j->priority, j->aged_priority);
    else
        snprintf(t, sizeof t, "%d", j->priority);
    ui_cell_r(ui, w, y, &c[QT_UI_JC_PRIO], role, t);
    qt_ui_fit_id(j->workflow, c[QT_UI_JC_WORKFLOW].w, t, sizeof t);
    ui_cell_l(ui, w, y, &c[QT_UI_JC_WORKFLOW], role, t);
    qt_ui_fit_id(j->model, c[QT_UI_JC_MODEL].w, t, sizeof t);
    ui_cell_l(ui, w, y, &c[QT_UI_JC_MODEL], role, t);
    ui_cell_r(ui, w, y, &c[QT_UI_JC_AGE], role, qt_ui_fmt_dur(j->age_ms, t, sizeof t));
    ui_cell_r(ui, w, y, &c[QT_UI_JC_FOR], role, qt_ui_fmt_dur(j->since_ms, t, sizeof t));
    qt_ui_fmt_fit((double)j->est_prompt_tokens + (j->max_tokens > 0 ? j->max_tokens : 0), c[QT_UI_JC_EST].w, t,
                  sizeof t);
    ui_cell_r(ui, w, y, &c[QT_UI_JC_EST], role, t);
    const qt_ui_col *wc = &c[QT_UI_JC_WAIT];
    if (wc->w) {
        job_where(j, t, sizeof t);
        ui_put_ell(ui, w, y, wc->x, wc->w, selected ? role : QT_ROLE_DIM, t);
    }
}

void ui_draw_jobs(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w), h = getmaxy(w);
    int focused = ui->focus == FOCUS_JOBS;
    const qt_queue_counts *q = &ui->fr.qcounts;
    char extra[300];
    size_t off = (size_t)snprintf(extra, sizeof extra, "%zu without a result: %zu queued", ui->fr.jobs_total,
                                  q->total);
    if (q->total > q->ready && off < sizeof extra)
        off += (size_t)snprintf(extra + off, sizeof extra - off, " (%zu paused)", q->total - q->ready);
    if (ui->state_filter && off < sizeof extra)
        off += (size_t)snprintf(extra + off, sizeof extra - off, "  [%s]", ui_state_filter_names[ui->state_filter]);
    ui_title_extra(ui, L_JOBS, extra, sizeof extra);
    ui_title(ui, w, "JOBS", focused, extra);
    if (h < 2)
        return;
    qt_ui_col c[QT_UI_JC__COUNT];
    qt_ui_jobs_columns(width - 2, c);
    for (int i = 0; i < QT_UI_JC__COUNT; i++)
        c[i].x += 1;   /* column 0 holds the cursor mark; the last one is a gap */
    const ui_view *v = &ui->v[L_JOBS];
    ui_col_titles(ui, w, 1, c, QT_UI_JC__COUNT, QT_ROLE_LABEL,
                  1u << QT_UI_JC_ID | 1u << QT_UI_JC_STATE | 1u << QT_UI_JC_WORKFLOW | 1u << QT_UI_JC_MODEL
                      | 1u << QT_UI_JC_WAIT,
                  v->sort, v->desc);
    int rows = h - 2;
    if (v->n == 0) {
        ui_put(ui, w, 2, 1, width - 1, QT_ROLE_DIM,
               ui->fr.n_jobs ? "no job matches the filter"
               : ui->fr.finished ? "empty: every job has its result" : "empty");
        return;
    }
    ui_view *mv = &ui->v[L_JOBS];
    mv->top = qt_ui_scroll(mv->top, mv->sel, mv->n, rows);
    for (int i = 0; i < rows && mv->top + i < mv->n; i++) {
        int p = mv->top + i;
        jobs_row(ui, w, 2 + i, c, &ui->fr.jobs[mv->idx[p]], focused && p == mv->sel, p == mv->sel);
    }
}

/* ------------------------------------------------------------ FAILED */

enum { FC_TIME, FC_STATUS, FC_ID, FC_WF, FC_MODEL, FC_ATT, FC_ERR, FC__COUNT };

void ui_draw_failed(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w), h = getmaxy(w);
    int focused = ui->focus == FOCUS_JOBS;
    char extra[200];
    snprintf(extra, sizeof extra, "%llu not ok (F: back to JOBS)", (unsigned long long)ui->fr.failed_total);
    ui_title_extra(ui, L_FAILED, extra, sizeof extra);
    ui_title(ui, w, "FAILED", focused, extra);
    if (h < 2)
        return;
    qt_ui_col c[FC__COUNT] = {
        [FC_TIME] = { "time", 8, 8, 3, 0, 0, 0 },     [FC_STATUS] = { "status", 9, 9, 0, 0, 0, 0 },
        [FC_ID] = { "id", 7, 20, 0, 0, 0, 0 },        [FC_WF] = { "workflow", 6, 12, 4, 0, 0, 0 },
        [FC_MODEL] = { "model", 6, 14, 5, 0, 0, 0 },  [FC_ATT] = { "tries", 5, 5, 6, 0, 0, 0 },
        [FC_ERR] = { "error", 10, 200, 1, 1, 0, 0 },
    };
    qt_ui_fit_columns(c, FC__COUNT, width - 1);
    for (int i = 0; i < FC__COUNT; i++)
        c[i].x += 1;
    ui_view *v = &ui->v[L_FAILED];
    ui_col_titles(ui, w, 1, c, FC__COUNT, QT_ROLE_LABEL, ~(1u << FC_ATT), v->sort, v->desc);
    int rows = h - 2;
    if (v->n == 0) {
        ui_put(ui, w, 2, 1, width - 1, QT_ROLE_DIM, ui->fr.n_failed ? "no failure matches the filter"
                                                                    : "none: every finished job is ok");
        return;
    }
    v->top = qt_ui_scroll(v->top, v->sel, v->n, rows);
    for (int i = 0; i < rows && v->top + i < v->n; i++) {
        int p = v->top + i, y = 2 + i, selected = focused && p == v->sel;
        const qt_ctl_failed *f = &ui->fr.failed[v->idx[p]];
        qt_ui_role role = selected ? QT_ROLE_SELECTION : QT_ROLE_TEXT;
        char t[128];
        if (selected)
            ui_fill_line(ui, w, y, QT_ROLE_SELECTION);
        ui_put(ui, w, y, 0, 1, role, p == v->sel ? ">" : " ");
        fmt_clock(f->wall_ms, t, sizeof t);
        ui_cell_l(ui, w, y, &c[FC_TIME], selected ? role : QT_ROLE_DIM, t);
        ui_cell_l(ui, w, y, &c[FC_STATUS], selected ? role : QT_ROLE_EVENT_ERROR, f->status);
        qt_ui_fit_id(f->id, c[FC_ID].w, t, sizeof t);
        ui_cell_l(ui, w, y, &c[FC_ID], role, t);
        qt_ui_fit_id(f->workflow, c[FC_WF].w, t, sizeof t);
        ui_cell_l(ui, w, y, &c[FC_WF], role, t);
        qt_ui_fit_id(f->model, c[FC_MODEL].w, t, sizeof t);
        ui_cell_l(ui, w, y, &c[FC_MODEL], role, t);
        qt_ui_fmt_fit(f->attempts, c[FC_ATT].w, t, sizeof t);
        ui_cell_r(ui, w, y, &c[FC_ATT], role, t);
        if (c[FC_ERR].w)
            ui_put_ell(ui, w, y, c[FC_ERR].x, c[FC_ERR].w, role, f->error);
    }
}

/* ------------------------------------------------------------ EVENTS */

qt_ui_role ui_event_role(qt_event_type t)
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

void ui_draw_events(ui_state *ui, WINDOW *w)
{
    int width = getmaxx(w), h = getmaxy(w);
    int focused = ui->focus == FOCUS_EVENTS;
    ui_view *v = &ui->v[L_EVENTS];
    char extra[200];
    snprintf(extra, sizeof extra, "%d shown, newest first%s%s", v->n, ui->ev_type >= 0 ? "  [type " : "",
             ui->ev_type >= 0 ? qt_event_type_name((qt_event_type)ui->ev_type) : "");
    if (ui->ev_type >= 0)
        strncat(extra, "]", sizeof extra - strlen(extra) - 1);
    ui_title_extra(ui, L_EVENTS, extra, sizeof extra);
    ui_title(ui, w, "EVENTS", focused, extra);
    int rows = h - 1;
    if (v->n == 0) {
        ui_put(ui, w, 1, 1, width - 1, QT_ROLE_DIM, ui->fr.n_events ? "no event matches the filter" : "no events yet");
        return;
    }
    v->top = qt_ui_scroll(v->top, v->sel, v->n, rows);
    for (int i = 0; i < rows && v->top + i < v->n; i++) {
        int p = v->top + i, y = 1 + i, selected = focused && p == v->sel;
        const qt_event *ev = &ui->fr.events[v->idx[p]];
        char ts[16];
        fmt_clock(ev->wall_ms, ts, sizeof ts);
        if (selected)
            ui_fill_line(ui, w, y, QT_ROLE_SELECTION);
        qt_ui_role base = selected ? QT_ROLE_SELECTION : QT_ROLE_DIM;
        int x = ui_putf(ui, w, y, 0, width, base, "%s%s ", selected ? ">" : " ", ts);
        x += ui_putf(ui, w, y, x, width - x, selected ? base : ui_event_role(ev->type), "%-12.12s ",
                     qt_event_type_name(ev->type));
        ui_put_ell(ui, w, y, x, width - x, selected ? base : QT_ROLE_TEXT, ev->msg);
    }
}
