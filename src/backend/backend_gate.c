/* backend_gate.c: the engine's shared admission step and its outage policy
 * (see backend_gate.h).
 *
 * A request becomes one qt_backend_lease: rate keys "model:<m>" and
 * "provider:<p>" with their effective limits (after headroom) and the
 * request's token estimate, budgets "day" and "wf:<workflow>" (per UTC day,
 * fleet-wide). The run budget stays this process's own (the engine's
 * budget).
 *
 * Asking. An admission is an `ask`. Per limited key (one with an RPM, TPM
 * or concurrency limit) a window of asks goes to Redis (through the
 * runner: posted, answered on the backend's thread): one at a time while
 * the key is tight, up to GATE_WINDOW_MAX while its answers say it has room
 * now; the others for that key are parked in the gate, in the order they
 * came, until an answer, which carries when the key admits next (a hint: an
 * ask before it is answered WAIT at once, with no Redis call). So about one
 * round trip per admission on a tight key (where asking in parallel would
 * only bring back waits), pipelining on a free one, and nobody waits on a
 * thread: a parked ask is a list entry. Asks on keys without limits
 * (budgets only) are not held back.
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
 *
 * Locking: g->mu guards the gate's state and every use of the runner (a
 * post: never I/O); no callback runs under it. Lock order: the engine's
 * lock -> g->mu -> the backend's view lock / the runner loop's post lock.
 */
#include "quotatop/backend_gate.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fleet pacing wait up to this long (and half the lease) is taken in the
 * admission itself: the slot is the caller's and it sends after the delay.
 * So every admission is one round trip: asked again when the slot comes,
 * the processes would race for it (measured: 2.5 calls per admission with
 * 3 processes and a 1 s window, 1.0 with 5 s). A process cannot hold more
 * slots ahead than it has requests in flight. */
#define GATE_AHEAD_MS 5000
#define GATE_PAUSE_MS 250     /* paused, closed, shutting down: ask again after this */
#define GATE_WINDOW_MAX 16    /* asks in flight per limited key and process while it has room */

typedef struct gate_ask gate_ask;
struct gate_ask {
    gate_ask *prev, *next;       /* g->parked or g->asking */
    qt_backend_gate *g;
    qt_gate_ticket *t;           /* the caller's */
    qt_gate_fn cb;
    void *ud;
    int probing;                 /* it counts in its limited keys' asks in flight */
    int answered;                /* the gate closed and answered it: Redis's answer is forgotten */
    qt_gate_answer a;
    gate_ask *done_next;         /* a local list of asks to answer */
};

typedef struct { gate_ask *head, *tail; } ask_list;

struct qt_backend_gate {
    const qt_config *cfg;
    qt_clock *clock;
    qt_events *events;
    qt_backend_runner *r;        /* NULL once closed */
    qt_backend_control_fn on_control;
    void *ud;
    char **view_keys;
    size_t n_view;

