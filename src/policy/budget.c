/* budget.c: spend limits with reservations of worst-case cost.
 *
 * DESIGN
 * Three kinds of limit apply to every call: the run, the current UTC day,
 * and the call's workflow. Each keeps spent (committed) and reserved
 * (outstanding estimates), in integer nano-USD. A reservation is admitted
 * only when spent + reserved + estimate <= limit for every limit at once, and
 * nothing is taken unless all admit; since reserved already holds every
 * racing caller's estimate, the sum of what can still be committed never
 * passes a limit (actual <= estimate). Commit moves the reservation out of
 * reserved and the actual into spent; release only removes it.
 *
 * Events fire once per limit: warn when committed spend first reaches
 * warn_ratio * limit (checked at commit, so seeded prior spend shows at the
 * first commit of the day), exhausted when the limit first refuses. The
 * day's flags re-arm on a new UTC day.
 * Workflows live in a small array searched linearly: a run has a handful.
 */
#include "quotatop/budget.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUSD_PER_USD 1e9
#define MS_PER_DAY   86400000ULL

typedef struct {
    int64_t limit;       /* nano-USD, 0 = unlimited */
    int64_t spent;       /* committed */
    int64_t reserved;    /* outstanding estimates */
    int warned;          /* warn event fired */
    int exhausted;       /* exhausted event fired */
} limit;

typedef struct {
    char *name;
    limit lim;
    uint64_t calls, prompt_tokens, completion_tokens, refused;
} workflow;

struct qt_budget {
    limit run, day;
    uint64_t day_no;            /* UTC day that `day` counts */
    double warn_ratio;          /* <= 0 or > 1: no warnings */
    qt_on_exhausted on_exhausted;
    uint64_t outstanding;       /* live reservations */
    workflow *wf;
    size_t n_wf, cap_wf;
};

/* ---- money ----------------------------------------------------------------- */

static int valid_usd(double usd) { return isfinite(usd) && usd >= 0 && usd < 9e9; }

static int64_t nusd_nearest(double usd) { return (int64_t)llround(usd * NUSD_PER_USD); }

/* Rounds up, but not for the float noise of a value that is exact in nUSD
 * (0.02 * 1e9 = 20000000.000000004). */
static int64_t nusd_up(double usd)
{
    double v = usd * NUSD_PER_USD;
    int64_t r = (int64_t)llround(v);
    if ((double)r < v - 1e-3)
        r++;
    return r;
}

static double usd_of(int64_t nusd) { return (double)nusd / NUSD_PER_USD; }

/* "$1.00" for whole cents, else up to 9 decimals without trailing zeros. */
static void fmt_usd(char *buf, size_t len, int64_t nusd)
{
    if (nusd % 10000000 == 0) {
        snprintf(buf, len, "$%.2f", usd_of(nusd));
        return;
    }
    snprintf(buf, len, "$%.9f", usd_of(nusd));
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
}

double qt_budget_cost(double in_usd_per_mtok, double out_usd_per_mtok,
                      int64_t prompt_tokens, int64_t completion_tokens)
{
    double in = isfinite(in_usd_per_mtok) && in_usd_per_mtok > 0 ? in_usd_per_mtok : 0;
    double out = isfinite(out_usd_per_mtok) && out_usd_per_mtok > 0 ? out_usd_per_mtok : 0;
    double p = prompt_tokens > 0 ? (double)prompt_tokens : 0;
    double c = completion_tokens > 0 ? (double)completion_tokens : 0;
    return (in * p + out * c) / 1e6;
}

/* ---- limits ---------------------------------------------------------------- */

static int lim_fits(const limit *l, int64_t spent, int64_t est)
{
    return l->limit == 0 || spent + l->reserved + est <= l->limit;
}

static int lim_warn(limit *l, double ratio)
{
    if (l->limit == 0 || l->warned || ratio <= 0 || ratio > 1)
        return 0;
    if ((double)l->spent < ratio * (double)l->limit)
        return 0;
    l->warned = 1;
    return 1;
}

static void roll_day(qt_budget *b, uint64_t wall_ms)
{
    uint64_t d = wall_ms / MS_PER_DAY;
    if (d <= b->day_no)
        return;                      /* same day, or the clock stepped back */
    b->day_no = d;
    b->day.spent = 0;
    b->day.warned = b->day.exhausted = 0;
    /* day.reserved carries over: those calls will be committed today. */
}

/* ---- lifecycle --------------------------------------------------------------- */

qt_budget *qt_budget_new(double run_usd, double day_usd, double warn_ratio,
                         qt_on_exhausted on_exhausted)
{
    if (!valid_usd(run_usd) || !valid_usd(day_usd))
        return NULL;
    qt_budget *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->run.limit = nusd_nearest(run_usd);
    b->day.limit = nusd_nearest(day_usd);
    b->warn_ratio = isfinite(warn_ratio) ? warn_ratio : 0;
    b->on_exhausted = on_exhausted;
    return b;
}

