/* ctl.c: the control plane beside one engine: frames, commands, failures.
 *
 * DESIGN
 * A frame is a set of copies taken one after another, each under the
 * engine's own short lock (snapshot, job views, queue counts, events; the
 * fleet view under the backend's view lock, with the shared backend); the
 * failure ring is copied under ctl's mutex. Nothing is held across two
 * copies, so a frame can be a few microseconds inconsistent (a job counted
 * done and still listed), which a dashboard redrawn 4 times a second shows
 * as nothing.
 *
 * Commands map onto engine controls. Whole-workflow commands walk the job
 * views and act on each job; an exact limit is a scale by value/current
 * (the engine's one limit-changing entry point), so it is exact up to the
 * last bit of a double and printed exactly.
 */
#include "quotatop/ctl.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_int.h"

qt_ctl *qt_ctl_new(const char *mode)
{
    qt_ctl *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->failed = calloc(QT_CTL_MAX_FAILED, sizeof *c->failed);
    if (!c->failed) {
        free(c);
        return NULL;
    }
    snprintf(c->mode, sizeof c->mode, "%s", mode ? mode : "");
    pthread_mutex_init(&c->mu, NULL);
    c->listen_fd = c->wake[0] = c->wake[1] = -1;
    return c;
}

void qt_ctl_attach(qt_ctl *c, qt_engine *e)
{
    if (c)
        c->e = e;
}

void qt_ctl_free(qt_ctl *c)
{
    if (!c)
        return;
    ctl_server_stop(c);
    pthread_mutex_destroy(&c->mu);
    free(c->failed);
    free(c);
}

const char *qt_ctl_path(const qt_ctl *c) { return c && c->listening ? c->path : ""; }

void qt_ctl_frame_free(qt_ctl_frame *f)
{
    if (!f)
        return;
    qt_engine_snapshot_free(&f->snap);
    free(f->jobs);
    free(f->events);
    free(f->failed);
    memset(f, 0, sizeof *f);
}

static void copy_str(char *dst, size_t len, const char *s) { snprintf(dst, len, "%s", s ? s : ""); }

void qt_ctl_note_result(qt_ctl *c, const qt_result *res)
{
    if (!c || !res || res->status == QT_STATUS_OK)
        return;
    qt_ctl_failed f;
    memset(&f, 0, sizeof f);
    copy_str(f.id, sizeof f.id, res->id);
    copy_str(f.workflow, sizeof f.workflow, res->workflow);
    copy_str(f.model, sizeof f.model, res->model);
    copy_str(f.model_used, sizeof f.model_used, res->model_used);
    copy_str(f.provider, sizeof f.provider, res->provider);
    copy_str(f.status, sizeof f.status, qt_status_name(res->status));
    copy_str(f.error, sizeof f.error, res->error);
    f.attempts = res->attempts;
    f.cost_usd = res->cost_usd;
    f.wall_ms = ctl_wall_ms();
    pthread_mutex_lock(&c->mu);
    c->failed[c->failed_head] = f;
    c->failed_head = (c->failed_head + 1) % QT_CTL_MAX_FAILED;
    if (c->n_failed < QT_CTL_MAX_FAILED)
        c->n_failed++;
    c->failed_total++;
    pthread_mutex_unlock(&c->mu);
}

qt_err qt_ctl_frame_take(qt_ctl *c, qt_ctl_frame *out)
{
    memset(out, 0, sizeof *out);
    if (!c || !c->e)
        return QT_ERR_INVALID;
    snprintf(out->mode, sizeof out->mode, "%s", c->mode);
    if (qt_engine_snapshot_take(c->e, &out->snap) != QT_OK)
        return QT_ERR_NOMEM;
    out->jobs = calloc(QT_CTL_MAX_JOBS, sizeof *out->jobs);
    out->events = calloc(QT_CTL_MAX_EVENTS, sizeof *out->events);
    out->failed = calloc(QT_CTL_MAX_FAILED, sizeof *out->failed);
    if (!out->jobs || !out->events || !out->failed) {
        qt_ctl_frame_free(out);
        return QT_ERR_NOMEM;
    }
    out->n_jobs = qt_engine_jobs(c->e, out->jobs, QT_CTL_MAX_JOBS);
    out->jobs_total = qt_engine_jobs_count(c->e);
    if (out->jobs_total < out->n_jobs)
        out->jobs_total = out->n_jobs;
    qt_engine_queue_counts(c->e, &out->qcounts);
    out->n_events = qt_events_latest(qt_engine_events(c->e), out->events, QT_CTL_MAX_EVENTS);
    out->finished = !strcmp(c->mode, "run") && qt_engine_wait_done(c->e, 0);
    out->has_fleet = qt_engine_fleet_view(c->e, &out->fleet) == QT_OK;
    pthread_mutex_lock(&c->mu);
    size_t n = c->n_failed, start = (c->failed_head + QT_CTL_MAX_FAILED - n) % QT_CTL_MAX_FAILED;
    for (size_t i = 0; i < n; i++)
        out->failed[i] = c->failed[(start + i) % QT_CTL_MAX_FAILED];
    out->n_failed = n;
    out->failed_total = c->failed_total;
    pthread_mutex_unlock(&c->mu);
    return QT_OK;
}

/* The current effective limit of a model or provider row (0 unlimited). */
static int current_limit(qt_ctl *c, const char *name, int is_provider, char which, double *out)
{
    qt_engine_snapshot s;
    if (qt_engine_snapshot_take(c->e, &s) != QT_OK)
        return -1;
    int found = -1;
    for (size_t i = 0; i < s.n_rows && found < 0; i++)
        if (s.rows[i].is_provider == is_provider && !strcmp(s.rows[i].name, name)) {
            *out = which == 't' ? s.rows[i].tpm : s.rows[i].rpm;
            found = 0;
        }
    qt_engine_snapshot_free(&s);
    return found;
}

