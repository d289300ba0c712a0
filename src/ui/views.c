/* views.c: which rows of each list are shown, and in which order.
 *
 * DESIGN
 * Every list (LIMITS, JOBS, FAILED, WORKFLOWS, EVENTS, FLEET) is drawn through a
 * view: an array of indices into the frame, rebuilt after each frame by
 * filtering (the `/` text, the JOBS state filter, the EVENTS type filter)
 * and sorting (a column chosen with s, < and >; -1 keeps the natural order:
 * most urgent first for JOBS, newest first for FAILED and EVENTS, the
 * config's order for LIMITS and WORKFLOWS). The cursor is kept on the row
 * it was on by that row's identity (a job id, a model name, an event's
 * sequence number, a process's host and pid), so rows moving under it do
 * not move the selection. FLEET lists the processes sharing the quota
 * (backend.kind "redis"), by host and pid unless sorted otherwise.
 */
#include "ui_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ui_state_filter_names[4] = { "all", "queued", "waiting", "on the wire" };

static const char *const limits_cols[] = { "name", "circuit", "rpm", "tpm", "infl", "429", "err", "p95" };
static const char *const jobs_cols[] = { "id", "state", "prio", "workflow", "model", "age", "for", "est" };
static const char *const failed_cols[] = { "time", "status", "id", "workflow", "model", "tries" };
static const char *const wf_cols[] = { "name", "calls", "tokens", "spend", "budget", "queue" };
static const char *const ev_cols[] = { "time", "type" };
static const char *const fleet_cols[] = { "host", "pid", "mode", "infl" };

int ui_sort_columns(ui_list l, const char *const **names)
{
    switch (l) {
    case L_LIMITS: *names = limits_cols; return (int)QT_ARRAY_LEN(limits_cols);
    case L_JOBS: *names = jobs_cols; return (int)QT_ARRAY_LEN(jobs_cols);
    case L_FAILED: *names = failed_cols; return (int)QT_ARRAY_LEN(failed_cols);
    case L_WORKFLOWS: *names = wf_cols; return (int)QT_ARRAY_LEN(wf_cols);
    case L_FLEET: *names = fleet_cols; return (int)QT_ARRAY_LEN(fleet_cols);
    default: *names = ev_cols; return (int)QT_ARRAY_LEN(ev_cols);
    }
}

ui_list ui_focus_list(const ui_state *ui)
{
    switch (ui->focus) {
    case FOCUS_LIMITS: return L_LIMITS;
    case FOCUS_JOBS: return ui->jobs_mode == JM_FAILED ? L_FAILED : ui->jobs_mode == JM_FLEET ? L_FLEET : L_JOBS;
    case FOCUS_WORKFLOWS: return L_WORKFLOWS;
    default: return L_EVENTS;
    }
}

qt_ui_panel ui_list_panel(ui_list l)
{
    switch (l) {
    case L_LIMITS: return QT_PANEL_LIMITS;
    case L_JOBS:
    case L_FAILED:
    case L_FLEET: return QT_PANEL_JOBS;
    case L_WORKFLOWS: return QT_PANEL_WORKFLOWS;
    default: return QT_PANEL_EVENTS;
    }
}

int ui_list_header_rows(ui_list l) { return l == L_LIMITS || l == L_EVENTS ? 1 : 2; }

static size_t list_len(const ui_state *ui, ui_list l)
{
    switch (l) {
    case L_LIMITS: return ui->fr.snap.n_rows;
    case L_JOBS: return ui->fr.n_jobs;
    case L_FAILED: return ui->fr.n_failed;
    case L_WORKFLOWS: return ui->fr.snap.n_workflows;
    case L_FLEET: return ui->fr.has_fleet && ui->fr.fleet.n_procs > 0 ? (size_t)ui->fr.fleet.n_procs : 0;
    default: return ui->fr.n_events;
    }
}

/* The identity of row i of list l (what the cursor follows). */
static void row_key(const ui_state *ui, ui_list l, int i, char *out, size_t len)
{
    switch (l) {
    case L_LIMITS:
        snprintf(out, len, "%d:%s", ui->fr.snap.rows[i].is_provider, ui->fr.snap.rows[i].name);
        break;
    case L_JOBS: snprintf(out, len, "%s", ui->fr.jobs[i].id); break;
    case L_FAILED: snprintf(out, len, "%s", ui->fr.failed[i].id); break;
    case L_WORKFLOWS: snprintf(out, len, "%s", ui->fr.snap.workflows[i].name); break;
    case L_FLEET: snprintf(out, len, "%s:%d", ui->fr.fleet.procs[i].host, ui->fr.fleet.procs[i].pid); break;
    default: snprintf(out, len, "%llu", (unsigned long long)ui->fr.events[i].seq); break;
    }
}

int ui_fleet_shared(const ui_state *ui)
{
    return ui->fr.has_fleet && ui->fr.snap.fleet_state == 1 && ui->fr.fleet.up;
}

