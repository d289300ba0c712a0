/* backend_gate.c: the engine's shared admission step and its outage policy
 * (see backend_gate.h).
 *
 * A request becomes one qt_backend_lease: rate keys "model:<m>" and
 * "provider:<p>" with their effective limits (after headroom) and the
 * request's token estimate, budgets "day" and "wf:<workflow>" (per UTC day,
 * fleet-wide). The run budget stays this process's own (the engine's
 * budget). The runner answers in at most backend.timeout_ms.
 *
 * Down (the backend's state callback, or a DOWN verdict, whichever comes
 * first): the divisor is fixed at max(expected_processes, most processes
 * seen), the fallback limiter's keys get limit/divisor (concurrency rounded
 * down, at least 1), and a fallback budget is made with the day's remaining
 * amount as last seen divided the same way, workflow budgets likewise
 * (unless fallback tickets are still out: the budget then stays as it was).
 * Spend committed through the fallback is also sent to Redis as a commit of
 * a lease that holds nothing (owed until Redis is back), so the fleet's day
 * spend stays whole. Up again: admissions go to Redis; fallback tickets
 * still out settle where they were taken.
 */
#include "quotatop/backend_gate.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A fleet pacing wait up to this long (and half the lease) is taken in the
 * admission itself: the slot is the caller's and it sends after the delay.
 * So every admission is one round trip: asked again when the slot comes,
 * the processes would race for it (measured: 2.5 calls per admission with
 * 3 processes and a 1 s window, 1.0 with 5 s). A process cannot hold more
 * slots ahead than it has workers waiting. */
#define GATE_AHEAD_MS 5000

struct qt_backend_gate {
    const qt_config *cfg;
    qt_clock *clock;
    qt_events *events;
    qt_backend_runner *r;
    qt_backend_control_fn on_control;
    void *ud;
    char proc[128];
    char **view_keys;
    size_t n_view;

    pthread_mutex_t mu;          /* guards everything below; never held across I/O */
    qt_limiter *fb;              /* the fallback: this process's share */
    int *fb_model, *fb_provider; /* fallback key ids by config index */
    qt_budget *fbb;
    int fb_out;                  /* fallback tickets not yet settled */
    /* Per model / provider key: no Redis call before hint_* (the fleet said
     * when the key admits next), and one call at a time (probing_*), so the
     * workers of this process do not all ask at once: about one round trip
     * per admission. */
    uint64_t *hint_m, *hint_p;
    char *probing_m, *probing_p;
    pthread_cond_t probe_done;   /* a probe ended: its hints are known */
    int fleet_paused;            /* as the backend last told (on_control) */
    char wf_paused[QT_BACKEND_MAX_VIEW][64];
    int n_wf_paused;
    int down;
    int by_verdict;              /* down because an answer was late, not because the link fell */
    uint64_t down_at;
    int divisor;
    uint64_t local_admits;
};

const char *qt_gate_state_name(qt_gate_state s)
{
    return s == QT_GATE_SHARED ? "shared" : s == QT_GATE_LOCAL_SHARE ? "local-share" : "closed";
}

static uint64_t now_of(const qt_backend_gate *g) { return qt_clock_now_ms(g->clock); }

static void fb_apply_limits(qt_backend_gate *g, int div)
{
    const qt_config *c = g->cfg;
    uint64_t now = now_of(g);
    for (size_t i = 0; i < c->n_models; i++)
        qt_limiter_set_limits(g->fb, g->fb_model[i], qt_config_effective(c, c->models[i].rpm) / div,
                              qt_config_effective(c, c->models[i].tpm) / div, 0, now);
    for (size_t i = 0; i < c->n_providers; i++) {
        int mc = c->providers[i].max_concurrent;
        qt_limiter_set_limits(g->fb, g->fb_provider[i], qt_config_effective(c, c->providers[i].rpm) / div,
                              qt_config_effective(c, c->providers[i].tpm) / div,
                              mc > 0 ? (mc / div > 0 ? mc / div : 1) : 0, now);
    }
}

/* The fleet has just sent at the shared pace: the share starts one of its
 * own intervals from now, not with a burst of one request per process. */