    pthread_mutex_t mu;          /* guards everything below; never held across I/O or a callback */
    int closed;
    qt_backend_view last_view;   /* the view when the gate closed */
    qt_limiter *fb;              /* the fallback: this process's share */
    int *fb_model, *fb_provider; /* fallback key ids by config index */
    qt_budget *fbb;
    int fb_out;                  /* fallback tickets not yet settled */
    /* Per model / provider key: no Redis call before hint_* (the fleet said
     * when the key admits next), and, for a key with a limit (limited_*),
     * at most window_* asks in flight (probing_*): one while the key is
     * tight (its last answer: a slot ahead, a wait, full; or not known
     * yet), doubling up to GATE_WINDOW_MAX while it answers "admitted now,
     * and free again now". */
    uint64_t *hint_m, *hint_p;
    int *probing_m, *probing_p;
    int *window_m, *window_p;
    char *limited_m, *limited_p;
    ask_list parked;             /* waiting for a probe of one of their keys (FIFO) */
    ask_list asking;             /* sent to Redis, not yet answered */
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

static void list_push(ask_list *l, gate_ask *a)
{
    a->next = NULL;
    a->prev = l->tail;
    if (l->tail)
        l->tail->next = a;
    else
        l->head = a;
    l->tail = a;
}

static void list_remove(ask_list *l, gate_ask *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        l->head = a->next;
    if (a->next)
        a->next->prev = a->prev;
    else
        l->tail = a->prev;
    a->prev = a->next = NULL;
}

static void answer(qt_gate_answer *a, qt_gate_verdict v, uint64_t wait_ms, int rate, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void answer(qt_gate_answer *a, qt_gate_verdict v, uint64_t wait_ms, int rate, const char *fmt, ...)
{
    memset(a, 0, sizeof *a);
    a->verdict = v;
    a->wait_ms = v == QT_GATE_WAIT && wait_ms < 1 ? 1 : wait_ms;
    a->rate = rate;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reason, sizeof a->reason, fmt, ap);
    va_end(ap);
}

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


/* Redis is down (or late). Not under g->mu. */
static void go_down(qt_backend_gate *g, const char *why, int by_verdict)
{
    qt_backend_view v;
    pthread_mutex_lock(&g->mu);
    if (g->down || g->closed) {
        pthread_mutex_unlock(&g->mu);
        return;
    }
    qt_backend_runner_view(g->r, &v);
    int div = qt_backend_runner_divisor(g->r, g->cfg->backend.expected_processes);
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
    int was = g->down && !g->closed;
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
    g->fb = qt_limiter_new(c->limits.burst_ms);
    g->fb_model = calloc(c->n_models + 1, sizeof *g->fb_model);
    g->fb_provider = calloc(c->n_providers + 1, sizeof *g->fb_provider);
    g->view_keys = calloc(c->n_models + c->n_providers + 1, sizeof *g->view_keys);
    g->hint_m = calloc(c->n_models + 1, sizeof *g->hint_m);
    g->hint_p = calloc(c->n_providers + 1, sizeof *g->hint_p);
    g->probing_m = calloc(c->n_models + 1, sizeof *g->probing_m);
    g->probing_p = calloc(c->n_providers + 1, sizeof *g->probing_p);
    g->window_m = calloc(c->n_models + 1, sizeof *g->window_m);
    g->window_p = calloc(c->n_providers + 1, sizeof *g->window_p);
    g->limited_m = calloc(c->n_models + 1, 1);
    g->limited_p = calloc(c->n_providers + 1, 1);
    if (!g->fb || !g->fb_model || !g->fb_provider || !g->view_keys || !g->hint_m || !g->hint_p
        || !g->probing_m || !g->probing_p || !g->window_m || !g->window_p || !g->limited_m || !g->limited_p)
        goto oom;
    char name[QT_BACKEND_NAME];
    for (size_t i = 0; i < c->n_models; i++) {
        snprintf(name, sizeof name, "model:%s", c->models[i].name);
        g->fb_model[i] = qt_limiter_add_key(g->fb, name, 0, 0, 0);
        g->view_keys[g->n_view++] = strdup(name);
        g->limited_m[i] = c->models[i].rpm > 0 || c->models[i].tpm > 0;
    }
    for (size_t i = 0; i < c->n_providers; i++) {
        snprintf(name, sizeof name, "provider:%s", c->providers[i].name);
        g->fb_provider[i] = qt_limiter_add_key(g->fb, name, 0, 0, 0);
        g->view_keys[g->n_view++] = strdup(name);
        g->limited_p[i] = c->providers[i].rpm > 0 || c->providers[i].tpm > 0
                          || c->providers[i].max_concurrent > 0;
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
        g->closed = 1;
        qt_backend_gate_free(g);
        return NULL;
    }
    return g;
oom:
    snprintf(err, errlen, "out of memory");
    g->closed = 1;
    qt_backend_gate_free(g);
    return NULL;
}

void qt_backend_gate_close(qt_backend_gate *g)
{
    pthread_mutex_lock(&g->mu);
    if (g->closed) {
        pthread_mutex_unlock(&g->mu);
        return;
    }
    g->closed = 1;
    qt_backend_runner_view(g->r, &g->last_view);
    gate_ask *parked = g->parked.head, *asking = g->asking.head;
    g->parked.head = g->parked.tail = NULL;
    g->asking.head = g->asking.tail = NULL;
    for (gate_ask *a = asking; a; a = a->next)
        a->answered = 1;   /* admitted() frees it when Redis's answer comes */
    pthread_mutex_unlock(&g->mu);
    /* Answered outside the lock; the lists are ours now (next links only). */
    for (gate_ask *a = parked, *next; a; a = next) {
        next = a->next;
        answer(&a->a, QT_GATE_WAIT, GATE_PAUSE_MS, -1, "quotatop is shutting down");
        a->cb(a->ud, a->t, &a->a);
        free(a);
    }
    for (gate_ask *a = asking, *next; a; a = next) {
        next = a->next;   /* read before the answer: admitted() may free it once answered */
        qt_gate_answer ans;
        answer(&ans, QT_GATE_WAIT, GATE_PAUSE_MS, -1, "quotatop is shutting down");
        a->cb(a->ud, a->t, &ans);
    }
    /* Joins the backend's thread: callbacks still running there see `closed`. */
    qt_backend_runner_free(g->r);
    pthread_mutex_lock(&g->mu);
    g->r = NULL;
    pthread_mutex_unlock(&g->mu);
}

void qt_backend_gate_free(qt_backend_gate *g)
{
    if (!g)
        return;
    if (!g->closed)
        qt_backend_gate_close(g);
    else
        qt_backend_runner_free(g->r);   /* a gate that failed to start */
    qt_limiter_free(g->fb);
    qt_budget_free(g->fbb);
    free(g->fb_model);
    free(g->fb_provider);
    free(g->hint_m);
    free(g->hint_p);
    free(g->probing_m);
    free(g->probing_p);
    free(g->window_m);
    free(g->window_p);
    free(g->limited_m);
    free(g->limited_p);
    for (size_t i = 0; g->view_keys && i < g->n_view; i++)
        free(g->view_keys[i]);
    free(g->view_keys);
    pthread_mutex_destroy(&g->mu);
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

/* The fallback's decision for t (Redis down). Not under g->mu. */
static void fallback_admit(qt_backend_gate *g, qt_gate_ticket *t, qt_gate_answer *a)
{
    if (g->cfg->backend.on_error == QT_BACKEND_ON_ERROR_CLOSED) {
        answer(a, QT_GATE_WAIT, GATE_PAUSE_MS, -1, "redis down: dispatch stopped (backend.on_error closed)");
        return;
    }
    uint64_t now = now_of(g);
    pthread_mutex_lock(&g->mu);
    int keys[2] = { g->fb_model[t->mi], g->fb_provider[t->pi] };
    uint64_t earliest = 0;
    if (qt_limiter_reserve(g->fb, keys, 2, t->est_tokens, now, &t->lres, &earliest) != QT_OK) {
        pthread_mutex_unlock(&g->mu);
        answer(a, QT_GATE_WAIT, earliest == QT_LIMITER_NEVER || earliest <= now ? 20 : earliest - now, -1,
               "redis down: this process's share of the limits");
        return;
    }
    t->has_bres = 0;
    if (g->fbb) {
        char why[256];
        if (qt_budget_reserve(g->fbb, t->lease.workflow, t->est_usd, qt_clock_wall_ms(g->clock), &t->bres, why,
                              sizeof why, NULL) != QT_OK) {
            qt_limiter_release(g->fb, &t->lres, now);
            pthread_mutex_unlock(&g->mu);
            answer(a, QT_GATE_BUDGET, 0, -1, "redis down, this process's share of the budget: %.200s", why);
            return;
        }
        t->has_bres = 1;
    }
    g->fb_out++;
    g->local_admits++;
    pthread_mutex_unlock(&g->mu);
    t->active = 1;
    t->shared = 0;
    answer(a, QT_GATE_GO, 0, -1, "redis down: this process's share");
}

/* Down because answers were late while the link stayed up: no state change
 * will come, so Redis is tried again once a second. Not under g->mu. */
static void maybe_recover(qt_backend_gate *g)
{
    pthread_mutex_lock(&g->mu);
    int late = g->down && !g->closed && g->by_verdict && now_of(g) > g->down_at + 1000;
    qt_backend_view v;
    if (late)
        qt_backend_runner_view(g->r, &v);
    pthread_mutex_unlock(&g->mu);
    if (late && v.up)
        on_state(g, 1, "");
}

static int window_of(const int *w) { return *w > 0 ? *w : 1; }

/* 1 when one of t's limited keys has its window of asks in flight. */
static int probing_on(const qt_backend_gate *g, const qt_gate_ticket *t)
{
    return (g->limited_m[t->mi] && g->probing_m[t->mi] >= window_of(&g->window_m[t->mi]))
           || (g->limited_p[t->pi] && g->probing_p[t->pi] >= window_of(&g->window_p[t->pi]));
}

/* A key's answer: its window doubles while it says "admitted now, free
 * again now", and is one ask at a time otherwise. */
static void window_learn(int *w, int room)
{
    if (!room)
        *w = 1;
    else
        *w = window_of(w) * 2 > GATE_WINDOW_MAX ? GATE_WINDOW_MAX : window_of(w) * 2;
}

static void set_probing(qt_backend_gate *g, gate_ask *ask, int on)
{
    const qt_gate_ticket *t = ask->t;
    int d = on ? 1 : -1;
    if (g->limited_m[t->mi])
        g->probing_m[t->mi] += d;
    if (g->limited_p[t->pi])
        g->probing_p[t->pi] += d;
    ask->probing = on;
}

static int admitted(void *ud, const qt_backend_lease *lease, const qt_backend_decision *d);

enum { ROUTE_ANSWERED, ROUTE_FALLBACK, ROUTE_PARKED, ROUTE_SENT };

/* Where an ask goes now (g->mu held): answered at once (ask->a), the
 * fallback (Redis down), parked behind a probe of its key, or sent. */
static int route_locked(qt_backend_gate *g, gate_ask *ask, uint64_t now)
{
    qt_gate_ticket *t = ask->t;
    if (g->closed) {
        answer(&ask->a, QT_GATE_WAIT, GATE_PAUSE_MS, -1, "quotatop is shutting down");
        return ROUTE_ANSWERED;
    }
    if (g->down)
        return ROUTE_FALLBACK;
    if (probing_on(g, t))
        return ROUTE_PARKED;
    uint64_t hm = g->hint_m[t->mi], hp = g->hint_p[t->pi];
    if (hm > now || hp > now) {
        int which = hm >= hp ? 0 : 1;
        answer(&ask->a, QT_GATE_WAIT, (hm > hp ? hm : hp) - now, which, "fleet pacing on %s",
               t->lease.rate[which].name);
        return ROUTE_ANSWERED;
    }
    set_probing(g, ask, 1);
    list_push(&g->asking, ask);
    if (qt_backend_runner_admit(g->r, &t->lease, admitted, ask) != QT_OK) {
        list_remove(&g->asking, ask);
        set_probing(g, ask, 0);
        answer(&ask->a, QT_GATE_WAIT, 20, -1, "out of memory");
        return ROUTE_ANSWERED;
    }
    return ROUTE_SENT;
}

/* Answers a list of asks (done_next links; not under g->mu) and frees them. */
static void answer_all(qt_backend_gate *g, gate_ask *done, gate_ask *fb)
{
    for (gate_ask *a = fb, *next; a; a = next) {
        next = a->done_next;
        fallback_admit(g, a->t, &a->a);
        a->cb(a->ud, a->t, &a->a);
        free(a);
    }
    for (gate_ask *a = done, *next; a; a = next) {
        next = a->done_next;
        a->cb(a->ud, a->t, &a->a);
        free(a);
    }
}

/* A probe ended: the parked asks whose keys are free again go on, in the
 * order they came. */
static void redecide_parked(qt_backend_gate *g)
{
    gate_ask *done = NULL, *fb = NULL;
    pthread_mutex_lock(&g->mu);
    uint64_t now = now_of(g);
    for (gate_ask *a = g->parked.head, *next; a; a = next) {
        next = a->next;
        if (!g->down && !g->closed && probing_on(g, a->t))
            continue;
        list_remove(&g->parked, a);
        int r = route_locked(g, a, now);
        if (r == ROUTE_ANSWERED) {
            a->done_next = done;
            done = a;
        } else if (r == ROUTE_FALLBACK) {
            a->done_next = fb;
            fb = a;
        }
    }
    pthread_mutex_unlock(&g->mu);
    answer_all(g, done, fb);
}

/* Redis's answer to an ask (the backend's thread). */
static int admitted(void *ud, const qt_backend_lease *lease, const qt_backend_decision *d)
{
    gate_ask *ask = ud;
    qt_backend_gate *g = ask->g;
    qt_gate_ticket *t = ask->t;
    pthread_mutex_lock(&g->mu);
    if (ask->answered) {   /* the gate closed meanwhile: t is not ours any more */
        pthread_mutex_unlock(&g->mu);
        free(ask);
        return 0;
    }
    list_remove(&g->asking, ask);
    if (ask->probing)
        set_probing(g, ask, 0);
    uint64_t now = now_of(g);
    int mi = t->mi, pi = t->pi, taken = 0, down = 0;
    /* Room: admitted now and free again now (the script rounds both up to
     * whole milliseconds, so 1 ms means "within a millisecond"). */
    int now_free = d->verdict == QT_BACKEND_ADMITTED && d->delay_ms <= 1;
    window_learn(&g->window_m[mi], now_free && d->next_ms[0] <= 1);
    window_learn(&g->window_p[pi], now_free && d->next_ms[1] <= 1);
    if (d->verdict == QT_BACKEND_ADMITTED) {
        uint64_t ahead = (uint64_t)t->lease.ahead_ms;
        g->hint_m[mi] = now + (d->next_ms[0] > ahead ? d->next_ms[0] - ahead : 0);
        g->hint_p[pi] = now + (d->next_ms[1] > ahead ? d->next_ms[1] - ahead : 0);
    } else if (d->verdict == QT_BACKEND_WAIT || d->verdict == QT_BACKEND_FULL) {
        uint64_t *h = d->index == 1 ? &g->hint_p[pi] : &g->hint_m[mi];
        *h = now + (d->verdict == QT_BACKEND_WAIT ? d->wait_ms : 10);
    }
    pthread_mutex_unlock(&g->mu);
    const char *rn = d->index >= 0 && d->index < t->lease.n_rate ? t->lease.rate[d->index].name : "?";
    switch (d->verdict) {
    case QT_BACKEND_ADMITTED:
        t->lease = *lease;
        t->active = 1;
        t->shared = 1;
        taken = 1;
        answer(&ask->a, QT_GATE_GO, 0, -1, "fleet admitted");
        ask->a.delay_ms = d->delay_ms;
        break;
    case QT_BACKEND_WAIT:
    case QT_BACKEND_FULL:
        answer(&ask->a, QT_GATE_WAIT, d->wait_ms, d->index == 1 ? 1 : 0, "fleet %s on %s",
               d->verdict == QT_BACKEND_WAIT ? "pacing" : "slots", rn);
        break;
    case QT_BACKEND_PAUSED:
    case QT_BACKEND_WF_PAUSED:
        answer(&ask->a, QT_GATE_WAIT, GATE_PAUSE_MS, -1, "%s",
               d->verdict == QT_BACKEND_PAUSED ? "fleet paused" : "workflow paused fleet-wide");
        break;
    case QT_BACKEND_BUDGET: {
        const char *which = d->index == 0 ? "day" : "workflow";
        answer(&ask->a, QT_GATE_BUDGET, 0, -1,
               "fleet %s budget $%.2f exhausted: spent $%.4f + reserved $%.4f + this request $%.4f > $%.2f",
               which, d->limit_usd, d->spent_usd, d->reserved_usd, t->est_usd, d->limit_usd);
        break;
    }
    default:
        down = 1;
        break;
    }
    if (down) {
        go_down(g, d->error, 1);
        fallback_admit(g, t, &ask->a);
    }
    ask->cb(ask->ud, t, &ask->a);   /* t is the caller's again after this */
    free(ask);
    redecide_parked(g);
    return taken;
}

void qt_backend_gate_admit(qt_backend_gate *g, int mi, int pi, const char *workflow, int64_t est_tokens,
                           double est_usd, qt_gate_ticket *t, qt_gate_fn cb, void *ud)
{
    memset(t, 0, sizeof *t);
    t->mi = mi;
    t->pi = pi;
    t->est_tokens = est_tokens;
    t->est_usd = est_usd;
    fill_lease(g, &t->lease, mi, pi, workflow, est_tokens, est_usd);
    maybe_recover(g);
    gate_ask *ask = calloc(1, sizeof *ask);
    if (!ask) {
        qt_gate_answer a;
        answer(&a, QT_GATE_WAIT, 20, -1, "out of memory");
        cb(ud, t, &a);
        return;
    }
    ask->g = g;
    ask->t = t;
    ask->cb = cb;
    ask->ud = ud;
    pthread_mutex_lock(&g->mu);
    int r = route_locked(g, ask, now_of(g));
    if (r == ROUTE_PARKED)
        list_push(&g->parked, ask);
    pthread_mutex_unlock(&g->mu);
    if (r == ROUTE_ANSWERED)
        answer_all(g, ask, NULL);
    else if (r == ROUTE_FALLBACK)
        answer_all(g, NULL, ask);
}

/* 1: the fleet is paused for this workflow; 2: Redis is down; 3: closed. */
static int held_back(qt_backend_gate *g, const char *workflow)
{
    pthread_mutex_lock(&g->mu);
    int r = g->closed ? 3 : g->down ? 2 : g->fleet_paused ? 1 : 0;
    for (int i = 0; !r && i < g->n_wf_paused; i++)
        if (!strcmp(g->wf_paused[i], workflow && *workflow ? workflow : "default"))
            r = 1;
    pthread_mutex_unlock(&g->mu);
    return r;
}

void qt_backend_gate_slot(qt_backend_gate *g, qt_gate_ticket *t, qt_gate_answer *a)
{
    int h = held_back(g, t->lease.workflow);
    if (!h || !t->active || !t->shared) {
        answer(a, QT_GATE_GO, 0, -1, "fleet slot");
        return;
    }
    /* A paused fleet sends nothing, even slots already taken; slots taken at
     * the shared pace are not sent on top of the share once Redis is down. */
    qt_backend_gate_release(g, t);   /* owed while Redis is down */
    if (h == 2)
        fallback_admit(g, t, a);
    else
        answer(a, QT_GATE_WAIT, GATE_PAUSE_MS, -1, "%s", h == 3 ? "quotatop is shutting down" : "fleet paused");
}

void qt_backend_gate_commit(qt_backend_gate *g, qt_gate_ticket *t, int64_t tokens, double usd)
{
    if (!t->active)
        return;
    t->active = 0;
    pthread_mutex_lock(&g->mu);
    if (t->shared) {
        if (!g->closed)
            qt_backend_runner_commit(g->r, &t->lease, tokens, usd);
        pthread_mutex_unlock(&g->mu);
        return;
    }
    qt_limiter_commit(g->fb, &t->lres, tokens, now_of(g));
    if (t->has_bres && g->fbb)
        qt_budget_commit(g->fbb, &t->bres, usd, 0, 0, qt_clock_wall_ms(g->clock), NULL);
    g->fb_out--;
    if (usd > 0 && !g->closed) {
        /* The fleet's spend stays whole: a commit of a lease that holds
         * nothing adds the spend (owed until Redis is back). */
        qt_backend_lease l = t->lease;
        l.n_rate = 0;
        l.seq = 0;
        l.active = 1;
        l.day = (long)(qt_clock_wall_ms(g->clock) / 86400000ull);
        qt_backend_runner_commit(g->r, &l, 0, usd);
    }
    pthread_mutex_unlock(&g->mu);
}

void qt_backend_gate_release(qt_backend_gate *g, qt_gate_ticket *t)
{
    if (!t->active)
        return;
    t->active = 0;
    pthread_mutex_lock(&g->mu);
    if (t->shared) {
        if (!g->closed)
            qt_backend_runner_release(g->r, &t->lease);
        pthread_mutex_unlock(&g->mu);
        return;
    }
    qt_limiter_release(g->fb, &t->lres, now_of(g));
    if (t->has_bres && g->fbb)
        qt_budget_release(g->fbb, &t->bres, qt_clock_wall_ms(g->clock));
    g->fb_out--;
    pthread_mutex_unlock(&g->mu);
}

qt_err qt_backend_gate_control(qt_backend_gate *g, const char *op, const char *arg, const char *what,
                               double value)
{
    pthread_mutex_lock(&g->mu);
    qt_err r = g->closed ? QT_ERR_BACKEND : qt_backend_runner_control(g->r, op, arg, what, value);
    pthread_mutex_unlock(&g->mu);
    return r;
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
    pthread_mutex_lock(&g->mu);
    if (g->closed)
        *out = g->last_view;
    else
        qt_backend_runner_view(g->r, out);
    pthread_mutex_unlock(&g->mu);
}
