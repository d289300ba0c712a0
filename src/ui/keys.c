/* keys.c: the dashboard's key table (as htop's): each key maps to an action
 * that sends a command to the source (the local engine, or the process
 * `top` is attached to) and returns reaction flags (UI_REDRAW, UI_RESNAP,
 * UI_QUIT...) instead of drawing. The help overlay is generated from the
 * same table, so it cannot drift from what the keys do.
 *
 * Keys act on the focused panel's selected row: a job (JOBS), a failure
 * (FAILED), a model or provider (LIMITS), a workflow (WORKFLOWS), an event
 * (EVENTS). Modal states take the key first, in this order: a confirmation
 * (y/n), the line editor of `/` and `=`, the help, an overlay (Esc closes).
 */
#include "ui_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*ui_action)(ui_state *ui);

typedef struct {
    int key;
    const char *label;       /* for the help overlay; NULL: an alias shown elsewhere */
    const char *help;
    ui_action fn;
} ui_key_binding;

int ui_send(ui_state *ui, const qt_ctl_cmd *cmd)
{
    char msg[300];
    qt_ctl_source_exec(ui->src, cmd, msg, sizeof msg);
    ui_status(ui, "%s", msg);
    return UI_RESNAP | UI_REDRAW;
}

static int move_sel(ui_state *ui, int delta)
{
    ui_list l = ui_focus_list(ui);
    ui_view *v = &ui->v[l];
    int s = v->sel + delta;
    if (s >= v->n)
        s = v->n - 1;
    if (s < 0)
        s = 0;
    v->sel = s;
    ui_view_remember(ui, l);
    return UI_REDRAW;
}