static void fb_hold_one_interval(qt_backend_gate *g, int div)
{
    const qt_config *c = g->cfg;
    uint64_t now = now_of(g);
    for (size_t i = 0; i < c->n_models; i++) {
        double rpm = qt_config_effective(c, c->models[i].rpm) / div;
        if (rpm > 0)
            qt_limiter_hold(g->fb, g->fb_model[i], now + (uint64_t)ceil(60000.0 / rpm));
    }
    for (size_t i = 0; i < c->n_providers; i++) {
        double rpm = qt_config_effective(c, c->providers[i].rpm) / div;
        if (rpm > 0)
            qt_limiter_hold(g->fb, g->fb_provider[i], now + (uint64_t)ceil(60000.0 / rpm));
    }
}

/* The fallback budget of this process's share. Lock held. */
static void fb_budget(qt_backend_gate *g, int div, const qt_backend_view *v)
{
    if (g->fbb && g->fb_out > 0)
        return;
    const qt_config *c = g->cfg;
    double day = 0;
    if (c->budget.day_usd > 0) {
        double left = c->budget.day_usd - v->day_spent_usd - v->day_reserved_usd;
        day = left > 0 ? left / div : 1e-9;   /* 0 would mean unlimited */
    }
    qt_budget *nb = qt_budget_new(0, day, c->budget.warn_ratio, c->budget.on_exhausted);
    if (!nb)
        return;
    for (size_t i = 0; i < c->budget.n_workflows; i++)
        if (c->budget.workflows[i].usd > 0)
            qt_budget_set_workflow(nb, c->budget.workflows[i].name, c->budget.workflows[i].usd / div);
    qt_budget_free(g->fbb);
    g->fbb = nb;
}

static void go_down(qt_backend_gate *g, const char *why, int by_verdict)
{
    qt_backend_view v;
    qt_backend_runner_view(g->r, &v);
    int div = qt_backend_runner_divisor(g->r, g->cfg->backend.expected_processes);
    pthread_mutex_lock(&g->mu);
    if (g->down) {
        pthread_mutex_unlock(&g->mu);
        return;
    }
    g->down = 1;
    g->by_verdict = by_verdict;
    g->down_at = now_of(g);
    g->divisor = div;
    fb_apply_limits(g, div);
    fb_budget(g, div, &v);
    fb_hold_one_interval(g, div);
    pthread_mutex_unlock(&g->mu);
    if (g->cfg->backend.on_error == QT_BACKEND_ON_ERROR_CLOSED)
        qt_events_addf(g->events, QT_EV_ERROR, now_of(g), qt_clock_wall_ms(g->clock), NULL, NULL, NULL,
                       "redis down (%.80s): dispatch stopped (backend.on_error closed)", why);
    else
        qt_events_addf(g->events, QT_EV_ERROR, now_of(g), qt_clock_wall_ms(g->clock), NULL, NULL, NULL,
                       "redis down (%.70s): this process's share, every limit / %d", why, div);
}

static void on_state(void *ud, int up, const char *why)
{
    qt_backend_gate *g = ud;
    if (!up) {
        go_down(g, why, 0);
        return;
    }
    pthread_mutex_lock(&g->mu);
    int was = g->down;
    g->down = 0;
    pthread_mutex_unlock(&g->mu);
    if (was)
        qt_events_addf(g->events, QT_EV_INFO, now_of(g), qt_clock_wall_ms(g->clock), NULL, NULL, NULL,
                       "redis back: limits and budgets shared by the fleet again");
}

static void on_control(void *ud, const char *op, const char *arg)
{
    qt_backend_gate *g = ud;
    pthread_mutex_lock(&g->mu);
    if (!strcmp(op, "pause") || !strcmp(op, "resume")) {
        g->fleet_paused = !strcmp(op, "pause");
    } else if (!strcmp(op, "wfpause") && g->n_wf_paused < QT_BACKEND_MAX_VIEW) {
        snprintf(g->wf_paused[g->n_wf_paused++], sizeof g->wf_paused[0], "%s", arg);
    } else if (!strcmp(op, "wfresume")) {
        for (int i = 0; i < g->n_wf_paused; i++)
            if (!strcmp(g->wf_paused[i], arg)) {
                memmove(g->wf_paused[i], g->wf_paused[i + 1],
                        sizeof g->wf_paused[0] * (size_t)(g->n_wf_paused - i - 1));
                g->n_wf_paused--;
                break;
            }
    }
    pthread_mutex_unlock(&g->mu);
    if (g->on_control)
        g->on_control(g->ud, op, arg);
}

