/* backend_cmd.c: the script calls of the Redis backend as argument vectors.
 *
 * Each builder lays out KEYS and ARGV exactly as the header comment of its
 * .lua file says; keys are "<tag>:<kind>:<name>" with the tag "{prefix}",
 * so every key of a fleet hashes to one Redis Cluster slot. Keys are
 * collected first, then arguments, into one fixed buffer (no allocation);
 * a command that would not fit is refused, never truncated.
 */
#include "backend_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "backend_lua.h"

const char *qt_script_text(qt_script_id id)
{
    switch (id) {
    case QT_SCRIPT_ADMIT:     return qt_backend_lua_admit;
    case QT_SCRIPT_COMMIT:    return qt_backend_lua_commit;
    case QT_SCRIPT_RELEASE:   return qt_backend_lua_release;
    case QT_SCRIPT_HEARTBEAT: return qt_backend_lua_heartbeat;
    case QT_SCRIPT_CONTROL:   return qt_backend_lua_control;
    default:                  return "";
    }
}

const char *qt_script_name(qt_script_id id)
{
    static const char *n[] = { "admit", "commit", "release", "heartbeat", "control" };
    return id < QT_SCRIPT_COUNT ? n[id] : "?";
}

int64_t qt_bcmd_nusd(double usd)
{
    if (!isfinite(usd) || usd <= 0)
        return 0;
    if (usd > 9e9)
        usd = 9e9;
    return (int64_t)ceil(usd * QT_NUSD_PER_USD - 1e-6);
}

/* Keys and args are gathered apart, then joined: argv = EVALSHA sha n keys args. */
typedef struct {
    qt_bcmd *c;
    const char *key[QT_BCMD_MAX_ARGS];
    size_t klen[QT_BCMD_MAX_ARGS];
    int nk;
    const char *arg[QT_BCMD_MAX_ARGS];
    size_t alen[QT_BCMD_MAX_ARGS];
    int na;
} build;

static const char *put(build *b, size_t *len, const char *fmt, va_list ap)
{
    qt_bcmd *c = b->c;
    size_t room = sizeof c->buf - c->used;
    int n = vsnprintf(c->buf + c->used, room, fmt, ap);
    if (n < 0 || (size_t)n >= room) {
        c->overflow = 1;
        *len = 0;
        return "";
    }
    const char *s = c->buf + c->used;
    c->used += (size_t)n + 1;
    *len = (size_t)n;
    return s;
}