void qt_budget_free(qt_budget *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_wf; i++)
        free(b->wf[i].name);
    free(b->wf);
    free(b);
}

qt_on_exhausted qt_budget_on_exhausted(const qt_budget *b)
{
    return b ? b->on_exhausted : QT_EXHAUSTED_REJECT;
}

static int wf_find(const qt_budget *b, const char *name)
{
    for (size_t i = 0; i < b->n_wf; i++)
        if (strcmp(b->wf[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Index of workflow name, created unlimited if new; -1 when out of memory. */
static int wf_get(qt_budget *b, const char *name)
{
    int i = wf_find(b, name);
    if (i >= 0)
        return i;
    if (b->n_wf == b->cap_wf) {
        size_t cap = b->cap_wf ? b->cap_wf * 2 : 8;
        workflow *nw = realloc(b->wf, cap * sizeof *nw);
        if (!nw)
            return -1;
        b->wf = nw;
        b->cap_wf = cap;
    }
    workflow *w = &b->wf[b->n_wf];
    memset(w, 0, sizeof *w);
    if (!(w->name = strdup(name)))
        return -1;
    return (int)b->n_wf++;
}

qt_err qt_budget_set_workflow(qt_budget *b, const char *name, double usd)
{
    if (!b || !name || !valid_usd(usd))
        return QT_ERR_INVALID;
    int i = wf_get(b, name);
    if (i < 0)
        return QT_ERR_NOMEM;
    b->wf[i].lim.limit = nusd_nearest(usd);
    return QT_OK;
}

qt_err qt_budget_add_prior_day_spend(qt_budget *b, uint64_t wall_ms, double usd)
{
    if (!b || !valid_usd(usd))
        return QT_ERR_INVALID;
    roll_day(b, wall_ms);
    if (wall_ms / MS_PER_DAY != b->day_no)
        return QT_ERR_INVALID;
    b->day.spent += nusd_nearest(usd);
    return QT_OK;
}

/* ---- reserve / commit / release ------------------------------------------------ */

static void refusal(char *buf, size_t len, const char *what, const limit *l,
                    int64_t spent, int64_t est)
{
    if (!buf || len == 0)
        return;
    char lim[48], sp[48], rs[48], es[48];
    fmt_usd(lim, sizeof lim, l->limit);
    fmt_usd(sp, sizeof sp, spent);
    fmt_usd(rs, sizeof rs, l->reserved);
    fmt_usd(es, sizeof es, est);
    snprintf(buf, len, "%s budget %s exhausted: spent %s + reserved %s + this request %s > %s",
             what, lim, sp, rs, es, lim);
}

qt_err qt_budget_reserve(qt_budget *b, const char *workflow_name, double est_usd,
                         uint64_t wall_ms, qt_budget_res *res,
                         char *reason, size_t reason_len, unsigned *events)
{
    if (res)
        res->active = 0;
    if (!b || !res || !valid_usd(est_usd))
        return QT_ERR_INVALID;
    if (!workflow_name)
        workflow_name = QT_BUDGET_DEFAULT_WORKFLOW;
    roll_day(b, wall_ms);
    int wi = wf_get(b, workflow_name);
    if (wi < 0)
        return QT_ERR_NOMEM;
    workflow *w = &b->wf[wi];
    int64_t est = nusd_up(est_usd);

    /* Check all three before taking anything. */
    limit *refused = NULL;
    const char *what = NULL;
    char wname[160];
    unsigned ev = 0;
    if (!lim_fits(&b->run, b->run.spent, est)) {
        refused = &b->run, what = "run", ev = QT_BUDGET_EV_EXHAUSTED_RUN;
    } else if (!lim_fits(&b->day, b->day.spent, est)) {
        refused = &b->day, what = "day", ev = QT_BUDGET_EV_EXHAUSTED_DAY;
    } else if (!lim_fits(&w->lim, w->lim.spent, est)) {
        snprintf(wname, sizeof wname, "workflow \"%.120s\"", w->name);
        refused = &w->lim, what = wname, ev = QT_BUDGET_EV_EXHAUSTED_WORKFLOW;
    }
    if (refused) {
        w->refused++;
        refusal(reason, reason_len, what, refused, refused->spent, est);
        if (!refused->exhausted) {
            refused->exhausted = 1;
            if (events)
                *events |= ev;
        }
        return QT_ERR_LIMIT;
    }
    b->run.reserved += est;
    b->day.reserved += est;
    w->lim.reserved += est;
    b->outstanding++;
    res->wf = wi;
    res->est_nusd = est;
    res->active = 1;
    return QT_OK;
}

static void unreserve(qt_budget *b, const qt_budget_res *res)
{
    b->run.reserved -= res->est_nusd;
    b->day.reserved -= res->est_nusd;
    b->wf[res->wf].lim.reserved -= res->est_nusd;
    if (b->day.reserved < 0)    /* cannot happen; keep the books sane anyway */
        b->day.reserved = 0;
    b->outstanding--;
}

static int res_ok(const qt_budget *b, const qt_budget_res *res)
{
    return b && res && res->active && res->wf >= 0 && (size_t)res->wf < b->n_wf
           && res->est_nusd >= 0 && b->outstanding > 0;
}

qt_err qt_budget_commit(qt_budget *b, qt_budget_res *res, double actual_usd,
                        int64_t prompt_tokens, int64_t completion_tokens,
                        uint64_t wall_ms, unsigned *events)
{
    if (!res_ok(b, res) || !valid_usd(actual_usd))
        return QT_ERR_INVALID;
    roll_day(b, wall_ms);
    unreserve(b, res);
    int64_t cost = nusd_nearest(actual_usd);
    workflow *w = &b->wf[res->wf];
    b->run.spent += cost;
    b->day.spent += cost;
    w->lim.spent += cost;
    w->calls++;
    w->prompt_tokens += prompt_tokens > 0 ? (uint64_t)prompt_tokens : 0;
    w->completion_tokens += completion_tokens > 0 ? (uint64_t)completion_tokens : 0;
    unsigned ev = 0;
    if (lim_warn(&b->run, b->warn_ratio)) ev |= QT_BUDGET_EV_WARN_RUN;
    if (lim_warn(&b->day, b->warn_ratio)) ev |= QT_BUDGET_EV_WARN_DAY;
    if (lim_warn(&w->lim, b->warn_ratio)) ev |= QT_BUDGET_EV_WARN_WORKFLOW;
    if (events)
        *events |= ev;
    res->active = 0;
    return QT_OK;
}

qt_err qt_budget_release(qt_budget *b, qt_budget_res *res, uint64_t wall_ms)
{
    if (!res_ok(b, res))
        return QT_ERR_INVALID;
    roll_day(b, wall_ms);
    unreserve(b, res);
    res->active = 0;
    return QT_OK;
}

int qt_budget_fits(const qt_budget *b, const char *workflow_name, double est_usd,
                   uint64_t wall_ms)
{
    if (!b || !valid_usd(est_usd))
        return 0;
    int64_t est = nusd_up(est_usd);
    int64_t day_spent = wall_ms / MS_PER_DAY > b->day_no ? 0 : b->day.spent;
    if (!lim_fits(&b->run, b->run.spent, est) || !lim_fits(&b->day, day_spent, est))
        return 0;
    int wi = wf_find(b, workflow_name ? workflow_name : QT_BUDGET_DEFAULT_WORKFLOW);
    return wi < 0 || lim_fits(&b->wf[wi].lim, b->wf[wi].lim.spent, est);
}

/* ---- snapshot ------------------------------------------------------------------ */

qt_err qt_budget_snapshot(const qt_budget *b, uint64_t wall_ms, qt_budget_snap *s)
{
    if (!b || !s)
        return QT_ERR_INVALID;
    memset(s, 0, sizeof *s);
    int new_day = wall_ms / MS_PER_DAY > b->day_no;
    s->run_limit_usd = usd_of(b->run.limit);
    s->run_spent_usd = usd_of(b->run.spent);
    s->run_reserved_usd = usd_of(b->run.reserved);
    s->day_limit_usd = usd_of(b->day.limit);
    s->day_spent_usd = new_day ? 0 : usd_of(b->day.spent);
    s->day_reserved_usd = usd_of(b->day.reserved);
    s->day = new_day ? wall_ms / MS_PER_DAY : b->day_no;
    s->warn_ratio = b->warn_ratio;
    s->on_exhausted = b->on_exhausted;
    s->outstanding = b->outstanding;
    if (b->n_wf == 0)
        return QT_OK;
    s->workflows = calloc(b->n_wf, sizeof *s->workflows);
    if (!s->workflows) {
        memset(s, 0, sizeof *s);
        return QT_ERR_NOMEM;
    }
    s->n_workflows = b->n_wf;
    for (size_t i = 0; i < b->n_wf; i++) {
        const workflow *w = &b->wf[i];
        qt_budget_wf_snap *o = &s->workflows[i];
        o->name = w->name;
        o->limit_usd = usd_of(w->lim.limit);
        o->spent_usd = usd_of(w->lim.spent);
        o->reserved_usd = usd_of(w->lim.reserved);
        o->calls = w->calls;
        o->prompt_tokens = w->prompt_tokens;
        o->completion_tokens = w->completion_tokens;
        o->refused = w->refused;
        o->warned = w->lim.warned;
    }
    return QT_OK;
}

void qt_budget_snap_free(qt_budget_snap *s)
{
    if (!s)
        return;
    free(s->workflows);
    s->workflows = NULL;
    s->n_workflows = 0;
}
