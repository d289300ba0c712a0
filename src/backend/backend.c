/* backend.c: the Redis backend's connection and its calls (see backend.h).
 *
 * DESIGN. Everything runs on the loop thread. A call is an `op` (admit,
 * commit, release, heartbeat, control) built into EVALSHA arguments by
 * backend_cmd.c and sent with redisAsyncCommandArgv; Redis answers in the
 * order asked, so sent ops form a FIFO whose head has the oldest deadline.
 *
 * States: DOWN (no connection; a timer reconnects with backoff 100 ms ..
 * 2 s), CONNECTING (connected or not yet, the five SCRIPT LOADs sent; ops
 * wait in `waitq`), UP (ops go out at once). A tick timer (25 ms) fails the
 * connection when the oldest op or the connection attempt is older than
 * timeout_ms (hiredis 0.14 has no timeouts of its own), reconnects, and
 * heartbeats. Going down runs every waiting admit's callback with
 * QT_BACKEND_DOWN at once.
 *
 * No lease may leak while this process lives (a live process's leases are
 * renewed by every sweep): a commit or release that cannot be delivered is
 * kept in `owed` and sent after the reconnection; an admit whose answer was
 * lost (it may have been taken) is followed by a "forget" (a commit of the
 * estimate at no cost: frees the slots and reservations if they were taken,
 * changes nothing otherwise).
 *
 * Replies: NOSCRIPT (Redis restarted, or SCRIPT FLUSH) reloads the script
 * and resends once; MOVED/ASK (Redis Cluster: the fleet's slot lives on
 * another node) reconnects to the node named and resends. A second
 * connection SUBSCRIBEs to "<tag>:control"; a message triggers a heartbeat,
 * whose answer updates the fleet view (backend_view.c).
 */
#include "quotatop/backend.h"

#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_int.h"

#define TICK_MS      25
#define BACKOFF_MIN  100
#define BACKOFF_MAX  2000
#define OWED_MAX     100000

static void on_reply(redisAsyncContext *ac, void *r, void *priv);
static void submit(qt_backend *b, bk_op *op);

const char *qt_backend_verdict_name(qt_backend_verdict v)
{
    static const char *n[] = { "admitted", "wait", "full", "budget", "paused", "workflow-paused", "down" };
    return (unsigned)v <= QT_BACKEND_DOWN ? n[v] : "?";
}

/* ---- op queues ------------------------------------------------------------ */

static void q_push(bk_queue *q, bk_op *op)
{
    op->next = NULL;
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    q->n++;
}

static bk_op *q_pop(bk_queue *q)
{
    bk_op *op = q->head;
    if (op) {
        q->head = op->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
        op->next = NULL;
    }
    return op;
}

/* Removes op from the sent FIFO (usually its head). */
static void sent_remove(qt_backend *b, bk_op *op)
{
    bk_op **pp = &b->sent.head, *prev = NULL;
    while (*pp && *pp != op) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = op->next;
    if (b->sent.tail == op)
        b->sent.tail = prev;
    b->sent.n--;
    op->next = NULL;
}

static bk_op *op_new(qt_backend *b, qt_script_id kind)
{
    bk_op *op = calloc(1, sizeof *op);
    if (op) {
        op->b = b;
        op->kind = kind;
    }
    return op;
}

static uint64_t now_of(const qt_backend *b) { return qt_loop_now_ms(b->loop); }

/* ---- outcomes ------------------------------------------------------------- */

static void admit_done(bk_op *op, const qt_backend_decision *d)
{
    qt_backend *b = op->b;
    if (d->verdict == QT_BACKEND_ADMITTED) {
        op->lease->active = 1;
        b->in_flight++;
    } else {
        op->lease->active = 0;
    }
    if (op->cb)
        op->cb(op->ud, op->lease, d);
}

