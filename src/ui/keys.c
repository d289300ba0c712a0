/* keys.c: the dashboard's key table (as htop's): each key maps to an action
 * that calls engine controls and returns reaction flags (UI_REDRAW,
 * UI_RESNAP, UI_QUIT...) instead of drawing. The help overlay is generated
 * from the same table, so it cannot drift from what the keys do.
 *
 * Selections live in ui->sel[] per focusable panel; the queue's cursor also
 * remembers the selected job's id so it follows the job when the queue
 * reorders (after + / -) and a refresh does not move it to another job.
 * Confirmations (cancel, quit with work pending) are modal: the next key
 * answers them.
 */
#include "ui_int.h"

#include <stdio.h>
#include <string.h>

typedef int (*ui_action)(ui_state *ui);

typedef struct {
    int key;
    const char *label;       /* for the help overlay; NULL: an alias shown elsewhere */
    const char *help;
    ui_action fn;
} ui_key_binding;

static int rows_of(const ui_state *ui, int focus)
{
    switch (focus) {
    case FOCUS_LIMITS: return (int)ui->snap.n_rows;
    case FOCUS_QUEUE: return (int)ui->nqueue;
    case FOCUS_WORKFLOWS: return (int)ui->snap.n_workflows;
    }
    return 0;
}

static void remember_job(ui_state *ui)
{
    int i = ui->sel[FOCUS_QUEUE];
    if (i >= 0 && i < (int)ui->nqueue)
        snprintf(ui->sel_job, sizeof ui->sel_job, "%s", ui->queue[i].id);
    else
        ui->sel_job[0] = '\0';
}

static int move_sel(ui_state *ui, int delta)
{
    int n = rows_of(ui, ui->focus);
    int s = ui->sel[ui->focus] + delta;
    if (s >= n)
        s = n - 1;
    if (s < 0)
        s = 0;
    ui->sel[ui->focus] = s;
    if (ui->focus == FOCUS_QUEUE)
        remember_job(ui);
    return UI_REDRAW;
}

static int page(const ui_state *ui)
{
    qt_ui_panel p = ui->focus == FOCUS_LIMITS ? QT_PANEL_LIMITS
                    : ui->focus == FOCUS_QUEUE ? QT_PANEL_QUEUE : QT_PANEL_WORKFLOWS;
    int h = ui->lay.r[p].h - 2;
    return h > 1 ? h : 1;
}

static int act_up(ui_state *ui) { return move_sel(ui, -1); }
static int act_down(ui_state *ui) { return move_sel(ui, 1); }
static int act_pgup(ui_state *ui) { return move_sel(ui, -page(ui)); }
static int act_pgdn(ui_state *ui) { return move_sel(ui, page(ui)); }
static int act_home(ui_state *ui) { return move_sel(ui, -1000000); }
static int act_end(ui_state *ui) { return move_sel(ui, 1000000); }

static int act_focus_next(ui_state *ui)
{
    ui->focus = (ui->focus + 1) % FOCUS__COUNT;
    return UI_REDRAW;
}

static int act_focus_prev(ui_state *ui)
{
    ui->focus = (ui->focus + FOCUS__COUNT - 1) % FOCUS__COUNT;
    return UI_REDRAW;
}

static int act_pause(ui_state *ui)
{
    int p = !qt_engine_paused(ui->e);
    qt_engine_pause(ui->e, p);
    ui_status(ui, "%s", p ? "dispatch paused: in-flight requests finish, nothing new is sent"
                          : "dispatch resumed");
    return UI_RESNAP | UI_REDRAW;
}

static const qt_queue_view *selected_job(ui_state *ui)
{
    if (ui->focus != FOCUS_QUEUE) {
        ui_status(ui, "select a queued job first (Tab to QUEUE)");
        return NULL;
    }
    int i = ui->sel[FOCUS_QUEUE];
    if (i < 0 || i >= (int)ui->nqueue) {
        ui_status(ui, "the queue is empty");
        return NULL;
    }
    return &ui->queue[i];
}

