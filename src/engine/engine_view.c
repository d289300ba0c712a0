/* engine_view.c: the engine's record of each job (ejob) and the job views of
 * contract D: qt_engine_jobs (every job without a result, most urgent first)
 * and qt_engine_job_detail (one job's chain, attempts and waits).
 *
 * DESIGN
 * Every job has an ejob from submission to its result, linked in e->live
 * (submission order). The driver moves it between states with
 * ejob_set_state, which stamps the time it entered the state and, when a
 * wait ends, appends "wait-key model:gpt-4o 1200ms" to its wait history.
 * Readers copy plain values under e->lock and sort after releasing it.
 * Queued jobs have no state of their own beyond QT_JOB_QUEUED; their aged
 * priority is the queue's (qt_queue_effective_priority).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static const char *const state_names[QT_JOB_STATES] = {
    "queued", "routed", "wait-key", "wait-backoff", "wait-probe", "wait-budget",
    "in-flight", "streaming", "done",
};

const char *qt_job_state_name(qt_job_state s)
{
    return (unsigned)s < QT_JOB_STATES ? state_names[s] : "?";
}

ejob *ejob_new(qt_engine *e, qt_job *job)
{
    ejob *ej = calloc(1, sizeof *ej);
    if (!ej)
        return NULL;
    ej->job = job;
    ej->eng = e;
    ej->refs = 1;
    ej->state = QT_JOB_QUEUED;
    ej->since_ms = now_of(e);
    ej->enqueued_wall_ms = wall_of(e);
    ej->cur_mi = ej->cur_pi = -1;
    if (job->model && e->cfg->n_models)
        fsm_job_init(&ej->f, e->cfg, job);
    else
        ej->f.mi = ej->f.pi = -1;
    return ej;
}

void ejob_free(ejob *ej)
{
    if (!ej)
        return;
    free(ej->att);
    free(ej->waits);
    free(ej->fl);
    free(ej);
}

static size_t id_bucket(const qt_engine *e, const char *id)
{
    return (size_t)qt_hash_str(QT_HASH_SEED, id) & (e->idmap_cap - 1);
}

/* Doubles the id map (or makes it); 0 when out of memory (lookups then
 * still work on the old one). */
static int idmap_grow(qt_engine *e)
{
    size_t cap = e->idmap_cap ? e->idmap_cap * 2 : 1024;
    ejob **m = calloc(cap, sizeof *m);
    if (!m)
        return 0;
    ejob **old = e->idmap;
    size_t ocap = e->idmap_cap;
    e->idmap = m;
    e->idmap_cap = cap;
    for (size_t i = 0; i < ocap; i++)
        for (ejob *ej = old[i], *next; ej; ej = next) {
            next = ej->hnext;
            size_t b = id_bucket(e, ej->job->id);
            ej->hnext = m[b];
            m[b] = ej;
        }
    free(old);
    return 1;
}

void ejob_link(qt_engine *e, ejob *ej)
{
    if (!e->idmap_cap || (e->n_live + 1) * 4 > e->idmap_cap * 3)
        idmap_grow(e);
    if (e->idmap_cap && ej->job->id) {
        size_t b = id_bucket(e, ej->job->id);
        ej->hnext = e->idmap[b];
        e->idmap[b] = ej;
    }
    ej->prev = e->live_tail;
    ej->next = NULL;
    if (e->live_tail)
        e->live_tail->next = ej;
    else
        e->live = ej;
    e->live_tail = ej;
    ej->linked = 1;
    e->n_live++;
}

void ejob_unlink(qt_engine *e, ejob *ej)
{
    if (!ej->linked)
        return;
    if (e->idmap_cap && ej->job->id) {
        for (ejob **pp = &e->idmap[id_bucket(e, ej->job->id)]; *pp; pp = &(*pp)->hnext)
            if (*pp == ej) {
                *pp = ej->hnext;
                break;
            }
        ej->hnext = NULL;
    }
    if (ej->prev)
        ej->prev->next = ej->next;
    else
        e->live = ej->next;
    if (ej->next)
        ej->next->prev = ej->prev;
    else
        e->live_tail = ej->prev;
    ej->prev = ej->next = NULL;
    ej->linked = 0;
    e->n_live--;
}