static void admit_down(bk_op *op, const char *why)
{
    qt_backend_decision d;
    memset(&d, 0, sizeof d);
    d.verdict = QT_BACKEND_DOWN;
    snprintf(d.error, sizeof d.error, "%.150s", why);
    admit_done(op, &d);
}

/* An op that did not get its answer. Settles are owed (sent after the
 * reconnection); an admit fails with DOWN and, when it was sent (Redis may
 * have taken it), is followed by a forget. */
static void op_lost(qt_backend *b, bk_op *op, const char *why)
{
    if (op->kind == QT_SCRIPT_COMMIT || op->kind == QT_SCRIPT_RELEASE) {
        if (b->owed.n < OWED_MAX && !b->freeing) {
            q_push(&b->owed, op);
            return;
        }
        free(op);
        return;
    }
    if (op->kind == QT_SCRIPT_ADMIT) {
        bk_op *f = op->was_sent ? op_new(b, QT_SCRIPT_COMMIT) : NULL;
        if (f) {
            f->lease_copy = *op->lease;
            f->lease = &f->lease_copy;
            f->tokens = -1;   /* the estimate: no refund, no charge */
            f->usd = 0;
        }
        admit_down(op, why);
        if (f) {
            if (b->owed.n < OWED_MAX && !b->freeing)
                q_push(&b->owed, f);
            else
                free(f);
        }
    } else if (op->kind == QT_SCRIPT_HEARTBEAT) {
        b->hb_in_flight = 0;
    }
    free(op);
}

/* ---- state ---------------------------------------------------------------- */

static void view_state(qt_backend *b, int up, const char *why)
{
    pthread_mutex_lock(&b->view_lock);
    b->view.up = up;
    snprintf(b->view.error, sizeof b->view.error, "%s", up ? "" : why);
    b->view.down_since_ms = up ? 0 : b->view.down_since_ms ? b->view.down_since_ms : now_of(b) | 1;
    pthread_mutex_unlock(&b->view_lock);
}

/* Drops the connections (the caller is not inside a callback of ac or sub
 * unless it has already cleared b->ac / b->sub), fails what waits, and
 * schedules a reconnection. */
static void go_down(qt_backend *b, const char *why)
{
    int was = b->st;
    b->st = BK_DOWN;
    redisAsyncContext *ac = b->ac, *sub = b->sub;
    b->ac = NULL;
    b->sub = NULL;
    if (ac)
        redisAsyncFree(ac);     /* sent ops come back through on_reply(NULL) */
    if (sub)
        redisAsyncFree(sub);
    bk_op *op;
    while ((op = q_pop(&b->waitq)))
        op_lost(b, op, why);
    b->next_connect_ms = now_of(b) + b->backoff_ms;
    b->backoff_ms = b->backoff_ms * 2 > BACKOFF_MAX ? BACKOFF_MAX : b->backoff_ms * 2;
    if (was != BK_DOWN || b->view.up) {
        view_state(b, 0, why);
        pthread_mutex_lock(&b->view_lock);
        b->view.errors++;
        pthread_mutex_unlock(&b->view_lock);
        if (b->on_state && !b->freeing)
            b->on_state(b->ud, 0, why);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    qt_backend *b = ac->data;
    if (status != REDIS_OK && b && b->ac == ac) {
        b->ac = NULL;   /* hiredis frees it after this returns */
        char why[160];
        snprintf(why, sizeof why, "redis %.100s:%d: %s", b->host, b->port, ac->errstr ? ac->errstr : "connect failed");
        go_down(b, why);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    qt_backend *b = ac->data;
    if (b && b->ac == ac) {
        b->ac = NULL;
        char why[160];
        snprintf(why, sizeof why, "redis %.100s:%d: connection lost (%s)", b->host, b->port,
                 ac->errstr && *ac->errstr ? ac->errstr : "closed");
        go_down(b, why);
    }
}

static void on_sub_gone(const redisAsyncContext *ac, int status)
{
    (void)status;
    qt_backend *b = ac->data;
    if (b && b->sub == ac)
        b->sub = NULL;   /* the main connection's next trouble or reconnection restarts it */
}

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK)
        on_sub_gone(ac, status);
}