static int reprio(ui_state *ui, int delta)
{
    const qt_queue_view *q = selected_job(ui);
    if (!q)
        return UI_REDRAW;
    int np = q->priority + delta;
    if (np < QT_QUEUE_PRIO_MIN || np > QT_QUEUE_PRIO_MAX) {
        ui_status(ui, "job %s is already at priority %d", q->id, q->priority);
        return UI_REDRAW;
    }
    char id[QT_QUEUE_ID_LEN];
    snprintf(id, sizeof id, "%s", q->id);
    qt_err r = qt_engine_reprioritize(ui->e, id, np);
    if (r == QT_OK) {
        snprintf(ui->sel_job, sizeof ui->sel_job, "%s", id);   /* the cursor follows it */
        ui_status(ui, "job %s: priority %d", id, np);
    } else {
        ui_status(ui, "job %s: %s (already dispatched?)", id, qt_strerror(r));
    }
    return UI_RESNAP | UI_REDRAW;
}

static int act_raise(ui_state *ui) { return reprio(ui, -1); }
static int act_lower(ui_state *ui) { return reprio(ui, +1); }

static int act_cancel(ui_state *ui)
{
    const qt_queue_view *q = selected_job(ui);
    if (!q)
        return UI_REDRAW;
    snprintf(ui->confirm_id, sizeof ui->confirm_id, "%s", q->id);
    ui->confirm = CONFIRM_CANCEL;
    return UI_REDRAW;
}

static int act_pause_workflow(ui_state *ui)
{
    const char *name = NULL;
    int paused = 0;
    if (ui->focus == FOCUS_WORKFLOWS) {
        int i = ui->sel[FOCUS_WORKFLOWS];
        if (i >= 0 && i < (int)ui->snap.n_workflows) {
            name = ui->snap.workflows[i].name;
            paused = ui->snap.workflows[i].paused;
        }
    } else if (ui->focus == FOCUS_QUEUE) {
        int i = ui->sel[FOCUS_QUEUE];
        if (i >= 0 && i < (int)ui->nqueue) {
            name = ui->queue[i].workflow;
            paused = ui->queue[i].paused;
        }
    }
    if (!name) {
        ui_status(ui, "select a workflow first (Tab to WORKFLOWS)");
        return UI_REDRAW;
    }
    char n[64];
    snprintf(n, sizeof n, "%s", name);
    qt_err r = qt_engine_pause_workflow(ui->e, n, !paused);
    if (r == QT_OK)
        ui_status(ui, "workflow %s %s", n, paused ? "resumed" : "paused");
    else
        ui_status(ui, "workflow %s: %s", n, qt_strerror(r));
    return UI_RESNAP | UI_REDRAW;
}

static int scale(ui_state *ui, char which, double factor)
{
    if (ui->focus != FOCUS_LIMITS) {
        ui_status(ui, "select a model or provider first (Tab to LIMITS)");
        return UI_REDRAW;
    }
    int i = ui->sel[FOCUS_LIMITS];
    if (i < 0 || i >= (int)ui->snap.n_rows)
        return UI_REDRAW;
    const qt_engine_row *r = &ui->snap.rows[i];
    double cur = which == 't' ? r->tpm : r->rpm;
    if (factor > 0 && cur <= 0) {
        ui_status(ui, "%s has no %s limit to scale", r->name, which == 't' ? "TPM" : "RPM");
        return UI_REDRAW;
    }
    char name[64];
    snprintf(name, sizeof name, "%s", r->name);
    qt_err e = qt_engine_scale_limit(ui->e, name, r->is_provider, which, factor);
    if (e != QT_OK)
        ui_status(ui, "%s: %s", name, qt_strerror(e));
    else if (factor <= 0)
        ui_status(ui, "%s: configured limits restored", name);
    else
        ui_status(ui, "%s %s limit %s 10%%", name, which == 't' ? "TPM" : "RPM",
                  factor < 1 ? "lowered" : "raised");
    return UI_RESNAP | UI_REDRAW;
}

static int act_rpm_down(ui_state *ui) { return scale(ui, 'r', 0.9); }
static int act_rpm_up(ui_state *ui) { return scale(ui, 'r', 1.1); }
static int act_tpm_down(ui_state *ui) { return scale(ui, 't', 0.9); }
static int act_tpm_up(ui_state *ui) { return scale(ui, 't', 1.1); }
static int act_restore(ui_state *ui) { return scale(ui, 'r', 0); }