ejob *ejob_find(qt_engine *e, const char *id)
{
    if (!id || !e->idmap_cap)
        return NULL;
    for (ejob *ej = e->idmap[id_bucket(e, id)]; ej; ej = ej->hnext)
        if (ej->job->id && !strcmp(ej->job->id, id))
            return ej;
    return NULL;
}

static int is_wait(qt_job_state s)
{
    return s == QT_JOB_WAIT_KEY || s == QT_JOB_WAIT_BACKOFF || s == QT_JOB_WAIT_PROBE
           || s == QT_JOB_WAIT_BUDGET;
}

/* Appends "state on dur" to the wait history (keeps the last EJ_MAX_WAITS). */
static void add_wait(ejob *ej, uint64_t now)
{
    if (ej->n_waits == ej->cap_waits) {
        if (ej->cap_waits == EJ_MAX_WAITS) {
            memmove(ej->waits[0], ej->waits[1], (size_t)(EJ_MAX_WAITS - 1) * EJ_WAIT_LEN);
            ej->n_waits--;
        } else {
            int cap = ej->cap_waits ? ej->cap_waits * 2 : 2;
            void *p = realloc(ej->waits, (size_t)cap * EJ_WAIT_LEN);
            if (!p)
                return;
            ej->waits = p;
            ej->cap_waits = cap;
        }
    }
    snprintf(ej->waits[ej->n_waits++], EJ_WAIT_LEN, "%s %.60s %llums", qt_job_state_name(ej->state),
             ej->wait_on, (unsigned long long)(now > ej->since_ms ? now - ej->since_ms : 0));
}

void ejob_set_state(qt_engine *e, ejob *ej, qt_job_state s, const char *on, uint64_t until_ms)
{
    if (!on)
        on = "";
    if (ej->state == s && !strcmp(ej->wait_on, on)) {
        ej->until_ms = until_ms;   /* the same wait, a new estimate of its end */
        return;
    }
    uint64_t now = now_of(e);
    if (is_wait(ej->state))
        add_wait(ej, now);
    ej->state = s;
    ej->since_ms = now;
    ej->until_ms = until_ms;
    snprintf(ej->wait_on, sizeof ej->wait_on, "%s", on);
}

void ejob_add_attempt(ejob *ej, const qt_attempt_view *a)
{
    if (ej->n_att == ej->cap_att) {
        if (ej->cap_att == EJ_MAX_ATTEMPTS) {
            memmove(&ej->att[0], &ej->att[1], (EJ_MAX_ATTEMPTS - 1) * sizeof *ej->att);
            ej->n_att--;
        } else {
            int cap = ej->cap_att ? ej->cap_att * 2 : 1;
            void *p = realloc(ej->att, (size_t)cap * sizeof *ej->att);
            if (!p)
                return;
            ej->att = p;
            ej->cap_att = cap;
        }
    }
    ej->att[ej->n_att++] = *a;
}

/* ------------------------------------------------------------ readers */

typedef struct {
    qt_job_view v;
    uint64_t order;    /* submission sequence, for ties */
} view_row;