/* A message on "<tag>:control": heartbeat now, the view follows. */
static void on_message(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    qt_backend *b = priv;
    redisReply *rep = r;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 || !rep->element[0]->str
        || strcmp(rep->element[0]->str, "message"))
        return;
    b->hb_due_ms = 0;
}

static void subscribe(qt_backend *b)
{
    redisAsyncContext *s = redisAsyncConnect(b->host, b->port);
    if (!s || s->err) {
        if (s)
            redisAsyncFree(s);
        return;
    }
    s->data = b;
    qt_redis_io_attach(&b->sub_io, b->loop, s);
    redisAsyncSetConnectCallback(s, on_sub_connect);
    redisAsyncSetDisconnectCallback(s, on_sub_gone);
    char chan[128];
    snprintf(chan, sizeof chan, "%s:control", b->tag);
    const char *argv[] = { "SUBSCRIBE", chan };
    redisAsyncCommandArgv(s, on_message, b, 2, argv, NULL);
    b->sub = s;
}

static void on_loaded(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    bk_op *op = priv;
    qt_backend *b = op->b;
    redisReply *rep = r;
    sent_remove(b, op);
    int id = op->kind;
    free(op);
    if (!rep)
        return;   /* the connection is going: go_down runs */
    if (rep->type != REDIS_REPLY_STRING) {
        /* Dropped by the tick: not inside this connection's callback. */
        snprintf(b->kill_reason, sizeof b->kill_reason, "redis: SCRIPT LOAD %s failed: %.100s",
                 qt_script_name((qt_script_id)id), rep->str ? rep->str : "?");
        return;
    }
    snprintf(b->sha[id], sizeof b->sha[id], "%s", rep->str);
    if (b->st != BK_CONNECTING || --b->loads_left > 0)
        return;
    b->st = BK_UP;
    b->backoff_ms = BACKOFF_MIN;
    int reconnected = b->ever_up;
    b->ever_up = 1;
    view_state(b, 1, "");
    if (reconnected) {
        pthread_mutex_lock(&b->view_lock);
        b->view.reconnects++;
        pthread_mutex_unlock(&b->view_lock);
    }
    if (!b->sub)
        subscribe(b);
    bk_op *o;
    while ((o = q_pop(&b->owed)))
        submit(b, o);
    while ((o = q_pop(&b->waitq)))
        submit(b, o);
    b->hb_due_ms = 0;
    if (reconnected && b->on_state)
        b->on_state(b->ud, 1, "");
}

/* Sends SCRIPT LOAD for one script; its answer lands in on_loaded. */
static int load_script(qt_backend *b, qt_script_id id)
{
    bk_op *op = op_new(b, id);
    if (!op)
        return -1;
    op->is_load = 1;
    op->deadline_ms = now_of(b) + (uint64_t)b->timeout_ms;
    const char *argv[] = { "SCRIPT", "LOAD", qt_script_text(id) };
    if (redisAsyncCommandArgv(b->ac, on_loaded, op, 3, argv, NULL) != REDIS_OK) {
        free(op);
        return -1;
    }
    q_push(&b->sent, op);
    return 0;
}