static int act_theme(ui_state *ui)
{
    ui->theme_idx = (ui->theme_idx + 1) % QT_THEME_CYCLE_LEN;
    char why[700];
    if (ui_theme_select(ui, qt_theme_cycle[ui->theme_idx], why, sizeof why))
        ui_status(ui, "%s", why);
    else
        ui_status(ui, "theme %s", ui->theme.name);
    return UI_RETHEME | UI_REDRAW;
}

int ui_pending_work(const ui_state *ui)
{
    return !ui->finished && (ui->snap.jobs > ui->snap.done || ui->snap.queued > 0);
}

static int act_quit(ui_state *ui)
{
    if (ui_pending_work(ui)) {
        ui->confirm = CONFIRM_QUIT;
        return UI_REDRAW;
    }
    ui->exit = QT_UI_EXIT_QUIT;
    return UI_QUIT;
}

static int act_help(ui_state *ui)
{
    ui->help = !ui->help;
    ui->help_top = 0;
    return UI_REDRAW;
}

static int act_redraw(ui_state *ui)
{
    (void)ui;
    clearok(curscr, TRUE);
    return UI_REDRAW;
}

static const ui_key_binding bindings[] = {
    { 'q', "q", "quit (asks first when jobs are pending; they get `cancelled` results)", act_quit },
    { 'p', "p", "pause / resume all dispatch (in-flight requests finish)", act_pause },
    { '\t', "Tab", "focus the next panel (LIMITS, QUEUE, WORKFLOWS)", act_focus_next },
    { KEY_BTAB, "Shift-Tab", "focus the previous panel", act_focus_prev },
    { KEY_UP, "Up / k", "move the selection up", act_up },
    { 'k', NULL, NULL, act_up },
    { KEY_DOWN, "Down / j", "move the selection down", act_down },
    { 'j', NULL, NULL, act_down },
    { KEY_PPAGE, "PgUp / PgDn", "move the selection a page", act_pgup },
    { KEY_NPAGE, NULL, NULL, act_pgdn },
    { KEY_HOME, "Home / End", "first / last row", act_home },
    { KEY_END, NULL, NULL, act_end },
    { 'g', "g / G", "first / last row (as Home / End)", act_home },
    { 'G', NULL, NULL, act_end },
    { '+', "+ / -", "QUEUE: raise / lower the selected job's priority", act_raise },
    { '=', NULL, NULL, act_raise },
    { '-', NULL, NULL, act_lower },
    { 'x', "x / Delete", "QUEUE: cancel the selected job (asks first)", act_cancel },
    { KEY_DC, NULL, NULL, act_cancel },
    { ' ', "Space", "WORKFLOWS (or QUEUE): pause / resume the selected workflow", act_pause_workflow },
    { '[', "[ / ]", "LIMITS: lower / raise the selected row's RPM limit by 10%", act_rpm_down },
    { ']', NULL, NULL, act_rpm_up },
    { '{', "{ / }", "LIMITS: lower / raise its TPM limit by 10%", act_tpm_down },
    { '}', NULL, NULL, act_tpm_up },
    { 'r', "r", "LIMITS: restore the configured limits", act_restore },
    { 't', "t", "next theme (default, dark, light, mono)", act_theme },
    { '?', "? / h / F1", "this help", act_help },
    { 'h', NULL, NULL, act_help },
    { KEY_F(1), NULL, NULL, act_help },
    { 12, "Ctrl-L", "redraw the screen", act_redraw },
};

/* What the screen's own marks mean (shown under the keys). */
static const char *const notation[][2] = {
    { "3^2", "JOBS prio: configured priority 3, aged to 2 by waiting (queue.aging_ms)" },
    { "*", "LIMITS: a limit changed at run time (r restores the configured one)" },
    { "\u00bb / >", "LIMITS: a provider row (the models above it route through providers)" },
    { "=", "a paused workflow (its jobs stay queued)" },
    { "1.2k 32k", "counts abbreviated: k = thousand, M = million" },
};

/* Appends the lines of text wrapped to width columns to lines[]. */
static int wrap_into(const char *text, int width, char lines[][160], int max, int n)
{
    size_t len = strlen(text), pos = 0;
    if (width < 10)
        width = 10;
    while (pos < len && n < max) {
        size_t take = len - pos;
        if (take > (size_t)width) {
            take = (size_t)width;
            while (take > 0 && text[pos + take] != ' ')
                take--;
            if (take == 0)
                take = (size_t)width;
        }
        snprintf(lines[n++], 160, "%.*s", (int)take, text + pos);
        pos += take;
        while (text[pos] == ' ')
            pos++;
    }
    return n;
}