qt_backend_gate *qt_backend_gate_new(const qt_backend_gate_opts *o, char *err, size_t errlen)
{
    const qt_config *c = o->cfg;
    qt_backend_gate *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->cfg = c;
    g->clock = o->clock ? o->clock : qt_clock_system();
    g->events = o->events;
    g->on_control = o->on_control;
    g->ud = o->ud;
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->probe_done, &ca);
    pthread_condattr_destroy(&ca);
    g->fb = qt_limiter_new(c->limits.burst_ms);
    g->fb_model = calloc(c->n_models + 1, sizeof *g->fb_model);
    g->fb_provider = calloc(c->n_providers + 1, sizeof *g->fb_provider);
    g->view_keys = calloc(c->n_models + c->n_providers + 1, sizeof *g->view_keys);
    g->hint_m = calloc(c->n_models + 1, sizeof *g->hint_m);
    g->hint_p = calloc(c->n_providers + 1, sizeof *g->hint_p);
    g->probing_m = calloc(c->n_models + 1, 1);
    g->probing_p = calloc(c->n_providers + 1, 1);
    if (!g->fb || !g->fb_model || !g->fb_provider || !g->view_keys || !g->hint_m || !g->hint_p
        || !g->probing_m || !g->probing_p)
        goto oom;
    char name[QT_BACKEND_NAME];
    for (size_t i = 0; i < c->n_models; i++) {
        snprintf(name, sizeof name, "model:%s", c->models[i].name);
        g->fb_model[i] = qt_limiter_add_key(g->fb, name, 0, 0, 0);
        g->view_keys[g->n_view++] = strdup(name);
    }
    for (size_t i = 0; i < c->n_providers; i++) {
        snprintf(name, sizeof name, "provider:%s", c->providers[i].name);
        g->fb_provider[i] = qt_limiter_add_key(g->fb, name, 0, 0, 0);
        g->view_keys[g->n_view++] = strdup(name);
    }
    g->divisor = 1;
    fb_apply_limits(g, c->backend.expected_processes > 0 ? c->backend.expected_processes : 1);
    qt_backend_opts bo = { .url = c->backend.url, .prefix = c->backend.prefix,
                           .lease_ms = c->backend.lease_ms, .timeout_ms = c->backend.timeout_ms,
                           .burst_ms = c->limits.burst_ms, .mode = o->mode,
                           .view_keys = (const char *const *)g->view_keys, .n_view_keys = g->n_view,
                           .on_control = on_control, .on_state = on_state, .ud = g };
    g->r = qt_backend_runner_new(&bo, err, errlen);
    if (!g->r) {
        qt_backend_gate_free(g);
        return NULL;
    }
    return g;
oom:
    snprintf(err, errlen, "out of memory");
    qt_backend_gate_free(g);
    return NULL;
}

void qt_backend_gate_free(qt_backend_gate *g)
{
    if (!g)
        return;
    qt_backend_runner_free(g->r);
    qt_limiter_free(g->fb);
    qt_budget_free(g->fbb);
    free(g->fb_model);
    free(g->fb_provider);
    free(g->hint_m);
    free(g->hint_p);
    free(g->probing_m);
    free(g->probing_p);
    for (size_t i = 0; g->view_keys && i < g->n_view; i++)
        free(g->view_keys[i]);
    free(g->view_keys);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->probe_done);
    free(g);
}

