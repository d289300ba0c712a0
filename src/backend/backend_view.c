/* backend_view.c: the fleet view, from each heartbeat's answer.
 *
 * The heartbeat script returns the whole shared state in one reply (pause,
 * paused workflows, limit overrides, live processes, fleet requests and
 * tokens of the last minute per rate key, today's spend). This file copies
 * it into the view (under view_lock, so the UI thread can copy it), and
 * compares it with what on_control was last told: a pause, resume, workflow
 * pause or limit change made anywhere in the fleet reaches this process at
 * the next heartbeat (at once when the pub/sub message arrives first).
 */
#include "backend_int.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void bk_view_init(qt_backend *b)
{
    memset(&b->view, 0, sizeof b->view);
    b->view.n_rates = (int)b->n_view;
    for (size_t i = 0; i < b->n_view; i++) {
        snprintf(b->view.rates[i].name, sizeof b->view.rates[i].name, "%s", b->view_keys[i]);
        b->view.rates[i].rpm = b->view.rates[i].tpm = -1;
        b->view.rates[i].conc = -1;
    }
}

static long long int_at(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING && e->str)
        return atoll(e->str);
    return 0;
}

static const redisReply *arr_at(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return NULL;
    const redisReply *e = r->element[i];
    return e->type == REDIS_REPLY_ARRAY ? e : NULL;
}

/* "host|pid|mode|in_flight|proc" */
static void parse_proc(const char *s, qt_backend_proc *p, const char *self)
{
    memset(p, 0, sizeof *p);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    char *f[5] = { 0 };
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, "|", &save); t && n < 5; t = strtok_r(NULL, "|", &save))
        f[n++] = t;
    snprintf(p->host, sizeof p->host, "%s", f[0] ? f[0] : "?");
    p->pid = f[1] ? atoi(f[1]) : 0;
    snprintf(p->mode, sizeof p->mode, "%s", f[2] ? f[2] : "?");
    p->in_flight = f[3] ? atoi(f[3]) : 0;
    if (p->in_flight < 0)
        p->in_flight = 0;
    p->self = f[4] && !strcmp(f[4], self);
}

static void apply_overrides(qt_backend_view *v, const redisReply *over, char *canon, size_t clen)
{
    for (int i = 0; i < v->n_rates; i++) {
        v->rates[i].rpm = v->rates[i].tpm = -1;
        v->rates[i].conc = -1;
    }
    size_t used = 0;
    canon[0] = 0;
    for (size_t j = 0; over && j + 1 < over->elements; j += 2) {
        const char *k = over->element[j]->str, *val = over->element[j + 1]->str;
        if (!k || !val)
            continue;
        int w = used < clen ? snprintf(canon + used, clen - used, "%s=%s;", k, val) : 0;
        used += w > 0 ? (size_t)w : 0;
        const char *colon = strchr(k, ':');
        if (!colon)
            continue;
        for (int i = 0; i < v->n_rates; i++) {
            if (strcmp(colon + 1, v->rates[i].name))
                continue;
            double x = atof(val);
            if (!strncmp(k, "rpm:", 4))
                v->rates[i].rpm = x;
            else if (!strncmp(k, "tpm:", 4))
                v->rates[i].tpm = x;
            else if (!strncmp(k, "conc:", 5))
                v->rates[i].conc = (int)x;
        }
    }
}

static int wf_in(char list[][64], int n, const char *w)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i], w))
            return 1;
    return 0;
}