__attribute__((format(printf, 2, 3))) static void key(build *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (b->nk >= QT_BCMD_MAX_ARGS / 2)
        b->c->overflow = 1;
    else {
        b->key[b->nk] = put(b, &b->klen[b->nk], fmt, ap);
        b->nk++;
    }
    va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void arg(build *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (b->na >= QT_BCMD_MAX_ARGS / 2)
        b->c->overflow = 1;
    else {
        b->arg[b->na] = put(b, &b->alen[b->na], fmt, ap);
        b->na++;
    }
    va_end(ap);
}

static void start(build *b, qt_bcmd *c)
{
    memset(b, 0, sizeof *b);
    c->argc = 0;
    c->used = 0;
    c->overflow = 0;
    b->c = c;
}

static int finish(build *b, const char *sha)
{
    qt_bcmd *c = b->c;
    char nk[16];
    snprintf(nk, sizeof nk, "%d", b->nk);
    size_t l;
    const char *nks;
    {
        size_t room = sizeof c->buf - c->used;
        if (strlen(nk) + 1 > room) {
            c->overflow = 1;
            return -1;
        }
        memcpy(c->buf + c->used, nk, strlen(nk) + 1);
        nks = c->buf + c->used;
        l = strlen(nk);
        c->used += l + 1;
    }
    if (c->overflow || 3 + b->nk + b->na > QT_BCMD_MAX_ARGS)
        return c->overflow = 1, -1;
    c->argv[0] = "EVALSHA"; c->len[0] = 7;
    c->argv[1] = sha;       c->len[1] = strlen(sha);
    c->argv[2] = nks;       c->len[2] = l;
    c->argc = 3;
    for (int i = 0; i < b->nk; i++, c->argc++) {
        c->argv[c->argc] = b->key[i];
        c->len[c->argc] = b->klen[i];
    }
    for (int i = 0; i < b->na; i++, c->argc++) {
        c->argv[c->argc] = b->arg[i];
        c->len[c->argc] = b->alen[i];
    }
    return 0;
}

static int n_rate(const qt_backend_lease *l)
{
    return l->n_rate < 0 ? 0 : l->n_rate > QT_BACKEND_MAX_RATE ? QT_BACKEND_MAX_RATE : l->n_rate;
}

static int n_budget(const qt_backend_lease *l)
{
    return l->n_budget < 0 ? 0 : l->n_budget > QT_BACKEND_MAX_BUDGET ? QT_BACKEND_MAX_BUDGET
                                                                     : l->n_budget;
}

static double lim(double v) { return isfinite(v) && v > 0 ? v : 0; }

int qt_bcmd_admit(qt_bcmd *c, const char *sha, const qt_bcmd_ctx *x, const qt_backend_lease *l)
{
    build b;
    start(&b, c);
    int nr = n_rate(l), nb = n_budget(l);
    key(&b, "%s:ctl", x->tag);
    key(&b, "%s:wfpause", x->tag);
    for (int i = 0; i < nr; i++) {
        key(&b, "%s:rl:%s", x->tag, l->rate[i].name);
        key(&b, "%s:sl:%s", x->tag, l->rate[i].name);
    }
    for (int j = 0; j < nb; j++) {
        key(&b, "%s:b:%s", x->tag, l->budget[j].name);
        key(&b, "%s:bz:%s", x->tag, l->budget[j].name);
    }
    arg(&b, "%llu", (unsigned long long)x->now_us);
    arg(&b, "%s", x->tag);
    arg(&b, "%s#%llu", x->proc, (unsigned long long)l->seq);
    arg(&b, "%ld", x->lease_ms);
    arg(&b, "%.0f", lim(x->burst_ms) * 1000.0);
    arg(&b, "%s", l->workflow[0] ? l->workflow : "default");
    arg(&b, "%d", nr);
    arg(&b, "%d", nb);
    arg(&b, "%ld", x->ahead_ms > 0 ? x->ahead_ms * 1000 : 0);
    for (int i = 0; i < nr; i++) {
        const qt_backend_rate *r = &l->rate[i];
        arg(&b, "%s", r->name);
        arg(&b, "%.6f", lim(r->rpm));
        arg(&b, "%.6f", lim(r->tpm));
        arg(&b, "%d", r->max_concurrent > 0 ? r->max_concurrent : 0);
        arg(&b, "%lld", (long long)(r->est_tokens > 0 ? r->est_tokens : 0));
    }
    for (int j = 0; j < nb; j++) {
        const qt_backend_budget *g = &l->budget[j];
        arg(&b, "%d", g->per_day ? 1 : 0);
        arg(&b, "%lld", (long long)qt_bcmd_nusd(g->limit_usd));
        arg(&b, "%lld", (long long)qt_bcmd_nusd(g->est_usd));
    }
    return finish(&b, sha);
}

int qt_bcmd_settle(qt_bcmd *c, const char *sha, const qt_bcmd_ctx *x, const qt_backend_lease *l,
                   int64_t actual_tokens, double actual_usd)
{
    build b;
    start(&b, c);
    int nr = n_rate(l), nb = n_budget(l);
    key(&b, "%s:ctl", x->tag);
    for (int i = 0; i < nr; i++) {
        key(&b, "%s:rl:%s", x->tag, l->rate[i].name);
        key(&b, "%s:sl:%s", x->tag, l->rate[i].name);
    }
    for (int j = 0; j < nb; j++) {
        key(&b, "%s:b:%s", x->tag, l->budget[j].name);
        key(&b, "%s:bz:%s", x->tag, l->budget[j].name);
    }
    arg(&b, "%llu", (unsigned long long)x->now_us);
    arg(&b, "%s", x->tag);
    arg(&b, "%s#%llu", x->proc, (unsigned long long)l->seq);
    arg(&b, "%d", nr);
    arg(&b, "%d", nb);
    if (actual_tokens < 0)
        actual_tokens = 0;
    for (int i = 0; i < nr; i++) {
        const qt_backend_rate *r = &l->rate[i];
        int64_t est = r->est_tokens > 0 ? r->est_tokens : 0;
        arg(&b, "%s", r->name);
        arg(&b, "%.6f", lim(r->rpm));
        arg(&b, "%.6f", lim(r->tpm));
        arg(&b, "%lld", (long long)(est > 0 ? actual_tokens - est : 0));
        arg(&b, "%lld", (long long)est);
    }
    for (int j = 0; j < nb; j++) {
        if (l->budget[j].per_day)
            arg(&b, "%ld", l->day);
        else
            arg(&b, "-");
        arg(&b, "%lld", (long long)qt_bcmd_nusd(actual_usd));
        arg(&b, "0");
    }
    return finish(&b, sha);
}

int qt_bcmd_heartbeat(qt_bcmd *c, const char *sha, const qt_bcmd_ctx *x, const char *info,
                      const char *const *view_keys, size_t n_view)
{
    build b;
    start(&b, c);
    if (n_view > QT_BACKEND_MAX_VIEW)
        n_view = QT_BACKEND_MAX_VIEW;
    key(&b, "%s:ctl", x->tag);
    key(&b, "%s:wfpause", x->tag);
    key(&b, "%s:procs", x->tag);
    key(&b, "%s:proc:%s", x->tag, x->proc);
    for (size_t i = 0; i < n_view; i++)
        key(&b, "%s:rl:%s", x->tag, view_keys[i]);
    key(&b, "%s:b:day", x->tag);
    arg(&b, "%llu", (unsigned long long)x->now_us);
    arg(&b, "%s", x->tag);
    arg(&b, "%s", x->proc);
    arg(&b, "%ld", x->lease_ms);
    arg(&b, "%s", info ? info : "");
    arg(&b, "%zu", n_view);
    arg(&b, "1");
    arg(&b, "1");
    return finish(&b, sha);
}

int qt_bcmd_control(qt_bcmd *c, const char *sha, const qt_bcmd_ctx *x, const char *op,
                    const char *a1, const char *a2, const char *a3)
{
    build b;
    start(&b, c);
    key(&b, "%s:ctl", x->tag);
    key(&b, "%s:wfpause", x->tag);
    arg(&b, "%s", x->tag);
    arg(&b, "%s", op);
    if (a1)
        arg(&b, "%s", a1);
    if (a1 && a2)
        arg(&b, "%s", a2);
    if (a1 && a2 && a3)
        arg(&b, "%s", a3);
    return finish(&b, sha);
}