static void fill_lease(qt_backend_gate *g, qt_backend_lease *l, int mi, int pi, const char *workflow,
                       int64_t est_tokens, double est_usd)
{
    const qt_config *c = g->cfg;
    memset(l, 0, sizeof *l);
    snprintf(l->workflow, sizeof l->workflow, "%s", workflow && *workflow ? workflow : "default");
    l->n_rate = 2;
    snprintf(l->rate[0].name, sizeof l->rate[0].name, "model:%s", c->models[mi].name);
    l->rate[0].rpm = qt_config_effective(c, c->models[mi].rpm);
    l->rate[0].tpm = qt_config_effective(c, c->models[mi].tpm);
    l->rate[0].est_tokens = est_tokens;
    snprintf(l->rate[1].name, sizeof l->rate[1].name, "provider:%s", c->providers[pi].name);
    l->rate[1].rpm = qt_config_effective(c, c->providers[pi].rpm);
    l->rate[1].tpm = qt_config_effective(c, c->providers[pi].tpm);
    l->rate[1].max_concurrent = c->providers[pi].max_concurrent;
    l->rate[1].est_tokens = est_tokens;
    l->ahead_ms = c->backend.lease_ms / 2 < GATE_AHEAD_MS ? c->backend.lease_ms / 2 : GATE_AHEAD_MS;
    l->n_budget = 2;
    snprintf(l->budget[0].name, sizeof l->budget[0].name, "day");
    l->budget[0].per_day = 1;
    l->budget[0].limit_usd = c->budget.day_usd;
    l->budget[0].est_usd = est_usd;
    snprintf(l->budget[1].name, sizeof l->budget[1].name, "wf:%s", l->workflow);
    l->budget[1].per_day = 1;
    l->budget[1].limit_usd = qt_config_workflow_budget(c, l->workflow);
    l->budget[1].est_usd = est_usd;
}

static qt_gate_verdict fallback_admit(qt_backend_gate *g, int mi, int pi, const char *workflow,
                                      int64_t est_tokens, double est_usd, qt_gate_ticket *t,
                                      uint64_t *wait_ms, char *reason, size_t rlen)
{
    if (g->cfg->backend.on_error == QT_BACKEND_ON_ERROR_CLOSED) {
        *wait_ms = 250;
        snprintf(reason, rlen, "redis down: dispatch stopped (backend.on_error closed)");
        return QT_GATE_WAIT;
    }
    uint64_t now = now_of(g);
    pthread_mutex_lock(&g->mu);
    int keys[2] = { g->fb_model[mi], g->fb_provider[pi] };
    uint64_t earliest = 0;
    if (qt_limiter_reserve(g->fb, keys, 2, est_tokens, now, &t->lres, &earliest) != QT_OK) {
        pthread_mutex_unlock(&g->mu);
        *wait_ms = earliest == QT_LIMITER_NEVER || earliest <= now ? 20 : earliest - now;
        snprintf(reason, rlen, "redis down: this process's share of the limits");
        return QT_GATE_WAIT;
    }
    t->has_bres = 0;
    if (g->fbb) {
        char why[256];
        if (qt_budget_reserve(g->fbb, workflow, est_usd, qt_clock_wall_ms(g->clock), &t->bres, why,
                              sizeof why, NULL) != QT_OK) {
            qt_limiter_release(g->fb, &t->lres, now);
            pthread_mutex_unlock(&g->mu);
            snprintf(reason, rlen, "redis down, this process's share of the budget: %.200s", why);
            return QT_GATE_BUDGET;
        }
        t->has_bres = 1;
    }
    g->fb_out++;
    g->local_admits++;
    pthread_mutex_unlock(&g->mu);
    t->active = 1;
    t->shared = 0;
    return QT_GATE_GO;
}

/* A slot taken ahead: the worker sleeps until it comes (INTERIM: no lock
 * held), in steps of SLOT_STEP_MS, and gives it back if meanwhile the fleet
 * was paused (a paused fleet sends nothing, even slots already taken) or
 * Redis went down (the share takes over: slots taken at the shared pace are
 * not sent on top of it). */
#define SLOT_STEP_MS 20
static int held_back(qt_backend_gate *g, const char *workflow)
{
    pthread_mutex_lock(&g->mu);
    int r = g->down ? 2 : g->fleet_paused ? 1 : 0;
    for (int i = 0; !r && i < g->n_wf_paused; i++)
        if (!strcmp(g->wf_paused[i], workflow && *workflow ? workflow : "default"))
            r = 1;
    pthread_mutex_unlock(&g->mu);
    return r;
}