static int page(const ui_state *ui)
{
    ui_list l = ui_focus_list(ui);
    int h = ui->lay.r[ui_list_panel(l)].h - ui_list_header_rows(l);
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

static int act_failed(ui_state *ui)
{
    ui->jobs_mode = ui->jobs_mode == JM_FAILED ? JM_JOBS : JM_FAILED;
    ui->focus = FOCUS_JOBS;
    return UI_REDRAW;
}

/* P: the processes sharing the quota (backend.kind "redis"). */
static int act_fleet(ui_state *ui)
{
    if (ui->jobs_mode != JM_FLEET && !ui->fr.has_fleet) {
        ui_status(ui, "no fleet: this process shares its limits with nobody (backend.kind \"local\"; "
                      "\"redis\" shares them)");
        return UI_REDRAW;
    }
    ui->jobs_mode = ui->jobs_mode == JM_FLEET ? JM_JOBS : JM_FLEET;
    ui->focus = FOCUS_JOBS;
    return UI_REDRAW;
}

static int act_pause(ui_state *ui)
{
    qt_ctl_cmd c = { .op = QT_CTL_PAUSE, .flag = !ui->fr.snap.paused };
    return ui_send(ui, &c);
}

static const qt_job_view *selected_job(ui_state *ui)
{
    if (ui->focus != FOCUS_JOBS || ui->jobs_mode != JM_JOBS) {
        ui_status(ui, "select a job first (Tab to JOBS)");
        return NULL;
    }
    int i = ui_view_selected(ui, L_JOBS);
    if (i < 0) {
        ui_status(ui, "no job selected");
        return NULL;
    }
    return &ui->fr.jobs[i];
}

static const qt_engine_wf *selected_wf(ui_state *ui)
{
    int i = ui_view_selected(ui, L_WORKFLOWS);
    if (ui->focus != FOCUS_WORKFLOWS || i < 0) {
        ui_status(ui, "select a workflow first (Tab to WORKFLOWS)");
        return NULL;
    }
    return &ui->fr.snap.workflows[i];
}

/* The priority every job of a workflow has now, if they agree, else 0. */
static int wf_priority(const ui_state *ui, const char *wf)
{
    int p = 0;
    for (size_t i = 0; i < ui->fr.n_jobs; i++)
        if (!strcmp(ui->fr.jobs[i].workflow, wf)) {
            if (p && p != ui->fr.jobs[i].priority)
                return 0;
            p = ui->fr.jobs[i].priority;
        }
    return p;
}

static int reprio(ui_state *ui, int delta)
{
    if (ui->focus == FOCUS_WORKFLOWS) {
        const qt_engine_wf *wf = selected_wf(ui);
        if (!wf)
            return UI_REDRAW;
        int p = wf_priority(ui, wf->name);
        if (!p) {
            ui_status(ui, "workflow %s: its jobs differ in priority; use = to set one for all", wf->name);
            return UI_REDRAW;
        }
        qt_ctl_cmd c = { .op = QT_CTL_WF_PRIO, .value = p + delta };
        snprintf(c.name, sizeof c.name, "%s", wf->name);
        return ui_send(ui, &c);
    }
    const qt_job_view *j = selected_job(ui);
    if (!j)
        return UI_REDRAW;
    int np = j->priority + delta;
    if (np < QT_QUEUE_PRIO_MIN || np > QT_QUEUE_PRIO_MAX) {
        ui_status(ui, "job %s is already at priority %d", j->id, j->priority);
        return UI_REDRAW;
    }
    qt_ctl_cmd c = { .op = QT_CTL_PRIO, .value = np };
    snprintf(c.name, sizeof c.name, "%s", j->id);
    snprintf(ui->v[L_JOBS].key, sizeof ui->v[L_JOBS].key, "%s", j->id);   /* the cursor follows it */
    return ui_send(ui, &c);
}

static int act_raise(ui_state *ui) { return reprio(ui, -1); }
static int act_lower(ui_state *ui) { return reprio(ui, +1); }

static int act_cancel(ui_state *ui)
{
    if (ui->focus == FOCUS_WORKFLOWS) {
        const qt_engine_wf *wf = selected_wf(ui);
        if (!wf)
            return UI_REDRAW;
        snprintf(ui->confirm_id, sizeof ui->confirm_id, "%s", wf->name);
        ui->confirm = CONFIRM_WF_CANCEL;
        return UI_REDRAW;
    }
    const qt_job_view *j = selected_job(ui);
    if (!j)
        return UI_REDRAW;
    snprintf(ui->confirm_id, sizeof ui->confirm_id, "%s", j->id);
    ui->confirm = CONFIRM_CANCEL;
    return UI_REDRAW;
}

static int act_pause_workflow(ui_state *ui)
{
    const char *name = NULL;
    if (ui->focus == FOCUS_WORKFLOWS) {
        int i = ui_view_selected(ui, L_WORKFLOWS);
        if (i >= 0)
            name = ui->fr.snap.workflows[i].name;
    } else if (ui->focus == FOCUS_JOBS && ui->jobs_mode == JM_JOBS) {
        int i = ui_view_selected(ui, L_JOBS);
        if (i >= 0)
            name = ui->fr.jobs[i].workflow;
    }
    if (!name) {
        ui_status(ui, "select a workflow first (Tab to WORKFLOWS)");
        return UI_REDRAW;
    }
    int paused = 0;
    for (size_t i = 0; i < ui->fr.snap.n_workflows; i++)
        if (!strcmp(ui->fr.snap.workflows[i].name, name))
            paused = ui->fr.snap.workflows[i].paused;
    qt_ctl_cmd c = { .op = QT_CTL_PAUSE_WF, .flag = !paused };
    snprintf(c.name, sizeof c.name, "%s", name);
    return ui_send(ui, &c);
}

static const qt_engine_row *selected_row(ui_state *ui)
{
    int i = ui_view_selected(ui, L_LIMITS);
    if (ui->focus != FOCUS_LIMITS || i < 0) {
        ui_status(ui, "select a model or provider first (Tab to LIMITS)");
        return NULL;
    }
    return &ui->fr.snap.rows[i];
}

static int scale(ui_state *ui, char which, double factor)
{
    const qt_engine_row *r = selected_row(ui);
    if (!r)
        return UI_REDRAW;
    double cur = which == 't' ? r->tpm : r->rpm;
    if (factor > 0 && cur <= 0) {
        ui_status(ui, "%s has no %s limit to scale", r->name, which == 't' ? "TPM" : "RPM");
        return UI_REDRAW;
    }
    qt_ctl_cmd c = { .op = QT_CTL_SCALE, .flag = r->is_provider, .which = which, .value = factor };
    snprintf(c.name, sizeof c.name, "%s", r->name);
    return ui_send(ui, &c);
}

static int act_rpm_down(ui_state *ui) { return scale(ui, 'r', 0.9); }
static int act_rpm_up(ui_state *ui) { return scale(ui, 'r', 1.1); }
static int act_tpm_down(ui_state *ui) { return scale(ui, 't', 0.9); }
static int act_tpm_up(ui_state *ui) { return scale(ui, 't', 1.1); }
static int act_restore(ui_state *ui) { return scale(ui, 'r', 0); }

/* = : type a number for the selected row (a limit, a priority). */
static int act_set(ui_state *ui)
{
    ui->pbuf[0] = '\0';
    if (ui->focus == FOCUS_LIMITS) {
        const qt_engine_row *r = selected_row(ui);
        if (!r)
            return UI_REDRAW;
        snprintf(ui->ptarget, sizeof ui->ptarget, "%s", r->name);
        ui->ptarget_prov = r->is_provider;
        ui->prompt = PROMPT_LIMIT;
    } else if (ui->focus == FOCUS_WORKFLOWS) {
        const qt_engine_wf *wf = selected_wf(ui);
        if (!wf)
            return UI_REDRAW;
        snprintf(ui->ptarget, sizeof ui->ptarget, "%s", wf->name);
        ui->prompt = PROMPT_WF_PRIO;
    } else {
        const qt_job_view *j = selected_job(ui);
        if (!j)
            return UI_REDRAW;
        snprintf(ui->ptarget, sizeof ui->ptarget, "%s", j->id);
        ui->prompt = PROMPT_PRIO;
    }
    return UI_REDRAW;
}

static int act_filter(ui_state *ui)
{
    ui->prompt = PROMPT_FILTER;
    snprintf(ui->pbuf, sizeof ui->pbuf, "%s", ui->v[ui_focus_list(ui)].filter);
    return UI_REDRAW;
}

/* f: JOBS cycles the state filter, EVENTS the event type. */
static int act_kind_filter(ui_state *ui)
{
    if (ui->focus == FOCUS_EVENTS) {
        ui->ev_type = ui->ev_type + 1 >= QT_EV__COUNT ? -1 : ui->ev_type + 1;
        ui_status(ui, "events: %s", ui->ev_type < 0 ? "every type" : qt_event_type_name((qt_event_type)ui->ev_type));
    } else if (ui->focus == FOCUS_JOBS && ui->jobs_mode == JM_JOBS) {
        ui->state_filter = (ui->state_filter + 1) % 4;
        ui_status(ui, "jobs: %s", ui_state_filter_names[ui->state_filter]);
    } else {
        ui_status(ui, "f filters JOBS by state and EVENTS by type");
        return UI_REDRAW;
    }
    ui_views_build(ui);
    return UI_REDRAW;
}

static int sort_step(ui_state *ui, int step)
{
    ui_list l = ui_focus_list(ui);
    const char *const *names;
    int n = ui_sort_columns(l, &names);
    ui_view *v = &ui->v[l];
    int s = v->sort + step;   /* -1 (natural order) .. n-1, wrapping */
    if (s >= n)
        s = -1;
    if (s < -1)
        s = n - 1;
    v->sort = s;
    if (s >= 0)   /* numbers and times largest first, names A first */
        v->desc = strcmp(names[s], "name") && strcmp(names[s], "id") && strcmp(names[s], "workflow")
                  && strcmp(names[s], "model") && strcmp(names[s], "state") && strcmp(names[s], "status")
                  && strcmp(names[s], "circuit") && strcmp(names[s], "type") && strcmp(names[s], "prio")
                  && strcmp(names[s], "host") && strcmp(names[s], "mode") && strcmp(names[s], "pid");
    ui_status(ui, "sorted by %s", s < 0 ? "the natural order" : names[s]);
    ui_views_build(ui);
    return UI_REDRAW;
}

static int act_sort_next(ui_state *ui) { return sort_step(ui, 1); }
static int act_sort_prev(ui_state *ui) { return sort_step(ui, -1); }

static int act_sort_invert(ui_state *ui)
{
    ui_view *v = &ui->v[ui_focus_list(ui)];
    v->desc = !v->desc;
    ui_views_build(ui);
    return UI_REDRAW;
}

static int act_enter(ui_state *ui)
{
    ui_list l = ui_focus_list(ui);
    int i = ui_view_selected(ui, l);
    if (i < 0 || l == L_LIMITS || l == L_WORKFLOWS || l == L_FLEET) {
        ui_status(ui, "Enter opens a job (JOBS), a failure (FAILED) or an event (EVENTS)");
        return UI_REDRAW;
    }
    ui->ovl_top = 0;
    if (l == L_JOBS) {
        ui->ovl = OVL_DETAIL;
        ui->det_ok = ui->det_done = 0;
        snprintf(ui->ovl_id, sizeof ui->ovl_id, "%s", ui->fr.jobs[i].id);
        ui_detail_refresh(ui);
    } else if (l == L_FAILED) {
        ui->ovl = OVL_FAILED;
        snprintf(ui->ovl_id, sizeof ui->ovl_id, "%s", ui->fr.failed[i].id);
    } else {
        ui->ovl = OVL_EVENT;
        snprintf(ui->ovl_id, sizeof ui->ovl_id, "%llu", (unsigned long long)ui->fr.events[i].seq);
    }
    return UI_REDRAW;
}

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
    return !ui->fr.finished && (ui->fr.snap.jobs > ui->fr.snap.done || ui->fr.snap.queued > 0);
}