static qt_err set_limit(qt_ctl *c, const qt_ctl_cmd *cmd, char *msg, size_t len)
{
    const char *what = cmd->which == 't' ? "TPM" : "RPM";
    double cur = 0;
    if (!(cmd->value >= 1) || cmd->value > 1e12) {
        snprintf(msg, len, "%s: a %s limit is a number from 1 up", cmd->name, what);
        return QT_ERR_INVALID;
    }
    if (current_limit(c, cmd->name, cmd->flag, cmd->which, &cur)) {
        snprintf(msg, len, "%s: no such %s", cmd->name, cmd->flag ? "provider" : "model");
        return QT_ERR_NOTFOUND;
    }
    if (cur <= 0) {
        snprintf(msg, len, "%s has no %s limit to change (set one in the config)", cmd->name, what);
        return QT_ERR_INVALID;
    }
    qt_err r = qt_engine_scale_limit(c->e, cmd->name, cmd->flag, cmd->which, cmd->value / cur);
    if (r == QT_OK)
        snprintf(msg, len, "%s %s limit set to %.0f", cmd->name, what, cmd->value);
    else
        snprintf(msg, len, "%s: %s", cmd->name, qt_strerror(r));
    return r;
}

/* Whole-workflow commands act on each job of the workflow. */
static qt_err wf_each(qt_ctl *c, const qt_ctl_cmd *cmd, char *msg, size_t len)
{
    qt_job_view *v = calloc(QT_CTL_MAX_JOBS * 4, sizeof *v);
    if (!v) {
        snprintf(msg, len, "out of memory");
        return QT_ERR_NOMEM;
    }
    size_t n = qt_engine_jobs(c->e, v, QT_CTL_MAX_JOBS * 4), done = 0, missed = 0;
    int prio = (int)cmd->value;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].workflow, cmd->name))
            continue;
        qt_err r;
        if (cmd->op == QT_CTL_WF_CANCEL) {
            if (v[i].state != QT_JOB_QUEUED)
                continue;
            r = qt_engine_cancel(c->e, v[i].id);
        } else {
            r = qt_engine_reprioritize(c->e, v[i].id, prio);
        }
        if (r == QT_OK)
            done++;
        else
            missed++;
    }
    free(v);
    if (cmd->op == QT_CTL_WF_CANCEL)
        snprintf(msg, len, "workflow %s: %zu queued jobs cancelled", cmd->name, done);
    else
        snprintf(msg, len, "workflow %s: %zu jobs at priority %d%s", cmd->name, done, prio,
                 missed ? " (some finished meanwhile)" : "");
    return QT_OK;
}

qt_err qt_ctl_exec(qt_ctl *c, const qt_ctl_cmd *cmd, char *msg, size_t len)
{
    msg[0] = '\0';
    if (!c || !c->e || !cmd || (unsigned)cmd->op >= QT_CTL__COUNT) {
        snprintf(msg, len, "unknown command");
        return QT_ERR_INVALID;
    }
    qt_err r = QT_OK;
    int prio = (int)cmd->value;
    switch (cmd->op) {
    case QT_CTL_PAUSE:
        qt_engine_pause(c->e, cmd->flag);
        snprintf(msg, len, "%s", cmd->flag ? "dispatch paused: in-flight requests finish, nothing new is sent"
                                           : "dispatch resumed");
        break;
    case QT_CTL_PAUSE_WF:
        r = qt_engine_pause_workflow(c->e, cmd->name, cmd->flag);
        snprintf(msg, len, "workflow %s %s", cmd->name,
                 r != QT_OK ? qt_strerror(r) : cmd->flag ? "paused" : "resumed");
        break;
    case QT_CTL_CANCEL:
        r = qt_engine_cancel(c->e, cmd->name);
        snprintf(msg, len, "job %s %s", cmd->name, r == QT_OK ? "cancelled" : "not found (finished?)");
        break;
    case QT_CTL_PRIO:
    case QT_CTL_WF_PRIO:
        if (prio < QT_QUEUE_PRIO_MIN || prio > QT_QUEUE_PRIO_MAX || prio != cmd->value) {
            snprintf(msg, len, "priority is %d (most urgent) .. %d", QT_QUEUE_PRIO_MIN, QT_QUEUE_PRIO_MAX);
            return QT_ERR_INVALID;
        }
        if (cmd->op == QT_CTL_WF_PRIO)
            return wf_each(c, cmd, msg, len);
        r = qt_engine_reprioritize(c->e, cmd->name, prio);
        if (r == QT_OK)
            snprintf(msg, len, "job %s: priority %d", cmd->name, prio);
        else
            snprintf(msg, len, "job %s: %s (finished?)", cmd->name, qt_strerror(r));
        break;
    case QT_CTL_SCALE:
        r = qt_engine_scale_limit(c->e, cmd->name, cmd->flag, cmd->which, cmd->value);
        if (r != QT_OK)
            snprintf(msg, len, "%s: %s", cmd->name, qt_strerror(r));
        else if (cmd->value <= 0)
            snprintf(msg, len, "%s: configured limits restored", cmd->name);
        else
            snprintf(msg, len, "%s %s limit %s %.0f%%", cmd->name, cmd->which == 't' ? "TPM" : "RPM",
                     cmd->value < 1 ? "lowered" : "raised", fabs(cmd->value - 1) * 100);
        break;
    case QT_CTL_SET_LIMIT:
        return set_limit(c, cmd, msg, len);
    case QT_CTL_WF_CANCEL:
        return wf_each(c, cmd, msg, len);
    default:
        break;
    }
    return r;
}