static qt_gate_verdict sleep_to_slot(qt_backend_gate *g, int mi, int pi, const char *workflow,
                                     int64_t est_tokens, double est_usd, qt_gate_ticket *t, uint64_t delay,
                                     uint64_t *wait_ms, char *reason, size_t rlen)
{
    uint64_t end = now_of(g) + delay;
    for (;;) {
        int h = held_back(g, workflow);
        if (h) {
            qt_backend_runner_release(g->r, &t->lease);   /* owed while Redis is down */
            t->active = 0;
            if (h == 2)
                return fallback_admit(g, mi, pi, workflow, est_tokens, est_usd, t, wait_ms, reason, rlen);
            *wait_ms = 250;
            snprintf(reason, rlen, "fleet paused");
            return QT_GATE_WAIT;
        }
        uint64_t now = now_of(g);
        if (now >= end)
            return QT_GATE_GO;
        uint64_t step = end - now < SLOT_STEP_MS ? end - now : SLOT_STEP_MS;
        struct timespec ts = { 0, (long)step * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
}

qt_gate_verdict qt_backend_gate_admit(qt_backend_gate *g, int mi, int pi, const char *workflow,
                                      int64_t est_tokens, double est_usd, qt_gate_ticket *t,
                                      uint64_t *wait_ms, char *reason, size_t reason_len)
{
    memset(t, 0, sizeof *t);
    *wait_ms = 0;
    if (reason_len)
        reason[0] = 0;
    fill_lease(g, &t->lease, mi, pi, workflow, est_tokens, est_usd);
    pthread_mutex_lock(&g->mu);
    int down = g->down, late = g->by_verdict && now_of(g) > g->down_at + 1000;
    pthread_mutex_unlock(&g->mu);
    if (down && late) {
        /* Down because answers were late while the link stayed up: no state
         * change will come; try Redis again once a second. */
        qt_backend_view v;
        qt_backend_runner_view(g->r, &v);
        if (v.up)
            on_state(g, 1, "");
        down = qt_backend_gate_state(g) != QT_GATE_SHARED;
    }
    if (down)
        return fallback_admit(g, mi, pi, workflow, est_tokens, est_usd, t, wait_ms, reason, reason_len);
    uint64_t now = now_of(g);
    pthread_mutex_lock(&g->mu);
    /* Another worker of this process asks Redis for the same key: wait for
     * its answer (it brings the hints) rather than asking too. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 1 + g->cfg->backend.timeout_ms / 1000;
    while ((g->probing_m[mi] || g->probing_p[pi])
           && pthread_cond_timedwait(&g->probe_done, &g->mu, &until) == 0)
        ;
    now = now_of(g);
    uint64_t hint = g->hint_m[mi] > g->hint_p[pi] ? g->hint_m[mi] : g->hint_p[pi];
    int busy = g->probing_m[mi] || g->probing_p[pi];
    if (hint <= now && !busy)
        g->probing_m[mi] = g->probing_p[pi] = 1;
    pthread_mutex_unlock(&g->mu);
    if (hint > now || busy) {
        *wait_ms = hint > now ? hint - now : 3;
        snprintf(reason, reason_len, "fleet pacing on %s", g->hint_m[mi] >= g->hint_p[pi]
                                                               ? t->lease.rate[0].name : t->lease.rate[1].name);
        return QT_GATE_WAIT;
    }
    qt_backend_decision d;
    qt_backend_runner_admit(g->r, &t->lease, g->cfg->backend.timeout_ms + 50, &d);
    now = now_of(g);
    pthread_mutex_lock(&g->mu);
    g->probing_m[mi] = g->probing_p[pi] = 0;
    pthread_cond_broadcast(&g->probe_done);
    if (d.verdict == QT_BACKEND_ADMITTED) {
        uint64_t ahead = (uint64_t)t->lease.ahead_ms;
        g->hint_m[mi] = now + (d.next_ms[0] > ahead ? d.next_ms[0] - ahead : 0);
        g->hint_p[pi] = now + (d.next_ms[1] > ahead ? d.next_ms[1] - ahead : 0);
    } else if (d.verdict == QT_BACKEND_WAIT || d.verdict == QT_BACKEND_FULL) {
        uint64_t *h = d.index == 1 ? &g->hint_p[pi] : &g->hint_m[mi];
        *h = now + (d.verdict == QT_BACKEND_WAIT ? d.wait_ms : 10);
    }
    pthread_mutex_unlock(&g->mu);
    switch (d.verdict) {
    case QT_BACKEND_ADMITTED:
        t->active = 1;
        t->shared = 1;
        if (d.delay_ms > 0)
            return sleep_to_slot(g, mi, pi, workflow, est_tokens, est_usd, t, d.delay_ms, wait_ms, reason,
                                 reason_len);
        return QT_GATE_GO;
    case QT_BACKEND_WAIT:
    case QT_BACKEND_FULL:
        *wait_ms = d.wait_ms > 0 ? d.wait_ms : 1;
        snprintf(reason, reason_len, "fleet %s on %s", d.verdict == QT_BACKEND_WAIT ? "pacing" : "slots",
                 d.index >= 0 && d.index < t->lease.n_rate ? t->lease.rate[d.index].name : "?");
        return QT_GATE_WAIT;
    case QT_BACKEND_PAUSED:
    case QT_BACKEND_WF_PAUSED:
        *wait_ms = 250;
        snprintf(reason, reason_len, "%s", d.verdict == QT_BACKEND_PAUSED ? "fleet paused"
                                                                          : "workflow paused fleet-wide");
        return QT_GATE_WAIT;
    case QT_BACKEND_BUDGET: {
        const char *which = d.index == 0 ? "day" : "workflow";
        snprintf(reason, reason_len, "fleet %s budget $%.2f exhausted: spent $%.4f + reserved $%.4f + "
                 "this request $%.4f > $%.2f", which, d.limit_usd, d.spent_usd, d.reserved_usd, est_usd,
                 d.limit_usd);
        return QT_GATE_BUDGET;
    }
    default:
        go_down(g, d.error, 1);
        return fallback_admit(g, mi, pi, workflow, est_tokens, est_usd, t, wait_ms, reason, reason_len);
    }
}

void qt_backend_gate_commit(qt_backend_gate *g, qt_gate_ticket *t, int64_t tokens, double usd)
{
    if (!t->active)
        return;
    t->active = 0;
    if (t->shared) {
        qt_backend_runner_commit(g->r, &t->lease, tokens, usd);
        return;
    }
    pthread_mutex_lock(&g->mu);
    qt_limiter_commit(g->fb, &t->lres, tokens, now_of(g));
    if (t->has_bres && g->fbb)
        qt_budget_commit(g->fbb, &t->bres, usd, 0, 0, qt_clock_wall_ms(g->clock), NULL);
    g->fb_out--;
    pthread_mutex_unlock(&g->mu);
    if (usd > 0) {
        /* The fleet's spend stays whole: a commit of a lease that holds
         * nothing adds the spend (owed until Redis is back). */
        qt_backend_lease l = t->lease;
        l.n_rate = 0;
        l.seq = 0;
        l.active = 1;
        l.day = (long)(qt_clock_wall_ms(g->clock) / 86400000ull);
        qt_backend_runner_commit(g->r, &l, 0, usd);
    }
}

void qt_backend_gate_release(qt_backend_gate *g, qt_gate_ticket *t)
{
    if (!t->active)
        return;
    t->active = 0;
    if (t->shared) {
        qt_backend_runner_release(g->r, &t->lease);
        return;
    }
    pthread_mutex_lock(&g->mu);
    qt_limiter_release(g->fb, &t->lres, now_of(g));
    if (t->has_bres && g->fbb)
        qt_budget_release(g->fbb, &t->bres, qt_clock_wall_ms(g->clock));
    g->fb_out--;
    pthread_mutex_unlock(&g->mu);
}

qt_err qt_backend_gate_control(qt_backend_gate *g, const char *op, const char *arg, const char *what,
                               double value)
{
    return qt_backend_runner_control(g->r, op, arg, what, value);
}

qt_gate_state qt_backend_gate_state(qt_backend_gate *g)
{
    pthread_mutex_lock(&g->mu);
    int down = g->down;
    pthread_mutex_unlock(&g->mu);
    if (!down)
        return QT_GATE_SHARED;
    return g->cfg->backend.on_error == QT_BACKEND_ON_ERROR_CLOSED ? QT_GATE_CLOSED : QT_GATE_LOCAL_SHARE;
}

int qt_backend_gate_divisor(qt_backend_gate *g)
{
    pthread_mutex_lock(&g->mu);
    int d = g->down ? g->divisor : 1;
    pthread_mutex_unlock(&g->mu);
    return d;
}

uint64_t qt_backend_gate_local_admits(qt_backend_gate *g)
{
    pthread_mutex_lock(&g->mu);
    uint64_t n = g->local_admits;
    pthread_mutex_unlock(&g->mu);
    return n;
}

void qt_backend_gate_view(qt_backend_gate *g, qt_backend_view *out)
{
    qt_backend_runner_view(g->r, out);
}