static int act_quit(ui_state *ui)
{
    if (!ui->remote && ui_pending_work(ui)) {
        ui->confirm = CONFIRM_QUIT;
        return UI_REDRAW;
    }
    ui->exit = QT_UI_EXIT_QUIT;   /* top: detach; the process goes on */
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
    { 'q', "q", "quit (asks first when jobs are pending; they get `cancelled` results). In `top`: "
                "detach, the process goes on", act_quit },
    { 'p', "p", "pause / resume all dispatch (in-flight requests finish)", act_pause },
    { '\t', "Tab", "focus the next panel (LIMITS, JOBS, WORKFLOWS, EVENTS)", act_focus_next },
    { KEY_BTAB, "Shift-Tab", "focus the previous panel", act_focus_prev },
    { 'F', "F", "JOBS <-> FAILED: the jobs that ended failed, rejected, invalid or cancelled, "
                "with their errors", act_failed },
    { 'P', "P", "JOBS <-> FLEET (backend.kind \"redis\"): every process sharing the quota (host, pid, "
                "run or serve, requests in flight), Redis up or down, today's fleet spend and pauses; "
                "LIMITS and the header then count the whole fleet", act_fleet },
    { KEY_UP, "Up / k", "move the selection up", act_up },
    { 'k', NULL, NULL, act_up },
    { KEY_DOWN, "Down / j", "move the selection down", act_down },
    { 'j', NULL, NULL, act_down },
    { KEY_PPAGE, "PgUp / PgDn", "move the selection a page (EVENTS: scroll the log)", act_pgup },
    { KEY_NPAGE, NULL, NULL, act_pgdn },
    { KEY_HOME, "Home / End", "first / last row", act_home },
    { KEY_END, NULL, NULL, act_end },
    { 'g', "g / G", "first / last row (as Home / End)", act_home },
    { 'G', NULL, NULL, act_end },
    { '\n', "Enter", "JOBS: the job's detail (chain, tokens, attempts, waits, cost); FAILED: its "
                     "error; EVENTS: the full text. Esc goes back", act_enter },
    { KEY_ENTER, NULL, NULL, act_enter },
    { '/', "/", "filter the focused list: words match any column, key:text one column "
                "(state:wait wf:nightly model:gpt-4o status:rejected type:retry)", act_filter },
    { 'f', "f", "JOBS: by state (all, queued, waiting, on the wire); EVENTS: by type", act_kind_filter },
    { 's', "s / < / >", "sort the focused list by its next / previous column (again: natural order)",
      act_sort_next },
    { '>', NULL, NULL, act_sort_next },
    { '<', NULL, NULL, act_sort_prev },
    { 'I', "I", "invert the sort order", act_sort_invert },
    { '+', "+ / -", "JOBS: raise / lower the job's priority; WORKFLOWS: every job of it", act_raise },
    { '-', NULL, NULL, act_lower },
    { '=', "=", "type a number: LIMITS: the RPM limit (t40000: the TPM limit); JOBS: the job's "
                "priority; WORKFLOWS: the priority of all its jobs", act_set },
    { 'x', "x / Delete", "JOBS: cancel the job in any state; WORKFLOWS: cancel all its queued jobs "
                         "(asks first)", act_cancel },
    { KEY_DC, NULL, NULL, act_cancel },
    { ' ', "Space", "WORKFLOWS (or JOBS): pause / resume the selected workflow", act_pause_workflow },
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
    { 0, "mouse", "a click selects a row (and focuses its panel), the wheel scrolls", NULL },
};