int ui_row_usage(const ui_state *ui, const qt_engine_row *r, double *requests, double *tokens)
{
    *requests = (double)r->requests_60s;
    *tokens = (double)r->tokens_60s;
    if (!ui_fleet_shared(ui))
        return 0;
    char key[QT_BACKEND_NAME];
    snprintf(key, sizeof key, "%s:%s", r->is_provider ? "provider" : "model", r->name);
    const qt_backend_view *v = &ui->fr.fleet;
    for (int i = 0; i < v->n_rates && i < QT_BACKEND_MAX_VIEW; i++)
        if (!strcmp(v->rates[i].name, key)) {
            *requests = (double)v->rates[i].requests_60s;
            *tokens = (double)v->rates[i].tokens_60s;
            return 1;
        }
    return 0;
}

static int job_state_group(qt_job_state s)
{
    if (s == QT_JOB_QUEUED)
        return 1;
    if (s == QT_JOB_IN_FLIGHT || s == QT_JOB_STREAMING)
        return 3;
    return 2;   /* routed, waiting on a key, a backoff, a probe, a budget */
}

static int row_matches(const ui_state *ui, ui_list l, int i)
{
    const char *f = ui->v[l].filter;
    switch (l) {
    case L_LIMITS: {
        const qt_engine_row *r = &ui->fr.snap.rows[i];
        const char *k[] = { "name", "circuit", "kind" };
        const char *v[] = { r->name, r->circuit, r->is_provider ? "provider" : "model" };
        return qt_ui_filter_match(f, k, v, 3);
    }
    case L_JOBS: {
        const qt_job_view *j = &ui->fr.jobs[i];
        if (ui->state_filter && job_state_group(j->state) != ui->state_filter)
            return 0;
        const char *k[] = { "id", "state", "workflow", "model", "provider", "on" };
        const char *v[] = { j->id, qt_job_state_name(j->state), j->workflow, j->model,
                            j->provider[0] ? j->provider : j->cur_model, j->wait_on };
        return qt_ui_filter_match(f, k, v, 6);
    }
    case L_FAILED: {
        const qt_ctl_failed *x = &ui->fr.failed[i];
        const char *k[] = { "id", "status", "workflow", "model", "error", "provider" };
        const char *v[] = { x->id, x->status, x->workflow, x->model, x->error, x->provider };
        return qt_ui_filter_match(f, k, v, 6);
    }
    case L_WORKFLOWS: {
        const char *k[] = { "name" };
        const char *v[] = { ui->fr.snap.workflows[i].name };
        return qt_ui_filter_match(f, k, v, 1);
    }
    case L_FLEET: {
        const qt_backend_proc *p = &ui->fr.fleet.procs[i];
        char pid[16];
        snprintf(pid, sizeof pid, "%d", p->pid);
        const char *k[] = { "host", "pid", "mode" };
        const char *v[] = { p->host, pid, p->mode };
        return qt_ui_filter_match(f, k, v, 3);
    }
    default: {
        const qt_event *e = &ui->fr.events[i];
        if (ui->ev_type >= 0 && (int)e->type != ui->ev_type)
            return 0;
        const char *k[] = { "type", "text", "model", "provider", "workflow", "job" };
        const char *v[] = { qt_event_type_name(e->type), e->msg, e->model, e->provider, e->workflow, e->job_id };
        return qt_ui_filter_match(f, k, v, 6);
    }
    }
}

#define CMP(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)

typedef struct {
    const ui_state *ui;
    ui_list l;
    int col;
} sort_ctx;