/* Tells on_control what changed since it was last told (loop thread, no lock). */
static void notify(qt_backend *b, const qt_backend_view *v, const char *canon)
{
    if (!b->on_control || b->freeing)
        return;
    if (v->paused != b->prev_paused)
        b->on_control(b->ud, v->paused ? "pause" : "resume", "");
    b->prev_paused = v->paused;
    for (int i = 0; i < v->n_wf_paused; i++)
        if (!wf_in(b->prev_wf, b->n_prev_wf, v->wf_paused[i]))
            b->on_control(b->ud, "wfpause", v->wf_paused[i]);
    for (int i = 0; i < b->n_prev_wf; i++)
        if (!wf_in((char (*)[64])v->wf_paused, v->n_wf_paused, b->prev_wf[i]))
            b->on_control(b->ud, "wfresume", b->prev_wf[i]);
    memcpy(b->prev_wf, v->wf_paused, sizeof b->prev_wf);
    b->n_prev_wf = v->n_wf_paused;
    if (strcmp(canon, b->prev_over)) {
        snprintf(b->prev_over, sizeof b->prev_over, "%s", canon);
        b->on_control(b->ud, "limit", "");
    }
}

void bk_view_update(qt_backend *b, const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 8)
        return;
    qt_backend_view v;
    pthread_mutex_lock(&b->view_lock);
    v = b->view;
    pthread_mutex_unlock(&b->view_lock);
    v.paused = int_at(r, 1) != 0;
    const redisReply *wf = arr_at(r, 2), *over = arr_at(r, 3), *procs = arr_at(r, 4),
                     *rates = arr_at(r, 5), *spend = arr_at(r, 6);
    v.n_wf_paused = 0;
    for (size_t i = 0; wf && i < wf->elements && v.n_wf_paused < QT_BACKEND_MAX_VIEW; i++)
        if (wf->element[i]->str)
            snprintf(v.wf_paused[v.n_wf_paused++], sizeof v.wf_paused[0], "%s", wf->element[i]->str);
    char canon[512];
    apply_overrides(&v, over, canon, sizeof canon);
    v.n_procs = 0;
    v.fleet_in_flight = 0;
    for (size_t i = 0; procs && i < procs->elements; i++) {
        if (!procs->element[i]->str)
            continue;
        qt_backend_proc p;
        parse_proc(procs->element[i]->str, &p, b->proc);
        v.fleet_in_flight += p.in_flight;
        if (v.n_procs < QT_BACKEND_MAX_PROCS)
            v.procs[v.n_procs++] = p;
    }
    int live = procs ? (int)procs->elements : 0;
    if (live > v.max_procs_seen)
        v.max_procs_seen = live;
    for (int i = 0; i < v.n_rates; i++) {
        long long rq = int_at(rates, (size_t)i * 2), tk = int_at(rates, (size_t)i * 2 + 1);
        v.rates[i].requests_60s = rq > 0 ? (uint64_t)rq : 0;
        v.rates[i].tokens_60s = tk > 0 ? (uint64_t)tk : 0;
    }
    v.day_spent_usd = (double)int_at(spend, 0) / QT_NUSD_PER_USD;
    v.day_reserved_usd = (double)int_at(spend, 1) / QT_NUSD_PER_USD;
    pthread_mutex_lock(&b->view_lock);
    /* counters and the up/down state may have moved meanwhile: keep theirs */
    v.up = b->view.up;
    memcpy(v.error, b->view.error, sizeof v.error);
    v.down_since_ms = b->view.down_since_ms;
    v.admits = b->view.admits;
    v.commits = b->view.commits;
    v.releases = b->view.releases;
    v.errors = b->view.errors;
    v.reconnects = b->view.reconnects;
    v.noscript_reloads = b->view.noscript_reloads;
    v.redirects = b->view.redirects;
    b->view = v;
    pthread_mutex_unlock(&b->view_lock);
    notify(b, &v, canon);
}

void qt_backend_view_copy(const qt_backend *b, qt_backend_view *out)
{
    qt_backend *m = (qt_backend *)b;   /* the lock is not part of the value */
    pthread_mutex_lock(&m->view_lock);
    *out = b->view;
    pthread_mutex_unlock(&m->view_lock);
}

int qt_backend_share_divisor(const qt_backend *b, int expected)
{
    qt_backend *m = (qt_backend *)b;
    pthread_mutex_lock(&m->view_lock);
    int seen = b->view.max_procs_seen;
    pthread_mutex_unlock(&m->view_lock);
    int d = expected > seen ? expected : seen;
    return d < 1 ? 1 : d;
}