/* What the screen's own marks mean (shown under the keys). */
static const char *const notation[][2] = {
    { "3^2", "JOBS prio: configured priority 3, aged to 2 by waiting (queue.aging_ms)" },
    { "*", "LIMITS: a limit changed at run time (r restores the configured one)" },
    { "\u00bb / >", "LIMITS: a provider row (the models above it route through providers)" },
    { "=", "a paused workflow (its jobs stay queued)" },
    { "1.2k 32k", "counts abbreviated: k = thousand, M = million, G = billion; 46% = the share of a "
                  "limit when the pair does not fit" },
    { "job~0123", "the middle of a long id or name left out (its end tells rows apart)" },
    { "\u2026", "a long text cut: Enter shows all of it" },
    { "age v", "the column the list is sorted by (v largest first, ^ smallest first)" },
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
        ui_status(ui, "%s", c == CONFIRM_QUIT ? "still running" : "not cancelled");
        return UI_REDRAW;
    }
    if (c == CONFIRM_QUIT) {
        ui->exit = QT_UI_EXIT_QUIT;
        return UI_QUIT;
    }
    qt_ctl_cmd cmd = { .op = c == CONFIRM_WF_CANCEL ? QT_CTL_WF_CANCEL : QT_CTL_CANCEL };
    snprintf(cmd.name, sizeof cmd.name, "%s", ui->confirm_id);
    return ui_send(ui, &cmd);
}