static void connect_now(qt_backend *b)
{
    redisAsyncContext *ac = redisAsyncConnect(b->host, b->port);
    if (!ac || ac->err) {
        char why[200];
        snprintf(why, sizeof why, "redis %.100s:%d: %s", b->host, b->port, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        go_down(b, why);
        return;
    }
    ac->data = b;
    qt_redis_io_attach(&b->io, b->loop, ac);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    b->ac = ac;
    b->st = BK_CONNECTING;
    b->connect_deadline_ms = now_of(b) + (uint64_t)b->timeout_ms;
    b->loads_left = QT_SCRIPT_COUNT;
    for (int i = 0; i < QT_SCRIPT_COUNT; i++)
        if (load_script(b, (qt_script_id)i) != 0) {
            go_down(b, "redis: cannot queue SCRIPT LOAD");
            return;
        }
}

/* ---- sending -------------------------------------------------------------- */

static int build(qt_backend *b, bk_op *op, qt_bcmd *c)
{
    qt_bcmd_ctx x = { .tag = b->tag, .proc = b->proc, .lease_ms = b->lease_ms,
                      .burst_ms = b->burst_ms, .now_us = 0 };
    const char *sha = b->sha[op->kind];
    switch (op->kind) {
    case QT_SCRIPT_ADMIT:
        x.ahead_ms = op->lease->ahead_ms;
        return qt_bcmd_admit(c, sha, &x, op->lease);
    case QT_SCRIPT_COMMIT:
    case QT_SCRIPT_RELEASE: {
        int64_t tok = op->tokens;
        if (tok < 0)   /* forget: the estimate of the first key */
            tok = op->lease->n_rate > 0 ? op->lease->rate[0].est_tokens : 0;
        return qt_bcmd_settle(c, sha, &x, op->lease, tok, op->usd);
    }
    case QT_SCRIPT_HEARTBEAT: {
        char info[256];
        if (b->freeing)
            info[0] = 0;
        else
            snprintf(info, sizeof info, "%s|%d|%s|%d|%s", b->host_name, (int)getpid(), b->mode,
                     b->in_flight, b->proc);
        return qt_bcmd_heartbeat(c, sha, &x, info, (const char *const *)b->view_keys, b->n_view);
    }
    case QT_SCRIPT_CONTROL:
        return qt_bcmd_control(c, sha, &x, op->ctl[0], op->ctl[1][0] ? op->ctl[1] : NULL,
                               op->ctl[2][0] ? op->ctl[2] : NULL, op->ctl[3][0] ? op->ctl[3] : NULL);
    default:
        return -1;
    }
}

static void send_op(qt_backend *b, bk_op *op)
{
    qt_bcmd *c = malloc(sizeof *c);
    if (!c || build(b, op, c) != 0) {
        free(c);
        op->was_sent = 0;
        if (op->kind == QT_SCRIPT_COMMIT || op->kind == QT_SCRIPT_RELEASE) {
            free(op);   /* cannot ever be built: nothing to owe */
            return;
        }
        op_lost(b, op, "redis: request too large for the backend");
        return;
    }
    op->deadline_ms = now_of(b) + (uint64_t)b->timeout_ms;
    if (redisAsyncCommandArgv(b->ac, on_reply, op, c->argc, c->argv, c->len) != REDIS_OK) {
        free(c);
        op_lost(b, op, "redis: connection closing");
        return;
    }
    free(c);
    op->was_sent = 1;
    q_push(&b->sent, op);
}

/* 1 when ac takes commands (hiredis refuses them once it is closing). */
static int usable(const redisAsyncContext *ac)
{
    return ac && !(ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

static void submit(qt_backend *b, bk_op *op)
{
    if (b->st == BK_UP && usable(b->ac))
        send_op(b, op);
    else if (b->st == BK_CONNECTING && !b->freeing)
        q_push(&b->waitq, op);
    else
        op_lost(b, op, b->view.error[0] ? b->view.error : "redis: not connected");
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": the node that holds the slot. */
static int parse_redirect(qt_backend *b, const char *err)
{
    const char *sp = strchr(err, ' ');
    sp = sp ? strchr(sp + 1, ' ') : NULL;
    if (!sp)
        return -1;
    const char *colon = strrchr(sp + 1, ':');
    if (!colon || colon == sp + 1 || (size_t)(colon - sp - 1) >= sizeof b->host)
        return -1;
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return -1;
    memcpy(b->host, sp + 1, (size_t)(colon - sp - 1));
    b->host[colon - sp - 1] = 0;
    b->port = port;
    return 0;
}

static void parse_admit(bk_op *op, const redisReply *r)
{
    qt_backend_decision d;
    memset(&d, 0, sizeof d);
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER) {
        d.verdict = QT_BACKEND_DOWN;
        snprintf(d.error, sizeof d.error, "redis: unexpected answer to admit");
        admit_done(op, &d);
        return;
    }
    long long v[4 + QT_BACKEND_MAX_RATE] = { 0 };
    for (size_t i = 0; i < r->elements && i < 4 + QT_BACKEND_MAX_RATE; i++)
        v[i] = r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : 0;
    switch (v[0]) {
    case 1:
        d.verdict = QT_BACKEND_ADMITTED;
        d.redis_ms = (uint64_t)(v[1] > 0 ? v[1] : 0);
        op->lease->day = (long)v[2];
        d.delay_ms = (uint64_t)(v[3] > 0 ? (v[3] < 86400000 ? v[3] : 86400000) : 0);
        for (int i = 0; i < QT_BACKEND_MAX_RATE; i++)
            d.next_ms[i] = (uint64_t)(v[4 + i] > 0 ? (v[4 + i] < 86400000 ? v[4 + i] : 86400000) : 0);
        break;
    case 0:
        d.verdict = QT_BACKEND_WAIT;
        d.wait_ms = (uint64_t)(v[1] > 0 ? (v[1] < 86400000 ? v[1] : 86400000) : 1);
        d.index = (int)v[2] - 1;
        d.redis_ms = (uint64_t)(v[3] > 0 ? v[3] : 0);
        break;
    case 2:
        d.verdict = QT_BACKEND_FULL;
        d.wait_ms = 20;
        d.index = (int)v[2] - 1;
        d.redis_ms = (uint64_t)(v[3] > 0 ? v[3] : 0);
        break;
    case 3:
        d.verdict = QT_BACKEND_BUDGET;
        d.index = (int)v[1] - 1;
        d.spent_usd = (double)v[2] / QT_NUSD_PER_USD;
        d.reserved_usd = (double)v[3] / QT_NUSD_PER_USD;
        d.limit_usd = (double)v[4] / QT_NUSD_PER_USD;
        break;
    case 4:
        d.verdict = QT_BACKEND_PAUSED;
        break;
    default:
        d.verdict = QT_BACKEND_WF_PAUSED;
        break;
    }
    pthread_mutex_lock(&op->b->view_lock);
    op->b->view.admits++;
    pthread_mutex_unlock(&op->b->view_lock);
    admit_done(op, &d);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    bk_op *op = priv;
    qt_backend *b = op->b;
    redisReply *rep = r;
    sent_remove(b, op);
    if (!rep) {
        if (b->redirecting && op->kind != QT_SCRIPT_HEARTBEAT) {
            op->was_sent = 0;
            q_push(&b->waitq, op);   /* resent on the node the redirect named */
            return;
        }
        op_lost(b, op, b->view.error[0] ? b->view.error : "redis: connection lost");
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR && rep->str) {
        if (!strncmp(rep->str, "NOSCRIPT", 8) && op->tries < 2 && usable(b->ac)) {
            op->tries++;
            pthread_mutex_lock(&b->view_lock);
            b->view.noscript_reloads++;
            pthread_mutex_unlock(&b->view_lock);
            b->loads_left = 0;   /* on_loaded only stores the sha */
            load_script(b, op->kind);
            send_op(b, op);      /* pipelined after the load */
            return;
        }
        if ((!strncmp(rep->str, "MOVED ", 6) || !strncmp(rep->str, "ASK ", 4)) && op->tries < 3
            && parse_redirect(b, rep->str) == 0) {
            op->tries++;
            op->was_sent = 0;
            pthread_mutex_lock(&b->view_lock);
            b->view.redirects++;
            pthread_mutex_unlock(&b->view_lock);
            q_push(&b->waitq, op);
            b->redirecting = 1;   /* the tick reconnects (not inside this callback) */
            return;
        }
        char why[200];
        snprintf(why, sizeof why, "redis: %s: %.150s", qt_script_name(op->kind), rep->str);
        pthread_mutex_lock(&b->view_lock);
        b->view.errors++;
        pthread_mutex_unlock(&b->view_lock);
        if (op->kind == QT_SCRIPT_ADMIT)
            admit_down(op, why);
        else if (op->kind == QT_SCRIPT_HEARTBEAT)
            b->hb_in_flight = 0;
        free(op);
        return;
    }
    switch (op->kind) {
    case QT_SCRIPT_ADMIT:
        parse_admit(op, rep);
        break;
    case QT_SCRIPT_HEARTBEAT:
        b->hb_in_flight = 0;
        bk_view_update(b, rep);
        break;
    case QT_SCRIPT_CONTROL:
        b->hb_due_ms = 0;   /* show the change now */
        break;
    default:
        break;
    }
    free(op);
}

/* ---- the tick: deadlines, reconnection, heartbeat ------------------------- */

static void tick(void *ud)
{
    qt_backend *b = ud;
    b->tick = NULL;
    uint64_t now = now_of(b);
    if (b->redirecting && b->st != BK_DOWN) {
        /* Move to the node a MOVED named: ops waiting (or still in flight,
         * through on_reply(NULL)) are resent there once it is up. */
        redisAsyncContext *ac = b->ac, *sub = b->sub;
        b->ac = b->sub = NULL;
        b->st = BK_DOWN;
        if (ac)
            redisAsyncFree(ac);
        if (sub)
            redisAsyncFree(sub);
        b->redirecting = 0;
        connect_now(b);
    } else if (b->st == BK_CONNECTING && now > b->connect_deadline_ms) {
        char why[160];
        snprintf(why, sizeof why, "redis %.100s:%d: no connection within %ldms", b->host, b->port, b->timeout_ms);
        go_down(b, why);
    } else if (b->st == BK_UP && b->sent.head && now > b->sent.head->deadline_ms) {
        char why[160];
        snprintf(why, sizeof why, "redis %.100s:%d: no answer within %ldms", b->host, b->port, b->timeout_ms);
        go_down(b, why);
    } else if (b->kill_reason[0] && b->st != BK_DOWN) {
        char why[sizeof b->kill_reason];
        snprintf(why, sizeof why, "%s", b->kill_reason);
        b->kill_reason[0] = 0;
        go_down(b, why);
    } else if (b->st == BK_DOWN && now >= b->next_connect_ms) {
        /* Back to the configured address: a Cluster redirects again. */
        b->redirecting = 0;
        snprintf(b->host, sizeof b->host, "%s", b->first_host);
        b->port = b->first_port;
        connect_now(b);
    }
    if (b->st == BK_UP && !b->hb_in_flight && now >= b->hb_due_ms) {
        bk_op *op = op_new(b, QT_SCRIPT_HEARTBEAT);
        if (op) {
            b->hb_in_flight = 1;
            b->hb_due_ms = now + (uint64_t)b->hb_ms;
            send_op(b, op);
        }
    }
    if (!b->freeing)
        b->tick = qt_loop_timer_add(b->loop, now + TICK_MS, tick, b);
}

/* ---- public --------------------------------------------------------------- */

static int parse_url(const char *url, char *host, size_t hostlen, int *port)
{
    if (!url || strncmp(url, "redis://", 8))
        return -1;
    const char *h = url + 8;
    const char *at = strchr(h, '@');
    if (at)
        return -1;   /* passwords are not supported */
    const char *colon = strrchr(h, ':');
    const char *slash = strchr(h, '/');
    size_t n = colon ? (size_t)(colon - h) : slash ? (size_t)(slash - h) : strlen(h);
    if (n == 0 || n >= hostlen)
        return -1;
    memcpy(host, h, n);
    host[n] = 0;
    *port = colon ? atoi(colon + 1) : 6379;
    return *port > 0 && *port <= 65535 ? 0 : -1;
}

qt_backend *qt_backend_new(qt_loop *l, const qt_backend_opts *o, char *err, size_t errlen)
{
    char e[160] = "";
    qt_backend *b = calloc(1, sizeof *b);
    if (!b || !l || !o) {
        snprintf(e, sizeof e, "out of memory");
        goto fail;
    }
    if (parse_url(o->url, b->host, sizeof b->host, &b->port) != 0) {
        snprintf(e, sizeof e, "backend.url \"%s\" is not redis://host:port", o->url ? o->url : "");
        goto fail;
    }
    snprintf(b->first_host, sizeof b->first_host, "%s", b->host);
    b->first_port = b->port;
    b->loop = l;
    snprintf(b->tag, sizeof b->tag, "{%s}", o->prefix && *o->prefix ? o->prefix : "quotatop");
    b->lease_ms = o->lease_ms > 0 ? o->lease_ms : 10000;
    b->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 500;
    b->hb_ms = b->lease_ms / 4 < 100 ? 100 : b->lease_ms / 4 > 1000 ? 1000 : b->lease_ms / 4;
    b->burst_ms = o->burst_ms;
    snprintf(b->mode, sizeof b->mode, "%s", o->mode ? o->mode : "run");
    if (gethostname(b->host_name, sizeof b->host_name) != 0)
        snprintf(b->host_name, sizeof b->host_name, "localhost");
    b->host_name[sizeof b->host_name - 1] = 0;
    for (char *p = b->host_name; *p; p++)
        if (*p == '|' || *p == '#')
            *p = '_';
    uint64_t seed = (uint64_t)getpid() ^ qt_loop_now_ms(l) ^ (uint64_t)(uintptr_t)b;
    uint64_t rnd = qt_rand_next(&seed);
    snprintf(b->proc, sizeof b->proc, "%s-%d-%04x", b->host_name, (int)getpid(), (unsigned)(rnd & 0xffff));
    b->n_view = o->n_view_keys > QT_BACKEND_MAX_VIEW ? QT_BACKEND_MAX_VIEW : o->n_view_keys;
    b->view_keys = calloc(b->n_view + 1, sizeof *b->view_keys);
    for (size_t i = 0; b->view_keys && i < b->n_view; i++)
        b->view_keys[i] = strdup(o->view_keys[i] ? o->view_keys[i] : "");
    b->on_control = o->on_control;
    b->on_state = o->on_state;
    b->ud = o->ud;
    b->io.fd = b->sub_io.fd = -1;
    b->backoff_ms = BACKOFF_MIN;
    pthread_mutex_init(&b->view_lock, NULL);
    bk_view_init(b);
    snprintf(b->view.error, sizeof b->view.error, "connecting to redis %.100s:%d", b->host, b->port);
    b->st = BK_DOWN;
    connect_now(b);
    b->tick = qt_loop_timer_add(l, now_of(b) + TICK_MS, tick, b);
    return b;
fail:
    if (err && errlen)
        snprintf(err, errlen, "%s", e);
    free(b);
    return NULL;
}

void qt_backend_free(qt_backend *b)
{
    if (!b)
        return;
    if (b->st == BK_UP && b->ac) {
        /* Leave the fleet: a heartbeat with no info deletes our key; write it
         * out now, the loop will not run for us again. */
        b->freeing = 1;
        bk_op *op = op_new(b, QT_SCRIPT_HEARTBEAT);
        if (op)
            send_op(b, op);
        redisAsyncHandleWrite(b->ac);
    }
    b->freeing = 1;
    if (b->tick)
        qt_loop_timer_cancel(b->loop, b->tick);
    b->tick = NULL;
    go_down(b, "backend closed");
    bk_op *op;
    while ((op = q_pop(&b->owed)))
        free(op);
    while ((op = q_pop(&b->waitq)))
        op_lost(b, op, "backend closed");
    for (size_t i = 0; b->view_keys && i < b->n_view; i++)
        free(b->view_keys[i]);
    free(b->view_keys);
    pthread_mutex_destroy(&b->view_lock);
    free(b);
}

const char *qt_backend_proc_id(const qt_backend *b) { return b->proc; }

int qt_backend_up(const qt_backend *b) { return b->st == BK_UP; }

void qt_backend_admit(qt_backend *b, qt_backend_lease *lease, qt_backend_admit_fn cb, void *ud)
{
    bk_op *op = op_new(b, QT_SCRIPT_ADMIT);
    lease->active = 0;
    lease->seq = ++b->seq;
    if (!op) {
        qt_backend_decision d = { .verdict = QT_BACKEND_DOWN };
        snprintf(d.error, sizeof d.error, "out of memory");
        cb(ud, lease, &d);
        return;
    }
    op->lease = lease;
    op->cb = cb;
    op->ud = ud;
    submit(b, op);
}

static void settle(qt_backend *b, qt_backend_lease *lease, qt_script_id kind, int64_t tokens, double usd)
{
    if (!lease->active)
        return;
    lease->active = 0;
    if (b->in_flight > 0 && lease->seq > 0)   /* seq 0: a spend-only commit (backend_gate.c) */
        b->in_flight--;
    bk_op *op = op_new(b, kind);
    if (!op)
        return;   /* swept after the lease once this process is gone */
    op->lease_copy = *lease;
    op->lease = &op->lease_copy;
    op->tokens = tokens < 0 ? 0 : tokens;
    op->usd = usd;
    pthread_mutex_lock(&b->view_lock);
    if (kind == QT_SCRIPT_COMMIT)
        b->view.commits++;
    else
        b->view.releases++;
    pthread_mutex_unlock(&b->view_lock);
    submit(b, op);
}

void qt_backend_commit(qt_backend *b, qt_backend_lease *lease, int64_t actual_tokens, double actual_usd)
{
    settle(b, lease, QT_SCRIPT_COMMIT, actual_tokens, actual_usd);
}

void qt_backend_release(qt_backend *b, qt_backend_lease *lease)
{
    settle(b, lease, QT_SCRIPT_RELEASE, 0, 0);
}

qt_err qt_backend_control(qt_backend *b, const char *op, const char *arg, const char *what, double value)
{
    if (!op)
        return QT_ERR_INVALID;
    int needs_arg = strcmp(op, "pause") && strcmp(op, "resume");
    if ((strcmp(op, "pause") && strcmp(op, "resume") && strcmp(op, "wfpause") && strcmp(op, "wfresume")
         && strcmp(op, "limit"))
        || (needs_arg && (!arg || !*arg || strlen(arg) >= QT_BACKEND_NAME)))
        return QT_ERR_INVALID;
    if (!strcmp(op, "limit") && value >= 0 && (!what || (strcmp(what, "rpm") && strcmp(what, "tpm")
                                                         && strcmp(what, "conc"))))
        return QT_ERR_INVALID;
    if (b->st != BK_UP)
        return QT_ERR_BACKEND;
    bk_op *o = op_new(b, QT_SCRIPT_CONTROL);
    if (!o)
        return QT_ERR_NOMEM;
    int restore = !strcmp(op, "limit") && value < 0;
    snprintf(o->ctl[0], sizeof o->ctl[0], "%s", restore ? "restore" : op);
    snprintf(o->ctl[1], sizeof o->ctl[1], "%s", needs_arg ? arg : "");
    if (!strcmp(op, "limit") && !restore) {
        snprintf(o->ctl[2], sizeof o->ctl[2], "%s", what);
        snprintf(o->ctl[3], sizeof o->ctl[3], "%.6f", value);
    }
    submit(b, o);
    return QT_OK;
}