/* Fills v from ej (lock held). */
static void fill_view(qt_engine *e, const ejob *ej, uint64_t now, qt_job_view *v)
{
    const qt_job *job = ej->job;
    memset(v, 0, sizeof *v);
    snprintf(v->id, sizeof v->id, "%s", job->id ? job->id : "");
    snprintf(v->workflow, sizeof v->workflow, "%s", job->workflow ? job->workflow : "");
    snprintf(v->model, sizeof v->model, "%s", job->model ? job->model : "");
    if (ej->cur_mi >= 0)
        snprintf(v->cur_model, sizeof v->cur_model, "%s", e->cfg->models[ej->cur_mi].name);
    if (ej->cur_pi >= 0)
        snprintf(v->provider, sizeof v->provider, "%s", e->cfg->providers[ej->cur_pi].name);
    v->priority = job->priority;
    v->aged_priority = qt_queue_effective_priority((uint64_t)e->cfg->queue.aging_ms, job->priority,
                                                   job->enqueued_ms, now);
    v->state = ej->state;
    if (ej->state == QT_JOB_IN_FLIGHT && __atomic_load_n(&ej->streaming, __ATOMIC_RELAXED))
        v->state = QT_JOB_STREAMING;
    snprintf(v->wait_on, sizeof v->wait_on, "%s", ej->wait_on);
    v->since_ms = now > ej->since_ms ? now - ej->since_ms : 0;
    v->until_in_ms = ej->until_ms > now ? ej->until_ms - now : 0;
    v->age_ms = now > job->enqueued_ms ? now - job->enqueued_ms : 0;
    v->attempts = ej->f.c.attempts;
    int mi = ej->cur_mi >= 0 ? ej->cur_mi : job->model_idx;
    if (mi >= 0 && (size_t)mi < e->cfg->n_models) {
        int64_t p = engine_est_prompt(e, job, mi);
        v->est_prompt_tokens = p > INT32_MAX ? INT32_MAX : (int)p;
        v->max_tokens = max_tokens_of(e, job, mi);
    }
    v->cost_usd = ej->cost_usd;
}

static int cmp_rows(const void *a, const void *b)
{
    const view_row *x = a, *y = b;
    if (x->v.aged_priority != y->v.aged_priority)
        return x->v.aged_priority < y->v.aged_priority ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

size_t qt_engine_jobs(qt_engine *e, qt_job_view *out, size_t max)
{
    if (!max)
        return 0;
    pthread_mutex_lock(&e->lock);
    size_t n = e->n_live;
    view_row *rows = n ? malloc(n * sizeof *rows) : NULL;
    if (!rows) {
        pthread_mutex_unlock(&e->lock);
        return 0;
    }
    uint64_t now = now_of(e), seq = 0;
    size_t k = 0;
    for (ejob *ej = e->live; ej && k < n; ej = ej->next, k++) {
        fill_view(e, ej, now, &rows[k].v);
        rows[k].order = seq++;
    }
    pthread_mutex_unlock(&e->lock);
    qsort(rows, k, sizeof *rows, cmp_rows);
    size_t m = k < max ? k : max;
    for (size_t i = 0; i < m; i++)
        out[i] = rows[i].v;
    free(rows);
    return m;
}

size_t qt_engine_jobs_count(qt_engine *e)
{
    pthread_mutex_lock(&e->lock);
    size_t n = e->n_live;
    pthread_mutex_unlock(&e->lock);
    return n;
}

qt_err qt_engine_job_detail(qt_engine *e, const char *id, qt_job_detail *out)
{
    memset(out, 0, sizeof *out);
    if (!id)
        return QT_ERR_NOTFOUND;
    pthread_mutex_lock(&e->lock);
    ejob *ej = ejob_find(e, id);
    if (!ej) {
        pthread_mutex_unlock(&e->lock);
        return QT_ERR_NOTFOUND;
    }
    fill_view(e, ej, now_of(e), &out->job);
    int chain[MAX_CHAIN], has_cache = 0;
    size_t n = ej->f.c.n ? ej->f.c.n
                       : qt_config_chain(e->cfg, ej->job->model_idx, chain, MAX_CHAIN, &has_cache);
    const int *ch = ej->f.c.n ? ej->f.c.chain : chain;
    for (size_t i = 0; i < n && out->n_chain < 8; i++)
        snprintf(out->chain[out->n_chain++], sizeof out->chain[0], "%s", e->cfg->models[ch[i]].name);
    for (int i = 0; i < ej->n_att && i < 16; i++)
        out->attempts[out->n_attempts++] = ej->att[i];
    for (int i = 0; i < ej->n_waits && i < 16; i++)
        snprintf(out->waits[out->n_waits++], sizeof out->waits[0], "%s", ej->waits[i]);
    if (is_wait(ej->state) && out->n_waits < 16)   /* the wait it is in now */
        snprintf(out->waits[out->n_waits++], sizeof out->waits[0], "%s %.60s %llums (now)",
                 qt_job_state_name(ej->state), ej->wait_on, (unsigned long long)out->job.since_ms);
    pthread_mutex_unlock(&e->lock);
    return QT_OK;
}