/* Applies the line editor's text (Enter). */
static int prompt_apply(ui_state *ui)
{
    ui_prompt p = ui->prompt;
    ui->prompt = PROMPT_NONE;
    if (p == PROMPT_FILTER)
        return UI_REDRAW;   /* already applied while typing */
    const char *s = ui->pbuf;
    char which = 'r';
    while (*s == ' ')
        s++;
    if (p == PROMPT_LIMIT && (*s == 't' || *s == 'T' || *s == 'r' || *s == 'R')) {
        which = (char)(*s == 'T' ? 't' : *s == 'R' ? 'r' : *s);
        s++;
    }
    char *end;
    double v = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (end == s || *end) {
        ui_status(ui, "not a number: %s", ui->pbuf);
        return UI_REDRAW;
    }
    qt_ctl_cmd c = { .op = p == PROMPT_LIMIT ? QT_CTL_SET_LIMIT : p == PROMPT_PRIO ? QT_CTL_PRIO : QT_CTL_WF_PRIO,
                     .flag = ui->ptarget_prov, .which = which, .value = v };
    snprintf(c.name, sizeof c.name, "%s", ui->ptarget);
    return ui_send(ui, &c);
}

/* The line editor of / and =. */
static int prompt_key(ui_state *ui, int ch)
{
    size_t n = strlen(ui->pbuf);
    if (ch == 27) {
        if (ui->prompt == PROMPT_FILTER)
            ui->v[ui_focus_list(ui)].filter[0] = '\0';
        ui->prompt = PROMPT_NONE;
    } else if (ch == '\n' || ch == KEY_ENTER) {
        return prompt_apply(ui);
    } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
        if (n)
            ui->pbuf[n - 1] = '\0';
    } else if (ch >= 32 && ch < 127 && n + 1 < sizeof ui->pbuf) {
        ui->pbuf[n] = (char)ch;
        ui->pbuf[n + 1] = '\0';
    } else {
        return 0;
    }
    if (ui->prompt == PROMPT_FILTER) {   /* the list follows as you type */
        ui_list l = ui_focus_list(ui);
        snprintf(ui->v[l].filter, sizeof ui->v[l].filter, "%s", ui->pbuf);
        ui_views_build(ui);
    }
    if (ch == 27 && !ui->prompt)
        ui_views_build(ui);
    return UI_REDRAW;
}

