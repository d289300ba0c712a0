/* job_fsm.c: the transitions of one job's state machine (see job_fsm.h for
 * the diagram). Each public function is one event; the steps inside are
 * named after the job's life: route (which model and provider), admit
 * (limiter, budget, circuit permits, all or nothing), settle (reconcile the
 * reservations with what the upstream did), decide (retry after a wait,
 * fall back, or finish).
 *
 * DESIGN
 * Everything here is a function of the job's fsm_job, the event and now
 * over the policy objects of fsm_env. Nothing reads a clock, takes a lock,
 * or does I/O; events and metrics are appended when env has them (their
 * modules lock internally). The driver holds the engine lock around every
 * call and carries out the returned action.
 *
 * Priority between jobs is the driver's: it offers jobs in queue order
 * (aging included) and marks in env->blocked the limiter keys a more
 * urgent job waits for; admit refuses a job that needs such a key, so
 * freed capacity goes to the most urgent job that needs it and a job that
 * waits never blocks one that needs other keys.
 */
#include "job_fsm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* xorshift64*: jitter for backoff and weighted provider choice. */
static uint64_t next_rand(fsm_env *env)
{
    uint64_t x = *env->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *env->rng = x;
    return x * 2685821657736338717ull;
}

__attribute__((format(printf, 8, 9)))
static void event(fsm_env *env, uint64_t now, uint64_t wall, qt_event_type type, const char *model,
                  const char *provider, const qt_job *job, const char *fmt, ...)
{
    if (!env->events)
        return;
    qt_event ev;
    qt_event_init(&ev, type, now, wall);
    qt_event_subject(&ev, model, provider, job->workflow, job->id);
    char msg[QT_EVENT_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qt_event_msgf(&ev, "%s", msg);
    qt_events_add(env->events, &ev);
}

static void circuit_event(fsm_env *env, uint64_t now, uint64_t wall, const char *what,
                          const qt_circuit_transition *tr, fsm_action *out)
{
    if (!tr->changed)
        return;
    out->capacity_changed = 1;
    if (env->metrics)
        qt_metrics_count(env->metrics, QT_COUNTER_CIRCUIT_TRANSITIONS, 1);
    if (!env->events)
        return;
    qt_event ev;
    qt_event_init(&ev, QT_EV_CIRCUIT, now, wall);
    qt_event_transition(&ev, qt_circuit_state_name(tr->from), qt_circuit_state_name(tr->to),
                        tr->reason);
    qt_event_subject(&ev, what, NULL, NULL, NULL);
    qt_event_msgf(&ev, "circuit %s %s -> %s (%s)", what, qt_circuit_state_name(tr->from),
                  qt_circuit_state_name(tr->to), tr->reason);
    qt_events_add(env->events, &ev);
}

static int wf_index(fsm_env *env, const qt_job *job)
{
    return qt_metrics_workflow_index(env->metrics, job->workflow);
}

int fsm_max_tokens(const qt_config *cfg, const qt_job *job, int mi)
{
    return job->max_tokens > 0 ? job->max_tokens : cfg->models[mi].default_max_tokens;
}

int64_t fsm_est_prompt(const fsm_env *env, const qt_job *job, int mi)
{
    int64_t t = qt_estimator_estimate(env->est, env->cfg->models[mi].name, job->prompt_chars);
    /* Providers add a few tokens of framing per message; estimate high. */
    return t + 4 * job->n_messages + 3;
}

/* Worst-case cost of the job on model mi, for a prompt estimate. */
static double est_cost(fsm_env *env, const qt_job *job, int mi, int64_t prompt)
{
    const qt_model_cfg *m = &env->cfg->models[mi];
    return qt_model_worst_cost_usd(m, (long)prompt, fsm_max_tokens(env->cfg, job, mi));
}

int fsm_key_held(const fsm_env *env, int key, uint64_t now, uint64_t *until)
{
    qt_limiter_stats st;
    if (qt_limiter_key_stats(env->limiter, key, now, &st) != QT_OK)
        return 0;
    if (st.held_until_ms > now) {
        *until = st.held_until_ms;
        return 1;
    }
    return 0;
}

void fsm_job_init(fsm_job *j, const qt_config *cfg, const qt_job *job)
{
    memset(j, 0, sizeof *j);
    j->state = QT_JOB_QUEUED;
    j->mi = j->pi = -1;
    j->c.last_k = -1;
    j->c.n = qt_config_chain(cfg, job->model_idx, j->c.chain, MAX_CHAIN, &j->c.has_cache);
    snprintf(j->c.last_error, sizeof j->c.last_error, "no model of the chain could take the job");
}

static void set_state(fsm_job *j, qt_job_state s, const char *on, uint64_t until)
{
    j->state = s;
    snprintf(j->wait_on, sizeof j->wait_on, "%s", on ? on : "");
    j->until = until;
}

/* ------------------------------------------------------------ route */

enum route_result { ROUTE_GO, ROUTE_WAIT, ROUTE_END, ROUTE_REJECT };

/* Marks chain position k exhausted; why says what the next model stands in
 * for (the fallback is recorded when the job is sent elsewhere). */
static void give_up_model(job_ctx *c, size_t k, const char *why)
{
    c->exhausted[k] = 1;
    snprintf(c->skip_reason, sizeof c->skip_reason, "%s", why);
}

/* Records a fallback when the job goes to chain position k although an
 * earlier model was meant to take it. */
static void note_fallback(fsm_env *env, fsm_job *j, const qt_job *job, size_t k, uint64_t now,
                          uint64_t wall)
{
    job_ctx *c = &j->c;
    size_t from_k = c->last_k >= 0 ? (size_t)c->last_k : 0;
    if (k == from_k)
        return;
    const char *from = env->cfg->models[c->chain[from_k]].name;
    const char *to = env->cfg->models[c->chain[k]].name;
    if (env->metrics)
        qt_metrics_record_fallback(env->metrics, c->chain[from_k], wf_index(env, job));
    if (!env->events)
        return;
    qt_event ev;
    qt_event_init(&ev, QT_EV_FALLBACK, now, wall);
    qt_event_subject(&ev, from, NULL, job->workflow, job->id);
    qt_event_transition(&ev, from, to, c->skip_reason);
    qt_event_msgf(&ev, "fallback %s -> %s (%s)", from, to, c->skip_reason);
    qt_events_add(env->events, &ev);
}

/* Picks a provider of model mi whose circuit admits and that is not held,
 * by weight. Returns its index or -1 (then *until is when one may return). */
/* 1 when a model or provider cannot take a request now: its circuit does
 * not admit (*t = the next probe) or its key is held after a 429 (*t = the
 * hold's end); why names which. Pure. */
static int blocked(const fsm_env *env, const qt_circuit *circuit, int key, uint64_t now, uint64_t *t,
                   const char **why)
{
    if (!qt_circuit_peek(circuit, now)) {
        *t = qt_circuit_next_probe_ms(circuit, now);
        *why = "circuit open";
        return 1;
    }
    if (fsm_key_held(env, key, now, t)) {
        *why = "cooling down after 429";
        return 1;
    }
    return 0;
}

static int pick_provider(fsm_env *env, int mi, uint64_t now, uint64_t *until)
{
    const qt_model_cfg *m = &env->cfg->models[mi];
    int ok[16];
    double weights[16], total = 0;
    size_t n = 0;
    for (size_t k = 0; k < m->n_providers && n < 16; k++) {
        int pi = m->provider_idx[k];
        provider_rt *p = &env->providers[pi];
        uint64_t t;
        const char *why;
        if (blocked(env, p->circuit, p->key, now, &t, &why)) {
            if (t < *until)
                *until = t;
            continue;
        }
        ok[n] = pi;
        weights[n] = p->cfg->weight > 0 ? p->cfg->weight : 0;
        total += weights[n];
        n++;
    }
    if (n == 0)
        return -1;
    if (n == 1 || total <= 0)
        return ok[0];
    double r = (double)(next_rand(env) >> 11) / 9007199254740992.0 * total;
    for (size_t i = 0; i < n; i++) {
        if (r < weights[i])
            return ok[i];
        r -= weights[i];
    }
    return ok[n - 1];
}

/* Whether model mi can take the job at all: its context window and the
 * budget. 1 yes; 0 no (given up); -1 the budget refuses with on_exhausted
 * reject. */
static int model_fits(fsm_env *env, fsm_job *j, const qt_job *job, size_t k, uint64_t now,
                      uint64_t wall)
{
    job_ctx *c = &j->c;
    int mi = c->chain[k];
    const qt_model_cfg *m = &env->cfg->models[mi];
    char why[200];
    if (fsm_cannot_carry(env->cfg, job, mi, why, sizeof why)) {
        /* Never a retryable error: skip the model, say why. */
        snprintf(c->last_error, sizeof c->last_error, "%s", why);
        event(env, now, wall, QT_EV_FALLBACK, m->name, NULL, job, "job %s skips %s: %.150s", job->id,
              m->name, why);
        c->budget_refused = 0;
        c->uncarried++;
        give_up_model(c, k, "cannot carry the request");
        return 0;
    }
    int64_t prompt = fsm_est_prompt(env, job, mi);
    int mt = fsm_max_tokens(env->cfg, job, mi);
    if (m->context_window > 0 && prompt + mt > m->context_window) {
        snprintf(c->last_error, sizeof c->last_error,
                 "%s: prompt (~%lld tokens) + max_tokens %d exceeds its context window %ld", m->name,
                 (long long)prompt, mt, m->context_window);
        c->budget_refused = 0;
        give_up_model(c, k, "context window");
        return 0;
    }
    double cost = est_cost(env, job, mi, prompt);
    if (qt_budget_fits(env->budget, job->workflow, cost, wall))
        return 1;
    qt_budget_res probe;
    unsigned evs = 0;
    char reason[256] = "";
    if (qt_budget_reserve(env->budget, job->workflow, cost, wall, &probe, reason, sizeof reason,
                          &evs) == QT_OK)
        qt_budget_release(env->budget, &probe, wall);
    if (evs & (QT_BUDGET_EV_EXHAUSTED_RUN | QT_BUDGET_EV_EXHAUSTED_DAY
               | QT_BUDGET_EV_EXHAUSTED_WORKFLOW))
        event(env, now, wall, QT_EV_BUDGET_EXHAUSTED, m->name, NULL, job, "budget exhausted: %.120s",
              reason);
    snprintf(c->last_error, sizeof c->last_error, "%s: %s", m->name, reason);
    if (env->cfg->budget.on_exhausted == QT_EXHAUSTED_REJECT)
        return -1;
    c->budget_refused = 1;
    give_up_model(c, k, "budget");
    return 0;
}

int fsm_cache_answers_now(const fsm_env *env, const qt_job *job, uint64_t now)
{
    int chain[MAX_CHAIN], has_cache = 0;
    size_t n = qt_config_chain(env->cfg, job->model_idx, chain, MAX_CHAIN, &has_cache);
    if (!has_cache || job->endpoint == QT_ENDPOINT_EMBEDDINGS)
        return 0;
    for (size_t k = 0; k < n; k++) {
        const model_rt *mr = &env->models[chain[k]];
        uint64_t t;
        const char *why;
        if (blocked(env, mr->circuit, mr->key, now, &t, &why))
            continue;
        const qt_model_cfg *m = &env->cfg->models[chain[k]];
        for (size_t q = 0; q < m->n_providers; q++) {
            const provider_rt *p = &env->providers[m->provider_idx[q]];
            if (!blocked(env, p->circuit, p->key, now, &t, &why))
                return 0;   /* this model can go: route takes it, not the cache */
        }
    }
    qt_cache_answer ca;
    if (!qt_cache_get_answer(env->cache, qt_cache_key(job->model, job->body), &ca))
        return 0;
    qt_cache_answer_free(&ca);
    return 1;
}

/* Step "route": the first model of the chain that fits, whose circuit
 * admits, that is not cooling down, with a provider available.
 * ROUTE_GO: *k_out, *pi_out set. ROUTE_WAIT: nothing available before
 * *until. ROUTE_END: every model is used up. ROUTE_REJECT: the budget
 * refuses (on_exhausted reject). */
static int route(fsm_env *env, fsm_job *j, const qt_job *job, uint64_t now, uint64_t wall,
                 size_t *k_out, int *pi_out, uint64_t *until)
{
    job_ctx *c = &j->c;
    *until = UINT64_MAX;
    int any_left = 0;
    for (size_t k = 0; k < c->n; k++) {
        if (c->exhausted[k])
            continue;
        int fit = model_fits(env, j, job, k, now, wall);
        if (fit < 0)
            return ROUTE_REJECT;
        if (!fit)
            continue;
        any_left = 1;
        int mi = c->chain[k];
        model_rt *mr = &env->models[mi];
        uint64_t t;
        const char *why;
        if (blocked(env, mr->circuit, mr->key, now, &t, &why)) {
            if (t < *until)
                *until = t;
            snprintf(c->skip_reason, sizeof c->skip_reason, "%s", why);
            continue;
        }
        int pi = pick_provider(env, mi, now, until);
        if (pi < 0) {
            snprintf(c->skip_reason, sizeof c->skip_reason, "no provider available");
            continue;
        }
        *k_out = k;
        *pi_out = pi;
        return ROUTE_GO;
    }
    return any_left ? ROUTE_WAIT : ROUTE_END;
}

/* A chain ending in @cache whose models are used up or unavailable: the
 * cached answer of this request, when there is one, is the job's (1, out
 * filled, the job DONE); else 0 and nothing changed. */
static int answer_from_cache(fsm_env *env, fsm_job *j, const qt_job *job, uint64_t now, uint64_t wall,
                             fsm_action *out)
{
    qt_cache_answer ca;
    if (!j->c.has_cache || !qt_cache_get_answer(env->cache, qt_cache_key(job->model, job->body), &ca))
        return 0;
    out->kind = FSM_FINISH;
    out->capacity_changed = 1;
    set_state(j, QT_JOB_DONE, NULL, 0);
    if (env->metrics)
        qt_metrics_count(env->metrics, QT_COUNTER_CACHE_HITS, 1);
    event(env, now, wall, QT_EV_CACHE_HIT, job->model, NULL, job, "job %s answered from cache (%s)",
          job->id, ca.model_used);
    out->status = QT_STATUS_OK;
    out->model_used = out->owned_model = ca.model_used;
    out->provider = QT_CACHE_MODEL;
    out->cached = 1;
    out->content = out->owned_content = ca.content;
    out->owned_finish = ca.finish_reason;      /* the original's, tool calls and all */
    out->owned_tool_calls = ca.tool_calls;
    out->error[0] = 0;
    return 1;
}

/* The chain is used up (or the budget refuses): the cache may answer, else
 * the job fails or is rejected. */
static void finish_unroutable(fsm_env *env, fsm_job *j, const qt_job *job, int r, uint64_t now,
                              uint64_t wall, fsm_action *out)
{
    job_ctx *c = &j->c;
    if (r == ROUTE_END && answer_from_cache(env, j, job, now, wall, out))
        return;
    out->kind = FSM_FINISH;
    out->capacity_changed = 1;
    set_state(j, QT_JOB_DONE, NULL, 0);
    int rejected = r == ROUTE_REJECT || c->budget_refused;
    out->status = rejected ? QT_STATUS_REJECTED : QT_STATUS_FAILED;
    snprintf(out->error, sizeof out->error, "%s%s", c->last_error,
             rejected || c->n <= 1 ? "" : " (every model of the chain was tried)");
    out->http_status = c->uncarried == (int)c->n ? 400 : c->last_status;
}

/* ------------------------------------------------------------ admit */

/* The key of keys[] that makes a reservation wait longest. */
static int blocking_key_of(fsm_env *env, const int keys[2], int64_t tokens, uint64_t now)
{
    uint64_t w0 = qt_limiter_wait_ms(env->limiter, &keys[0], 1, tokens, now);
    uint64_t w1 = qt_limiter_wait_ms(env->limiter, &keys[1], 1, tokens, now);
    return w1 > w0 ? keys[1] : keys[0];
}

enum admit_result { ADMIT_OK, ADMIT_WAIT, ADMIT_AGAIN };

/* Step "admit": the limiter (both keys), the worst-case cost and both
 * circuits' permits, all or nothing. ADMIT_WAIT sets the WAIT_KEY action;
 * ADMIT_AGAIN: the budget or a circuit refused, route again. */
static int admit(fsm_env *env, fsm_job *j, const qt_job *job, size_t k, int pi, uint64_t now,
                 uint64_t wall, fsm_action *out)
{
    int mi = j->c.chain[k];
    model_rt *mr = &env->models[mi];
    provider_rt *pr = &env->providers[pi];
    int keys[2] = { mr->key, pr->key };
    int64_t prompt_est = fsm_est_prompt(env, job, mi);
    int64_t est_tokens = prompt_est + fsm_max_tokens(env->cfg, job, mi);
    j->mi = mi;
    j->pi = pi;
    char on[96];
    for (int b = 0; b < 2; b++) {
        if (env->blocked && env->blocked[keys[b]]) {
            snprintf(on, sizeof on, "%.60s (a more urgent job first)",
                     qt_limiter_key_name(env->limiter, keys[b]));
            set_state(j, QT_JOB_WAIT_KEY, on, 0);
            out->kind = FSM_WAIT_KEY;
            out->key = keys[b];
            out->until = 0;
            return ADMIT_WAIT;
        }
    }
    uint64_t earliest = 0;
    if (qt_limiter_reserve(env->limiter, keys, 2, est_tokens, now, &j->lres, &earliest) != QT_OK) {
        int key = blocking_key_of(env, keys, est_tokens, now);
        if (env->blocked)
            env->blocked[key] = 1;
        uint64_t until = earliest == QT_LIMITER_NEVER ? 0 : earliest;
        set_state(j, QT_JOB_WAIT_KEY, qt_limiter_key_name(env->limiter, key), until);
        out->kind = FSM_WAIT_KEY;
        out->key = key;
        out->until = until;
        return ADMIT_WAIT;
    }
    unsigned bev = 0;
    char reason[256] = "";
    if (qt_budget_reserve(env->budget, job->workflow, est_cost(env, job, mi, prompt_est), wall,
                          &j->bres, reason, sizeof reason, &bev) != QT_OK) {
        qt_limiter_release(env->limiter, &j->lres, now);
        return ADMIT_AGAIN;   /* route will see the refusal and decide */
    }
    qt_circuit_transition tr;
    memset(&tr, 0, sizeof tr);
    memset(&j->mperm, 0, sizeof j->mperm);
    memset(&j->pperm, 0, sizeof j->pperm);
    int m_ok = qt_circuit_allow(mr->circuit, now, &j->mperm, &tr);
    circuit_event(env, now, wall, mr->cfg->name, &tr, out);
    memset(&tr, 0, sizeof tr);
    int p_ok = m_ok && qt_circuit_allow(pr->circuit, now, &j->pperm, &tr);
    circuit_event(env, now, wall, pr->cfg->name, &tr, out);
    if (!m_ok || !p_ok) {
        if (m_ok)
            qt_circuit_record(mr->circuit, &j->mperm, QT_CIRCUIT_IGNORED, now, &tr);
        qt_limiter_release(env->limiter, &j->lres, now);
        qt_budget_release(env->budget, &j->bres, wall);
        out->capacity_changed = 1;
        return ADMIT_AGAIN;
    }
    j->prompt_est = prompt_est;
    j->est_tokens = est_tokens;
    j->k = k;
    return ADMIT_OK;
}

void fsm_dispatch(fsm_env *env, fsm_job *j, const qt_job *job, uint64_t now, uint64_t wall,
                  fsm_action *out)
{
    memset(out, 0, sizeof *out);
    job_ctx *c = &j->c;
    if (now < c->not_before) {
        set_state(j, QT_JOB_WAIT_BACKOFF, j->wait_on[0] ? j->wait_on : "retry", c->not_before);
        out->kind = FSM_WAIT_TIMER;
        out->until = c->not_before;
        return;
    }
    for (int tries = 0; tries < 4; tries++) {
        size_t k = 0;
        int pi = -1;
        uint64_t until;
        int r = route(env, j, job, now, wall, &k, &pi, &until);
        if (r == ROUTE_REJECT || r == ROUTE_END) {
            finish_unroutable(env, j, job, r, now, wall, out);
            return;
        }
        /* Every model of a chain ending in @cache is unavailable (circuit
         * open, cooling down after a 429): a cached answer now beats a wait
         * for the probe. */
        if (r == ROUTE_WAIT && answer_from_cache(env, j, job, now, wall, out))
            return;
        if (r == ROUTE_WAIT) {
            if (until == UINT64_MAX || until <= now)
                until = now + 1000;
            set_state(j, QT_JOB_WAIT_PROBE, c->skip_reason, until);
            out->kind = FSM_WAIT_TIMER;
            out->until = until;
            return;
        }
        int a = admit(env, j, job, k, pi, now, wall, out);
        if (a == ADMIT_WAIT)
            return;
        if (a == ADMIT_AGAIN)
            continue;
        model_rt *mr = &env->models[j->mi];
        provider_rt *pr = &env->providers[j->pi];
        note_fallback(env, j, job, k, now, wall);
        c->last_k = (int)k;
        c->attempts++;
        mr->in_flight++;
        pr->in_flight++;
        if (c->attempts == 1)   /* retries do not feed the budget that limits them */
            qt_retry_budget_record_request(pr->rbudget, now);
        set_state(j, QT_JOB_IN_FLIGHT, NULL, 0);
        out->kind = FSM_SEND;
        return;
    }
    /* The budget or a circuit refused every time: look again shortly. */
    set_state(j, QT_JOB_WAIT_PROBE, "admission refused", now + 50);
    out->kind = FSM_WAIT_TIMER;
    out->until = now + 50;
}

void fsm_unadmit(fsm_env *env, fsm_job *j, uint64_t now, uint64_t wall, const char *on, uint64_t until)
{
    model_rt *mr = &env->models[j->mi];
    provider_rt *pr = &env->providers[j->pi];
    qt_limiter_release(env->limiter, &j->lres, now);
    qt_budget_release(env->budget, &j->bres, wall);
    qt_circuit_transition tr;
    memset(&tr, 0, sizeof tr);
    qt_circuit_record(mr->circuit, &j->mperm, QT_CIRCUIT_IGNORED, now, &tr);
    memset(&tr, 0, sizeof tr);
    qt_circuit_record(pr->circuit, &j->pperm, QT_CIRCUIT_IGNORED, now, &tr);
    mr->in_flight--;
    pr->in_flight--;
    if (j->c.attempts > 0)
        j->c.attempts--;
    set_state(j, on ? QT_JOB_WAIT_KEY : QT_JOB_ROUTED, on, until);
}

/* ------------------------------------------------------------ settle */

/* Converts what the response said about limits into limiter feedback. */
static void feed_limits(fsm_env *env, int key, const qt_provider_limits *l, uint64_t now)
{
    qt_limit_feedback fb = { -1, -1, 0, 0 };
    /* A reset is the upstream's number: no further than max_retry_after_ms,
     * so "remaining 0, reset 999999999 s" cannot hold the key for good. */
    qt_retry_policy pol = { .max_retry_after_ms = env->cfg->retry.max_retry_after_ms };
    if (l->requests.remaining >= 0 && l->requests.reset_ms >= 0) {
        fb.remaining_requests = l->requests.remaining;
        fb.reset_requests_ms = now + (uint64_t)qt_retry_hold_cap_ms(&pol, l->requests.reset_ms);
    }
    const qt_limit_window *tw = l->tokens.remaining >= 0 ? &l->tokens : &l->input_tokens;
    if (tw->remaining >= 0 && tw->reset_ms >= 0) {
        fb.remaining_tokens = tw->remaining;
        fb.reset_tokens_ms = now + (uint64_t)qt_retry_hold_cap_ms(&pol, tw->reset_ms);
    }
    if (fb.remaining_requests >= 0 || fb.remaining_tokens >= 0)
        qt_limiter_feedback(env->limiter, key, &fb, now);
}

/* An ok answer: the limiter keeps prompt + max_tokens (what providers count
 * and do not refund), the budget is charged the actual cost, the estimator
 * and the cache learn. Returns the cost. */
static double settle_ok(fsm_env *env, fsm_job *j, const qt_job *job, const fsm_attempt *a,
                        uint64_t now, uint64_t wall)
{
    model_rt *mr = &env->models[j->mi];
    long pt = a->res.prompt_tokens, ct = a->res.completion_tokens;
    int64_t charged = pt + fsm_max_tokens(env->cfg, job, j->mi);
    qt_limiter_commit(env->limiter, &j->lres, charged > pt + ct ? charged : pt + ct, now);
    double actual = fsm_cost(mr->cfg, &a->res);
    unsigned bev = 0;
    qt_budget_commit(env->budget, &j->bres, actual, pt, ct, wall, &bev);
    j->cost_usd += actual;
    int allowed = fsm_max_tokens(env->cfg, job, j->mi);
    if (allowed > 0 && ct > allowed) {
        /* Recorded as reported (the money is spent), but said loudly: the
         * reservation assumed at most max_tokens, so a limit may now be
         * passed; the budget then refuses everything after it. */
        env->overuse_calls++;
        snprintf(env->overuse_cause, sizeof env->overuse_cause,
                 "%.50s reported %ld completion tokens for job %.50s (max_tokens %d)",
                 mr->cfg->name, ct, job->id, allowed);
        event(env, now, wall, QT_EV_BUDGET_WARN, mr->cfg->name, NULL, job,
              "usage above the request: %s, billed $%.6f", env->overuse_cause, actual);
    }
    if (bev & (QT_BUDGET_EV_WARN_RUN | QT_BUDGET_EV_WARN_DAY | QT_BUDGET_EV_WARN_WORKFLOW)) {
        const char *which = bev & QT_BUDGET_EV_WARN_RUN ? "run" : bev & QT_BUDGET_EV_WARN_DAY ? "day"
                                                                                            : "workflow";
        event(env, now, wall, QT_EV_BUDGET_WARN, mr->cfg->name, NULL, job,
              "%s budget passed %.0f%% (workflow %s)", which, env->cfg->budget.warn_ratio * 100,
              job->workflow);
    }
    qt_estimator_observe(env->est, mr->cfg->name, job->prompt_chars, pt > 4 ? pt : 0);
    long latency = a->resp.elapsed_ms;
    if (env->metrics) {
        qt_metrics_request mreq = { j->mi, j->pi, wf_index(env, job), QT_OUTCOME_OK,
                                    (uint64_t)(latency > 0 ? latency : 0), (uint64_t)pt, (uint64_t)ct,
                                    actual,
                                    (uint64_t)(a->res.cached_tokens > 0 ? a->res.cached_tokens : 0),
                                    (uint64_t)(a->res.cache_write_tokens > 0 ? a->res.cache_write_tokens : 0) };
        qt_metrics_record_request(env->metrics, &mreq, now);
    }
    /* An embeddings answer is vectors, which the cache does not keep. */
    if (j->c.has_cache && job->endpoint != QT_ENDPOINT_EMBEDDINGS)
        qt_cache_put_answer(env->cache, qt_cache_key(job->model, job->body), a->res.content, mr->cfg->name,
                            a->res.finish_reason && a->res.finish_reason[0] ? a->res.finish_reason : NULL,
                            a->res.tool_calls);
    return actual;
}

/* Step "settle": gives back or commits the reservations and records the
 * circuits' outcomes. */
static void settle(fsm_env *env, fsm_job *j, const fsm_attempt *a, uint64_t now, uint64_t wall,
                   fsm_action *out)
{
    model_rt *mr = &env->models[j->mi];
    provider_rt *pr = &env->providers[j->pi];
    const qt_retry_verdict *v = &a->verdict;
    if (v->cls != QT_RETRY_OK) {
        if (a->built && a->resp.transport == QT_HTTP_CONNECT) {
            qt_limiter_release(env->limiter, &j->lres, now);   /* never reached the provider */
        } else {
            /* It reached the provider (or may have): the request counts,
             * the tokens were not consumed, nothing is billed. */
            qt_limiter_commit(env->limiter, &j->lres,
                              a->resp.transport == QT_HTTP_TIMEOUT ? j->est_tokens : 0, now);
        }
        qt_budget_release(env->budget, &j->bres, wall);
    }
    qt_circuit_outcome co = v->cls == QT_RETRY_OK ? QT_CIRCUIT_SUCCESS
                            : v->upstream_failure ? QT_CIRCUIT_FAILURE
                            : v->rate_limited     ? QT_CIRCUIT_IGNORED
                            : a->built            ? QT_CIRCUIT_SUCCESS
                                                  : QT_CIRCUIT_IGNORED;
    qt_circuit_transition tr;
    memset(&tr, 0, sizeof tr);
    qt_circuit_record(mr->circuit, &j->mperm, co, now, &tr);
    circuit_event(env, now, wall, mr->cfg->name, &tr, out);
    /* The provider's breaker judges the provider: only failures to reach
     * it (timeouts, connection errors) count against it. An HTTP answer,
     * even a 5xx about one model, shows the provider is up. */
    qt_circuit_outcome pco = co;
    if (co == QT_CIRCUIT_FAILURE && a->resp.transport == QT_HTTP_OK)
        pco = QT_CIRCUIT_SUCCESS;
    memset(&tr, 0, sizeof tr);
    qt_circuit_record(pr->circuit, &j->pperm, pco, now, &tr);
    circuit_event(env, now, wall, pr->cfg->name, &tr, out);
}

/* ------------------------------------------------------------ decide */

/* Step "retry or fall back" for a retryable failure: wait as the upstream
 * asks, else back off with jitter; a 429 holds the model's key instead
 * (every job of that model waits, not only this one). */
static void decide_retry(fsm_env *env, fsm_job *j, const qt_job *job, const fsm_attempt *a,
                         uint64_t now, uint64_t wall, fsm_action *out)
{
    job_ctx *c = &j->c;
    model_rt *mr = &env->models[j->mi];
    provider_rt *pr = &env->providers[j->pi];
    qt_retry_verdict v = a->verdict;
    c->tries[j->k]++;
    qt_retry_policy pol = { env->cfg->retry.max_attempts, env->cfg->retry.base_ms,
                            env->cfg->retry.cap_ms, env->cfg->retry.max_retry_after_ms };
    qt_retry_hints h;
    qt_retry_hints_init(&h);
    h.now_wall_ms = (int64_t)wall;
    if (a->limits.retry_after_ms >= 0)
        h.retry_after_ms = a->limits.retry_after_ms;
    if (v.rate_limited) {
        if (a->limits.requests.remaining == 0)
            h.reset_requests_ms = a->limits.requests.reset_ms;
        if (a->limits.tokens.remaining == 0)
            h.reset_tokens_ms = a->limits.tokens.reset_ms;
    }
    int64_t wait = 0;
    qt_retry_decision d = qt_retry_wait_ms(&pol, c->tries[j->k], &h, next_rand(env), &wait);
    if (d == QT_RETRY_WAIT && !v.rate_limited && !qt_retry_budget_try_spend(pr->rbudget, now)) {
        d = QT_RETRY_MOVE_ON;
        v.reason = "retry budget spent";
    }
    out->kind = FSM_REDISPATCH;
    set_state(j, QT_JOB_ROUTED, NULL, 0);
    if (d != QT_RETRY_WAIT) {
        /* A 429 asking for more than max_retry_after_ms: this job moves
         * down the chain, and the key cools down for the capped wait so
         * the next jobs do not earn the same 429. */
        if (d == QT_RETRY_MOVE_ON && v.rate_limited)
            qt_limiter_hold(env->limiter, mr->key, now + (uint64_t)qt_retry_hold_cap_ms(&pol, wait));
        give_up_model(c, j->k, d == QT_RETRY_MOVE_ON ? v.reason : "attempts used up");
        return;
    }
    if (env->metrics)
        qt_metrics_record_retry(env->metrics, j->mi, j->pi, wf_index(env, job));
    if (env->events) {
        qt_event ev;
        qt_event_init(&ev, v.rate_limited ? QT_EV_RATE_LIMITED : QT_EV_RETRY, now, wall);
        qt_event_subject(&ev, mr->cfg->name, pr->cfg->name, job->workflow, job->id);
        ev.http_status = a->resp.status;
        ev.attempt = c->tries[j->k];
        ev.wait_ms = (uint64_t)wait;
        qt_event_transition(&ev, NULL, NULL, v.reason);
        qt_event_msgf(&ev, "%s %s: %s, retry %d in %lldms", v.rate_limited ? "429" : "retry",
                      mr->cfg->name, v.reason, c->tries[j->k], (long long)wait);
        qt_events_add(env->events, &ev);
    }
    if (v.rate_limited) {
        qt_limiter_hold(env->limiter, mr->key, now + (uint64_t)wait);   /* cooldown */
        return;
    }
    c->not_before = now + (uint64_t)wait;
    char on[96];
    snprintf(on, sizeof on, "retry %d of %.60s", c->tries[j->k], mr->cfg->name);
    set_state(j, QT_JOB_WAIT_BACKOFF, on, c->not_before);
    out->kind = FSM_WAIT_TIMER;
    out->until = c->not_before;
}

static void finish_failed(fsm_job *j, const qt_job *job, const fsm_attempt *a, fsm_action *out)
{
    job_ctx *c = &j->c;
    int gone = a->client_gone || job->cancel_requested;
    out->kind = FSM_FINISH;
    out->status = gone ? QT_STATUS_CANCELLED : QT_STATUS_FAILED;
    snprintf(out->error, sizeof out->error, "%s", c->last_error);
    out->http_status = c->last_status;
    set_state(j, QT_JOB_DONE, NULL, 0);
}

void fsm_done(fsm_env *env, fsm_job *j, const qt_job *job, const fsm_attempt *a, uint64_t now,
              uint64_t wall, fsm_action *out)
{
    memset(out, 0, sizeof *out);
    out->capacity_changed = 1;
    job_ctx *c = &j->c;
    model_rt *mr = &env->models[j->mi];
    provider_rt *pr = &env->providers[j->pi];
    mr->in_flight--;
    pr->in_flight--;
    if (a->built && a->resp.transport == QT_HTTP_ABORTED && !a->streamed) {
        /* Stopped by shutdown or cancel: no verdict on anyone. */
        qt_circuit_transition tr;
        qt_limiter_commit(env->limiter, &j->lres, j->est_tokens, now);
        qt_budget_release(env->budget, &j->bres, wall);
        qt_circuit_record(mr->circuit, &j->mperm, QT_CIRCUIT_IGNORED, now, &tr);
        qt_circuit_record(pr->circuit, &j->pperm, QT_CIRCUIT_IGNORED, now, &tr);
        out->kind = FSM_FINISH;
        out->status = QT_STATUS_CANCELLED;
        snprintf(out->error, sizeof out->error, "%s",
                 job->cancel_requested ? QT_CANCELLED_BY_OPERATOR : "cancelled");
        set_state(j, QT_JOB_DONE, NULL, 0);
        return;
    }
    c->last_status = a->resp.status;
    feed_limits(env, mr->key, &a->limits, now);
    double actual = 0;
    if (a->verdict.cls == QT_RETRY_OK)
        actual = settle_ok(env, j, job, a, now, wall);
    settle(env, j, a, now, wall, out);
    if (a->verdict.cls == QT_RETRY_OK) {
        out->kind = FSM_FINISH;
        out->status = QT_STATUS_OK;
        out->model_used = mr->cfg->name;
        out->provider = pr->cfg->name;
        out->prompt_tokens = a->res.prompt_tokens;
        out->completion_tokens = a->res.completion_tokens;
        out->cost_usd = actual;
        out->latency_ms = a->resp.elapsed_ms;
        out->content = a->res.content;
        out->http_status = a->resp.status;
        out->billed = 1;
        set_state(j, QT_JOB_DONE, NULL, 0);
        return;
    }
    /* Not ok: remember why, count it, decide. */
    if (a->built)
        snprintf(c->last_error, sizeof c->last_error, "%.60s via %.60s: %.170s", mr->cfg->name,
                 pr->cfg->name, a->err[0] ? a->err : a->verdict.reason);
    else
        snprintf(c->last_error, sizeof c->last_error, "%.60s: %.230s", mr->cfg->name, a->err);
    c->budget_refused = 0;
    if (env->metrics) {
        long latency = a->resp.elapsed_ms;
        qt_metrics_request mreq = { j->mi, j->pi, wf_index(env, job), fsm_outcome_of(a),
                                    (uint64_t)(latency > 0 ? latency : 0), 0, 0, 0, 0, 0 };
        qt_metrics_record_request(env->metrics, &mreq, now);
    }
    if (a->verdict.cls == QT_RETRY_FATAL) {
        finish_failed(j, job, a, out);
        return;
    }
    if (a->verdict.cls == QT_RETRY_FALLBACK) {
        give_up_model(c, j->k, a->verdict.reason);
        set_state(j, QT_JOB_ROUTED, NULL, 0);
        out->kind = FSM_REDISPATCH;
        return;
    }
    decide_retry(env, j, job, a, now, wall, out);
}

void fsm_timer(fsm_job *j, uint64_t now, fsm_action *out)
{
    (void)now;
    memset(out, 0, sizeof *out);
    set_state(j, QT_JOB_ROUTED, NULL, 0);
    out->kind = FSM_REDISPATCH;
}

int fsm_cannot_carry(const qt_config *cfg, const qt_job *job, int mi, char *why, size_t n)
{
    const qt_model_cfg *m = &cfg->models[mi];
    char first[160] = "";
    for (size_t k = 0; k < m->n_providers; k++) {
        const qt_provider_cfg *p = &cfg->providers[m->provider_idx[k]];
        char w[160] = "";
        if (qt_provider_can_carry(p->kind, job->body, w, sizeof w))
            return 0;
        if (!first[0])
            snprintf(first, sizeof first, "%s", w);
    }
    if (m->n_providers == 0)
        return 0;
    snprintf(why, n, "%s: %s", m->name, first);
    return 1;
}

double fsm_cost(const qt_model_cfg *m, const qt_provider_result *res)
{
    return qt_model_cost_usd(m, res->prompt_tokens, res->cached_tokens, res->cache_write_tokens,
                             res->completion_tokens);
}

qt_outcome fsm_outcome_of(const fsm_attempt *a)
{
    if (!a->built)
        return QT_OUTCOME_OTHER;
    if (a->resp.transport != QT_HTTP_OK)
        return QT_OUTCOME_TIMEOUT;
    if (a->resp.status == 429)
        return QT_OUTCOME_RATE_LIMITED;
    if (a->resp.status >= 500)
        return QT_OUTCOME_SERVER_ERROR;
    if (a->resp.status >= 400)
        return QT_OUTCOME_CLIENT_ERROR;
    return QT_OUTCOME_OTHER;
}

void fsm_attempt_free(fsm_attempt *a)
{
    qt_http_response_free(&a->resp);
    qt_provider_result_free(&a->res);
}