void ui_draw_help(ui_state *ui)
{
    enum { MAXL = 128 };
    static char left[MAXL][40], right[MAXL][160];
    int wd = ui->cols < 96 ? ui->cols : 96;
    int textw = wd - 4 - 14;   /* label column 13 + gap */
    int n = 0;
    for (size_t i = 0; i < QT_ARRAY_LEN(bindings) && n < MAXL; i++) {
        if (!bindings[i].label)
            continue;
        int first = n;
        n = wrap_into(bindings[i].help, textw, right, MAXL, n);
        for (int k = first; k < n; k++)
            snprintf(left[k], sizeof left[k], "%s", k == first ? bindings[i].label : "");
    }
    if (n < MAXL) {
        left[n][0] = right[n][0] = '\0';
        n++;
    }
    for (size_t i = 0; i < QT_ARRAY_LEN(notation) && n < MAXL; i++) {
        int first = n;
        n = wrap_into(notation[i][1], textw, right, MAXL, n);
        for (int k = first; k < n; k++)
            snprintf(left[k], sizeof left[k], "%s", k == first ? notation[i][0] : "");
    }
    int h = n + 4;
    if (h > ui->rows)
        h = ui->rows;
    int body = h - 4;   /* rows for lines; the rest: borders and the hint */
    if (body < 1)
        body = 1;
    if (ui->help_top > n - body)
        ui->help_top = n - body;
    if (ui->help_top < 0)
        ui->help_top = 0;
    WINDOW *w = NULL;
    ui_box(ui, h, wd, "keys", &w);
    if (!w)
        return;
    int mw = getmaxx(w);
    for (int y = 0; y < body && ui->help_top + y < n; y++) {
        int k = ui->help_top + y;
        ui_putf(ui, w, 1 + y, 2, 13, QT_ROLE_DIALOG, "%-13s", left[k]);
        ui_put(ui, w, 1 + y, 16, mw - 18, QT_ROLE_DIALOG, right[k]);
    }
    ui_put(ui, w, getmaxy(w) - 2, 2, mw - 4, QT_ROLE_DIALOG,
           n > body ? "j/k/PgDn/PgUp scroll, any other key closes this help"
                    : "any key closes this help");
    wnoutrefresh(w);
    delwin(w);
}

/* Answers a pending confirmation with key ch. */
static int answer(ui_state *ui, int ch)
{
    int yes = ch == 'y' || ch == 'Y';
    ui_confirm c = ui->confirm;
    ui->confirm = CONFIRM_NONE;
    if (!yes) {
        ui_status(ui, "%s", c == CONFIRM_CANCEL ? "not cancelled" : "still running");
        return UI_REDRAW;
    }
    if (c == CONFIRM_QUIT) {
        ui->exit = QT_UI_EXIT_QUIT;
        return UI_QUIT;
    }
    qt_err r = qt_engine_cancel(ui->e, ui->confirm_id);
    if (r == QT_OK)
        ui_status(ui, "job %s cancelled", ui->confirm_id);
    else
        ui_status(ui, "job %s: %s (already finished?)", ui->confirm_id, qt_strerror(r));
    return UI_RESNAP | UI_REDRAW;
}

int ui_key(ui_state *ui, int ch)
{
    if (ui->confirm)
        return answer(ui, ch);
    if (ui->help) {
        int step = ch == 'j' || ch == KEY_DOWN ? 1 : ch == 'k' || ch == KEY_UP ? -1
                   : ch == KEY_NPAGE ? 10 : ch == KEY_PPAGE ? -10 : 0;
        if (step)
            ui->help_top += step;   /* clamped when drawn */
        else
            ui->help = 0;
        return UI_REDRAW;
    }
    if (ch == 27) {   /* Esc: clears the message line */
        ui->status[0] = '\0';
        return UI_REDRAW;
    }
    for (size_t i = 0; i < QT_ARRAY_LEN(bindings); i++)
        if (bindings[i].key == ch)
            return bindings[i].fn(ui);
    return 0;
}