static int overlay_key(ui_state *ui, int ch)
{
    int step = ch == 'j' || ch == KEY_DOWN ? 1 : ch == 'k' || ch == KEY_UP ? -1
               : ch == KEY_NPAGE || ch == ' ' ? 10 : ch == KEY_PPAGE ? -10 : 0;
    if (step) {
        ui->ovl_top += step;   /* clamped when drawn */
        return UI_REDRAW;
    }
    if (ch == 27 || ch == 'q' || ch == '\n' || ch == KEY_ENTER || ch == KEY_BACKSPACE) {
        ui->ovl = OVL_NONE;
        return UI_REDRAW;
    }
    if (ch == 'x' && ui->ovl == OVL_DETAIL && ui->det_ok && !ui->det_done) {   /* cancel from the detail */
        snprintf(ui->confirm_id, sizeof ui->confirm_id, "%s", ui->ovl_id);
        ui->confirm = CONFIRM_CANCEL;
        return UI_REDRAW;
    }
    return 0;
}

int ui_key(ui_state *ui, int ch)
{
    if (ui->confirm)
        return answer(ui, ch);
    if (ui->prompt)
        return prompt_key(ui, ch);
    if (ui->help) {
        int step = ch == 'j' || ch == KEY_DOWN ? 1 : ch == 'k' || ch == KEY_UP ? -1
                   : ch == KEY_NPAGE ? 10 : ch == KEY_PPAGE ? -10 : 0;
        if (step)
            ui->help_top += step;   /* clamped when drawn */
        else
            ui->help = 0;
        return UI_REDRAW;
    }
    if (ui->ovl)
        return overlay_key(ui, ch);
    if (ch == 27) {   /* Esc: clears the message line */
        ui->status[0] = '\0';
        return UI_REDRAW;
    }
    for (size_t i = 0; i < QT_ARRAY_LEN(bindings); i++)
        if (bindings[i].key == ch && bindings[i].fn)
            return bindings[i].fn(ui);
    return 0;
}