static int cmp_rows(const void *pa, const void *pb, void *arg)
{
    const sort_ctx *c = arg;
    int a = *(const int *)pa, b = *(const int *)pb, r = 0;
    const qt_ctl_frame *f = &c->ui->fr;
    switch (c->l) {
    case L_LIMITS: {
        const qt_engine_row *x = &f->snap.rows[a], *y = &f->snap.rows[b];
        double xr, xt, yr, yt;   /* what the rows show: the fleet's with the shared backend */
        ui_row_usage(c->ui, x, &xr, &xt);
        ui_row_usage(c->ui, y, &yr, &yt);
        switch (c->col) {
        case 0: r = strcmp(x->name, y->name); break;
        case 1: r = strcmp(x->circuit, y->circuit); break;
        case 2: r = CMP(xr, yr); break;
        case 3: r = CMP(xt, yt); break;
        case 4: r = CMP(x->in_flight, y->in_flight); break;
        case 5: r = CMP(x->rate_limited, y->rate_limited); break;
        case 6: r = CMP(x->errors, y->errors); break;
        default: r = CMP(x->p95_ms, y->p95_ms); break;
        }
        break;
    }
    case L_JOBS: {
        const qt_job_view *x = &f->jobs[a], *y = &f->jobs[b];
        switch (c->col) {
        case 0: r = strcmp(x->id, y->id); break;
        case 1: r = CMP(x->state, y->state); break;
        case 2: r = CMP(x->aged_priority, y->aged_priority); break;
        case 3: r = strcmp(x->workflow, y->workflow); break;
        case 4: r = strcmp(x->model, y->model); break;
        case 5: r = CMP(x->age_ms, y->age_ms); break;
        case 6: r = CMP(x->since_ms, y->since_ms); break;
        default: r = CMP(x->est_prompt_tokens + x->max_tokens, y->est_prompt_tokens + y->max_tokens); break;
        }
        break;
    }
    case L_FAILED: {
        const qt_ctl_failed *x = &f->failed[a], *y = &f->failed[b];
        switch (c->col) {
        case 0: r = CMP(x->wall_ms, y->wall_ms); break;
        case 1: r = strcmp(x->status, y->status); break;
        case 2: r = strcmp(x->id, y->id); break;
        case 3: r = strcmp(x->workflow, y->workflow); break;
        case 4: r = strcmp(x->model, y->model); break;
        default: r = CMP(x->attempts, y->attempts); break;
        }
        break;
    }
    case L_WORKFLOWS: {
        const qt_engine_wf *x = &f->snap.workflows[a], *y = &f->snap.workflows[b];
        double bx = x->limit_usd > 0 ? x->cost_usd / x->limit_usd : -1;
        double by = y->limit_usd > 0 ? y->cost_usd / y->limit_usd : -1;
        switch (c->col) {
        case 0: r = strcmp(x->name, y->name); break;
        case 1: r = CMP(x->calls, y->calls); break;
        case 2: r = CMP(x->prompt_tokens + x->completion_tokens, y->prompt_tokens + y->completion_tokens); break;
        case 3: r = CMP(x->cost_usd, y->cost_usd); break;
        case 4: r = CMP(bx, by); break;
        default: r = CMP(x->queued, y->queued); break;
        }
        break;
    }
    case L_FLEET: {
        const qt_backend_proc *x = &f->fleet.procs[a], *y = &f->fleet.procs[b];
        switch (c->col) {
        case 0: r = strcmp(x->host, y->host) ? strcmp(x->host, y->host) : CMP(x->pid, y->pid); break;
        case 1: r = CMP(x->pid, y->pid); break;
        case 2: r = strcmp(x->mode, y->mode); break;
        default: r = CMP(x->in_flight, y->in_flight); break;
        }
        break;
    }
    default: {
        const qt_event *x = &f->events[a], *y = &f->events[b];
        r = c->col == 1 ? CMP(x->type, y->type) : CMP(x->seq, y->seq);
        break;
    }
    }
    return r ? r : CMP(a, b);   /* stable: the natural order breaks ties */
}

/* Rebuilds one list's view and puts its cursor back on its row. */
static void build_one(ui_state *ui, ui_list l)
{
    ui_view *v = &ui->v[l];
    int n = (int)list_len(ui, l);
    if (n > v->cap) {
        int *g = realloc(v->idx, (size_t)n * sizeof *g);
        if (!g) {
            v->n = 0;
            return;
        }
        v->idx = g;
        v->cap = n;
    }
    int newest_first = l == L_FAILED || l == L_EVENTS;
    v->n = 0;
    for (int k = 0; k < n; k++) {
        int i = newest_first ? n - 1 - k : k;
        if (row_matches(ui, l, i))
            v->idx[v->n++] = i;
    }
    /* Redis lists the processes in no fixed order: FLEET's natural order is
     * by host, then pid, so rows do not swap from one heartbeat to the next */
    int col = l == L_FLEET && v->sort < 0 ? 0 : v->sort;
    if (col >= 0 && v->n > 1) {
        sort_ctx c = { ui, l, col };
        qsort_r(v->idx, (size_t)v->n, sizeof *v->idx, cmp_rows, &c);
        if (v->desc && v->sort >= 0)
            for (int a = 0, b = v->n - 1; a < b; a++, b--) {
                int t = v->idx[a];
                v->idx[a] = v->idx[b];
                v->idx[b] = t;
            }
    }
    if (v->key[0]) {
        char k[96];
        for (int p = 0; p < v->n; p++) {
            row_key(ui, l, v->idx[p], k, sizeof k);
            if (!strcmp(k, v->key)) {
                v->sel = p;
                break;
            }
        }
    }
    if (v->sel >= v->n)
        v->sel = v->n - 1;
    if (v->sel < 0)
        v->sel = 0;
    ui_view_remember(ui, l);
}

void ui_views_build(ui_state *ui)
{
    for (int l = 0; l < L__COUNT; l++)
        build_one(ui, (ui_list)l);
}

int ui_view_selected(const ui_state *ui, ui_list l)
{
    const ui_view *v = &ui->v[l];
    return v->n > 0 && v->sel >= 0 && v->sel < v->n ? v->idx[v->sel] : -1;
}

void ui_view_remember(ui_state *ui, ui_list l)
{
    int i = ui_view_selected(ui, l);
    if (i >= 0)
        row_key(ui, l, i, ui->v[l].key, sizeof ui->v[l].key);
    else
        ui->v[l].key[0] = '\0';
}
