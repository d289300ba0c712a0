/* overlays.c: what opens over the panels: a job's detail (Enter in JOBS),
 * the full text of an event (Enter in EVENTS) or of a failure (Enter in
 * FAILED), and the yes/no confirmations.
 *
 * DESIGN
 * An overlay is a list of text lines built from the frame (or, for a job,
 * from the detail the source sent this frame), wrapped to the box width and
 * drawn from ovl_top so a tall one scrolls (j/k, PgUp/PgDn). Esc closes it.
 * The detail of a job is fetched again every frame while it is open, so
 * its state, waits and attempts move as the job does; once the job has its
 * result the box says so (and, when it did not end ok, shows the failure).
 */
#include "ui_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OVL_LINES 160

typedef struct {
    char line[OVL_LINES][200];
    int n;
} lines;

static void add(lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(lines *l, const char *fmt, ...)
{
    if (l->n >= OVL_LINES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->line[l->n++], sizeof l->line[0], fmt, ap);
    va_end(ap);
}

/* Adds text wrapped to width columns, continuation lines indented. */
static void add_wrapped(lines *l, const char *text, int width)
{
    size_t len = strlen(text), pos = 0;
    if (width < 20)
        width = 20;
    int first = 1;
    while (pos < len && l->n < OVL_LINES) {
        int w = first ? width : width - 4;
        size_t take = len - pos;
        if (take > (size_t)w) {
            take = (size_t)w;
            while (take > 0 && text[pos + take] != ' ')
                take--;
            if (take == 0)
                take = (size_t)w;
        }
        add(l, "%s%.*s", first ? "" : "    ", (int)take, text + pos);
        pos += take;
        while (text[pos] == ' ')
            pos++;
        first = 0;
    }
}

void ui_detail_refresh(ui_state *ui)
{
    if (ui->ovl != OVL_DETAIL || ui->det_done)
        return;
    qt_job_detail *d = malloc(sizeof *d);
    if (!d)
        return;
    if (qt_ctl_source_detail(ui->src, ui->ovl_id, d) == QT_OK) {
        ui->det = *d;
        ui->det_ok = 1;
    } else {
        ui->det_done = 1;   /* keep what was last seen */
    }
    free(d);
}

static const qt_ctl_failed *find_failed(const ui_state *ui, const char *id)
{
    for (size_t i = ui->fr.n_failed; i-- > 0;)
        if (!strcmp(ui->fr.failed[i].id, id))
            return &ui->fr.failed[i];
    return NULL;
}

static void failed_lines(lines *l, const qt_ctl_failed *f, int width)
{
    char ts[32] = "";
    time_t secs = (time_t)(f->wall_ms / 1000);
    struct tm tm;
    if (localtime_r(&secs, &tm))
        strftime(ts, sizeof ts, "%H:%M:%S", &tm);
    add(l, "job %s  workflow %s  status %s at %s", f->id, f->workflow, f->status, ts);
    add(l, "model asked %s  answered by %s%s%s  attempts %d  cost $%.6f", f->model,
        f->model_used[0] ? f->model_used : "-", f->provider[0] ? " on " : "", f->provider, f->attempts,
        f->cost_usd);
    add(l, "%s", "");
    add(l, "error:");
    add_wrapped(l, f->error[0] ? f->error : "(none given)", width);
}

static void detail_lines(ui_state *ui, lines *l, int width)
{
    const qt_ctl_failed *f = ui->det_done ? find_failed(ui, ui->ovl_id) : NULL;
    if (ui->det_done) {
        add(l, "job %s has its result now%s", ui->ovl_id,
            f ? ":" : " (ok, unless it shows in FAILED later)");
        if (f)
            failed_lines(l, f, width);
        if (ui->det_ok) {
            add(l, "%s", "");
            add(l, "as last seen:");
        }
    }
    if (!ui->det_ok)
        return;
    const qt_job_view *j = &ui->det.job;
    char a[32], b[32], c[32];
    add(l, "job %s  workflow %s  priority %d%s", j->id, j->workflow, j->priority,
        j->aged_priority != j->priority ? " (aged to " : "");
    if (j->aged_priority != j->priority) {
        size_t n = strlen(l->line[l->n - 1]);
        snprintf(l->line[l->n - 1] + n, sizeof l->line[0] - n, "%d)", j->aged_priority);
    }
    add(l, "state %s for %s%s%s%s%s  (age %s)", qt_job_state_name(j->state), qt_ui_fmt_dur(j->since_ms, a, sizeof a),
        j->wait_on[0] ? "  on " : "", j->wait_on, j->until_in_ms ? "  ends in " : "",
        j->until_in_ms ? qt_ui_fmt_dur(j->until_in_ms, b, sizeof b) : "", qt_ui_fmt_dur(j->age_ms, c, sizeof c));
    char chain[600] = "";
    for (int i = 0; i < ui->det.n_chain && i < 8; i++) {
        size_t n = strlen(chain);
        snprintf(chain + n, sizeof chain - n, "%s%s", i ? " -> " : "", ui->det.chain[i]);
    }
    add(l, "model %s%s%s%s%s", j->model, j->cur_model[0] && strcmp(j->cur_model, j->model) ? "  now " : "",
        j->cur_model[0] && strcmp(j->cur_model, j->model) ? j->cur_model : "", j->provider[0] ? "  on " : "",
        j->provider);
    add(l, "chain %s", chain[0] ? chain : "-");
    add(l, "tokens: estimated prompt %d, max %d%s   cost so far $%.6f", j->est_prompt_tokens, j->max_tokens,
        j->max_tokens ? "" : " (model default)", j->cost_usd);
    add(l, "%s", "");
    add(l, "attempts (%d, the last %d shown):", j->attempts, ui->det.n_attempts);
    if (!ui->det.n_attempts)
        add(l, "  none yet");
    for (int i = 0; i < ui->det.n_attempts && i < 16; i++) {
        const qt_attempt_view *t = &ui->det.attempts[i];
        char st[16];
        snprintf(st, sizeof st, t->status ? "%d" : "net", t->status);
        add(l, "  %2d %-14.14s %-12.12s %4s  %6llums  ttfb %6llums  tokens %d/%d%s%s", i + 1, t->model, t->provider,
            st, (unsigned long long)t->total_ms, (unsigned long long)t->ttfb_ms, t->prompt_tokens,
            t->completion_tokens, t->retry_after_ms ? "  retry-after " : "",
            t->retry_after_ms ? qt_ui_fmt_dur(t->retry_after_ms, a, sizeof a) : "");
        if (t->error[0]) {
            char e[200];
            snprintf(e, sizeof e, "     error: %s", t->error);
            add_wrapped(l, e, width);
        }
    }
    add(l, "%s", "");
    add(l, "waits (%d):", ui->det.n_waits);
    if (!ui->det.n_waits)
        add(l, "  none yet");
    for (int i = 0; i < ui->det.n_waits && i < 16; i++)
        add(l, "  %s", ui->det.waits[i]);
}

static void event_lines(const ui_state *ui, lines *l, int width)
{
    const qt_event *ev = NULL;
    unsigned long long seq = strtoull(ui->ovl_id, NULL, 10);
    for (size_t i = 0; i < ui->fr.n_events; i++)
        if (ui->fr.events[i].seq == seq)
            ev = &ui->fr.events[i];
    if (!ev) {
        add(l, "this event has left the newest %d", QT_CTL_MAX_EVENTS);
        return;
    }
    char ts[32] = "";
    time_t secs = (time_t)(ev->wall_ms / 1000);
    struct tm tm;
    if (localtime_r(&secs, &tm))
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    add(l, "#%llu  %s  %s", (unsigned long long)ev->seq, ts, qt_event_type_name(ev->type));
    add(l, "%s", "");
    add_wrapped(l, ev->msg, width);
    add(l, "%s", "");
    if (ev->model[0])
        add(l, "model     %s", ev->model);
    if (ev->provider[0])
        add(l, "provider  %s", ev->provider);
    if (ev->workflow[0])
        add(l, "workflow  %s", ev->workflow);
    if (ev->job_id[0])
        add(l, "job       %s", ev->job_id);
    if (ev->from[0] || ev->to[0])
        add(l, "from %s to %s", ev->from, ev->to);
    if (ev->reason[0])
        add(l, "reason    %s", ev->reason);
    if (ev->http_status)
        add(l, "status    %d", ev->http_status);
    if (ev->wait_ms)
        add(l, "wait      %llu ms", (unsigned long long)ev->wait_ms);
}

void ui_draw_overlay(ui_state *ui)
{
    static lines l;
    l.n = 0;
    int wd = ui->cols - 4 < 110 ? ui->cols - 4 : 110, textw = wd - 4;
    const char *title = "detail";
    if (ui->ovl == OVL_DETAIL) {
        title = "job";
        detail_lines(ui, &l, textw);
    } else if (ui->ovl == OVL_EVENT) {
        title = "event";
        event_lines(ui, &l, textw);
    } else {
        title = "failed job";
        const qt_ctl_failed *f = find_failed(ui, ui->ovl_id);
        if (f)
            failed_lines(&l, f, textw);
        else
            add(&l, "job %s has left the newest %d failures", ui->ovl_id, QT_CTL_MAX_FAILED);
    }
    int h = l.n + 4 < ui->rows - 2 ? l.n + 4 : ui->rows - 2, body = h - 4;
    if (body < 1)
        body = 1;
    if (ui->ovl_top > l.n - body)
        ui->ovl_top = l.n - body;
    if (ui->ovl_top < 0)
        ui->ovl_top = 0;
    WINDOW *w = NULL;
    ui_box(ui, h, wd, title, &w);
    if (!w)
        return;
    for (int y = 0; y < body && ui->ovl_top + y < l.n; y++)
        ui_put_ell(ui, w, 1 + y, 2, wd - 4, QT_ROLE_DIALOG, l.line[ui->ovl_top + y]);
    ui_put(ui, w, getmaxy(w) - 2, 2, wd - 4, QT_ROLE_DIALOG,
           l.n > body ? "Esc back   j/k PgUp/PgDn scroll" : "Esc back");
    wnoutrefresh(w);
    delwin(w);
}

void ui_draw_confirm(ui_state *ui)
{
    char q[300];
    if (ui->confirm == CONFIRM_CANCEL)
        snprintf(q, sizeof q, "Cancel job %s? Its result will say `cancelled`.", ui->confirm_id);
    else if (ui->confirm == CONFIRM_WF_CANCEL)
        snprintf(q, sizeof q, "Cancel every queued job of workflow %s? Their results will say `cancelled`.",
                 ui->confirm_id);
    else
        snprintf(q, sizeof q, "Quit? %llu jobs are not done; they get `cancelled` results.",
                 (unsigned long long)(ui->fr.snap.jobs > ui->fr.snap.done ? ui->fr.snap.jobs - ui->fr.snap.done : 0));
    int wd = (int)strlen(q) + 6;
    if (wd < 40)
        wd = 40;
    if (wd > ui->cols)
        wd = ui->cols;
    WINDOW *w = NULL;
    ui_box(ui, 5, wd, ui->confirm == CONFIRM_QUIT ? "quit" : "cancel", &w);
    if (!w)
        return;
    ui_put(ui, w, 1, 2, wd - 4, QT_ROLE_DIALOG, q);
    ui_put(ui, w, 3, 2, wd - 4, QT_ROLE_DIALOG, "y: yes    n / Esc: no");
    wnoutrefresh(w);
    delwin(w);
}
