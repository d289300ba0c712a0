/* proxy_conn.c: what `quotatop serve` keeps per connection so that a
 * connection costs no thread: the connection table with each one's
 * deadline, the suspension of requests that wait, and the guard thread.
 *
 * DESIGN
 * libmicrohttpd runs on the engine's loops (proxy_drive.c; "the MHD thread"
 * of a connection is the loop that runs its daemon). A request that waits
 * for the engine is suspended (MHD_suspend_connection: MHD stops polling
 * its socket) and resumed by whoever has news for it: the engine's
 * on_result or stream sink, the guard when the client hangs up, or
 * px_resume_all at shutdown. r->suspended (under r->mu) mirrors MHD's
 * state: it is set in the same critical section that suspends and cleared
 * in the one that resumes, so a resume never precedes its suspend and
 * never happens twice.
 *
 * The guard thread owns one epoll set. Every connection's socket is in it
 * from NOTIFY_STARTED to NOTIFY_CLOSED (EPOLLRDHUP, edge-triggered: one
 * event when the peer hangs up, none for data), so a request that waits
 * costs no epoll_ctl of ours (it was two a request: ADD at the suspend, DEL
 * at the resume). A suspended request is in watch[fd] -> r. The guard's
 * event sets hup[fd] and, if watch[fd] is a suspended request, marks it
 * gone and resumes it, so the handler closes the connection and
 * notify_completed cancels the job. A hang-up that came while nobody was
 * suspended is in hup[fd]: the suspend that finds it re-arms the socket
 * (EPOLL_CTL_MOD, which reports a hang-up already there), so the guard
 * sees it again with the request in watch[]. watch[] and hup[] are under
 * watch_mu, so a suspend and a hang-up event see each other whatever their
 * order. Lock order: watch_mu is never held while taking r->mu (the guard
 * takes a reference under watch_mu, lets go, then locks r), so r->mu ->
 * watch_mu is allowed. A stale event (the fd closed and reused) is
 * harmless: the guard checks the socket itself.
 *
 * Per address: connections are counted in one table for every daemon
 * (px_conn_accept, MHD's accept policy; the entry gives the count back).
 *
 * Deadlines: MHD's connection timeout is per inactivity, so a client that
 * trickles a byte every few seconds would hold its connection forever.
 * Each connection's entry has a deadline: at accept, now + the headers
 * budget; at the first handler call (headers complete), now + the body
 * budget; while quotatop makes it wait, none; after an answer, the idle
 * timeout plus the headers budget for the next request. Every 100 ms the
 * guard walks the table and shuts down (shutdown(2), not close: the fd
 * stays MHD's) the sockets past their deadline; MHD then sees the end and
 * closes them. Entries leave the table in NOTIFY_CONNECTION CLOSED, which
 * MHD calls before closing the fd, under conn_mu, so the walk never shuts
 * down a reused fd.
 */
#include "proxy_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "quotatop/clock.h"

#define GUARD_TICK_MS 100

/* ------------------------------------------------------------ connections per address
 * One table for every daemon (MHD's own per-IP limit counts per daemon):
 * the accept policy counts a connection before MHD makes it, and the
 * connection's entry gives the count back when MHD closes it. A count whose
 * connection MHD then fails to make (out of memory between the policy and
 * NOTIFY_STARTED) is not given back. */

static int ip_key(const struct sockaddr *sa, socklen_t len, unsigned char key[17])
{
    memset(key, 0, 17);
    if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        key[0] = 6;
        memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

static size_t ip_bucket(const unsigned char key[17])
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (int i = 0; i < 17; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % PX_IP_BUCKETS;
}

enum MHD_Result px_conn_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    qt_proxy *px = cls;
    unsigned char key[17];
    if (!px->per_ip_limit || ip_key(addr, addrlen, key))
        return MHD_YES;
    size_t b = ip_bucket(key);
    enum MHD_Result ok = MHD_YES;
    pthread_mutex_lock(&px->ip_mu);
    px_ip *e = px->ip_tab[b];
    while (e && memcmp(e->key, key, sizeof key))
        e = e->next;
    if (!e && (e = calloc(1, sizeof *e))) {
        memcpy(e->key, key, sizeof key);
        e->next = px->ip_tab[b];
        px->ip_tab[b] = e;
    }
    if (e && e->count >= px->per_ip_limit)
        ok = MHD_NO;
    else if (e)
        e->count++;
    pthread_mutex_unlock(&px->ip_mu);
    return ok;
}

static void ip_release(qt_proxy *px, const unsigned char key[17])
{
    if (!key[0])
        return;
    size_t b = ip_bucket(key);
    pthread_mutex_lock(&px->ip_mu);
    for (px_ip **pp = &px->ip_tab[b]; *pp; pp = &(*pp)->next) {
        px_ip *e = *pp;
        if (memcmp(e->key, key, 17))
            continue;
        if (e->count)
            e->count--;
        if (!e->count) {
            *pp = e->next;
            free(e);
        }
        break;
    }
    pthread_mutex_unlock(&px->ip_mu);
}

void px_conn_ips_free(qt_proxy *px)
{
    for (size_t b = 0; b < PX_IP_BUCKETS; b++)
        for (px_ip *e = px->ip_tab[b], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    memset(px->ip_tab, 0, sizeof px->ip_tab);
}

/* ------------------------------------------------------------ connections */

/* Puts pc's socket in the guard's set for the connection's life. */
static void guard_add(qt_proxy *px, px_conn *pc)
{
    if (pc->fd < 0 || (size_t)pc->fd >= px->n_watch || px->guard_ep < 0)
        return;
    pthread_mutex_lock(&px->watch_mu);
    px->hup[pc->fd] = 0;
    pthread_mutex_unlock(&px->watch_mu);
    struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLET, .data.fd = pc->fd };
    if (epoll_ctl(px->guard_ep, EPOLL_CTL_ADD, pc->fd, &ev) == 0
        || (errno == EEXIST && epoll_ctl(px->guard_ep, EPOLL_CTL_MOD, pc->fd, &ev) == 0))
        pc->guarded = 1;
}

void px_conn_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
                    enum MHD_ConnectionNotificationCode code)
{
    qt_proxy *px = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        px_gauge(&px->st.connections, 1);
        unsigned char key[17] = { 0 };
        if (px->per_ip_limit) {
            const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            if (ai && ai->client_addr)
                ip_key(ai->client_addr, ai->client_addr->sa_family == AF_INET6
                                            ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in), key);
        }
        px_conn *pc = calloc(1, sizeof *pc);
        if (!pc) {
            ip_release(px, key);   /* not counted: nothing would give it back */
            return;   /* no deadline for this one; it still works */
        }
        memcpy(pc->ip, key, sizeof key);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        pc->fd = ci ? ci->connect_fd : -1;
        guard_add(px, pc);
        pc->phase = PC_HEADERS;
        pc->deadline_ms = qt_now_ms() + px->headers_ms;
        pthread_mutex_lock(&px->conn_mu);
        pc->next = px->conns;
        if (px->conns)
            px->conns->prev = pc;
        px->conns = pc;
        pthread_mutex_unlock(&px->conn_mu);
        *socket_ctx = pc;
        return;
    }
    px_gauge(&px->st.connections, -1);
    px_conn *pc = *socket_ctx;
    if (!pc)
        return;
    *socket_ctx = NULL;
    if (pc->guarded)   /* MHD has not closed the fd yet */
        epoll_ctl(px->guard_ep, EPOLL_CTL_DEL, pc->fd, NULL);
    pthread_mutex_lock(&px->conn_mu);
    if (pc->prev)
        pc->prev->next = pc->next;
    else
        px->conns = pc->next;
    if (pc->next)
        pc->next->prev = pc->prev;
    pthread_mutex_unlock(&px->conn_mu);
    ip_release(px, pc->ip);
    free(pc);
}

void px_conn_phase(qt_proxy *px, px_conn *pc, px_phase phase)
{
    if (!pc)
        return;
    uint64_t now = qt_now_ms(), d = 0;
    if (phase == PC_BODY)
        d = now + px->body_ms;
    else if (phase == PC_IDLE)
        d = now + (uint64_t)px->idle_timeout_s * 1000 + px->headers_ms;
    else if (phase == PC_HEADERS)
        d = now + px->headers_ms;
    __atomic_store_n(&pc->phase, (int)phase, __ATOMIC_RELAXED);
    __atomic_store_n(&pc->deadline_ms, d, __ATOMIC_RELAXED);
}

/* Cuts the connections past their deadline (guard thread). */
static void sweep(qt_proxy *px, uint64_t now)
{
    pthread_mutex_lock(&px->conn_mu);
    for (px_conn *pc = px->conns; pc; pc = pc->next) {
        uint64_t d = __atomic_load_n(&pc->deadline_ms, __ATOMIC_RELAXED);
        if (!d || now < d || pc->fd < 0)
            continue;
        int phase = __atomic_load_n(&pc->phase, __ATOMIC_RELAXED);
        __atomic_store_n(&pc->deadline_ms, 0, __ATOMIC_RELAXED);
        shutdown(pc->fd, SHUT_RDWR);
        px_count(phase == PC_BODY ? &px->st.cut_body : phase == PC_IDLE ? &px->st.cut_idle
                                                                       : &px->st.cut_headers, 1);
    }
    pthread_mutex_unlock(&px->conn_mu);
}

/* ------------------------------------------------------------ suspend, resume, watch */

void px_suspend_locked(px_req *r)
{
    qt_proxy *px = r->px;
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    if (r->sock < 0 || (size_t)r->sock >= px->n_watch || px->guard_ep < 0 || !r->pc
        || !r->pc->guarded)
        return;
    pthread_mutex_lock(&px->watch_mu);
    px->watch[r->sock] = r;
    int hup = px->hup[r->sock];
    pthread_mutex_unlock(&px->watch_mu);
    r->watched = 1;
    if (hup) {   /* hung up before: show the guard again, now that r is in watch[] */
        struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLET, .data.fd = r->sock };
        epoll_ctl(px->guard_ep, EPOLL_CTL_MOD, r->sock, &ev);
    }
}

void px_resume_locked(px_req *r)
{
    if (!r->suspended)
        return;
    r->suspended = 0;
    MHD_resume_connection(r->conn);
    px_wake(r->drv);
}

void px_unwatch(px_req *r)
{
    if (!r->watched)
        return;
    qt_proxy *px = r->px;
    r->watched = 0;
    pthread_mutex_lock(&px->watch_mu);
    if (px->watch[r->sock] == r)
        px->watch[r->sock] = NULL;
    pthread_mutex_unlock(&px->watch_mu);
}

/* True when the peer of fd has hung up (or the socket broke). */
static int hung_up(int fd)
{
    struct pollfd pf = { .fd = fd, .events = POLLRDHUP };
    return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* A hang-up event on fd (guard thread). */
static void on_hangup(qt_proxy *px, int fd)
{
    if (fd < 0 || (size_t)fd >= px->n_watch)
        return;
    pthread_mutex_lock(&px->watch_mu);
    px->hup[fd] = 1;
    px_req *r = px->watch[fd];
    if (r)
        px_req_ref(r);   /* watch_mu is released before r->mu is taken */
    pthread_mutex_unlock(&px->watch_mu);
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    if (r->suspended && r->sock == fd && hung_up(fd)) {
        /* An answer that is complete still gets written. */
        if (!r->have_result)
            r->client_gone = 1;
        px_resume_locked(r);
    }
    pthread_mutex_unlock(&r->mu);
    px_req_unref(r);
}

void px_resume_all(qt_proxy *px)
{
    pthread_mutex_lock(&px->conn_mu);
    for (px_conn *pc = px->conns; pc; pc = pc->next) {
        px_req *r = pc->req;
        if (!r)
            continue;
        pthread_mutex_lock(&r->mu);
        if (r->suspended) {
            r->client_gone = 1;
            px_resume_locked(r);
        }
        pthread_mutex_unlock(&r->mu);
    }
    pthread_mutex_unlock(&px->conn_mu);
}

/* ------------------------------------------------------------ the guard thread */

static void *guard_main(void *arg)
{
    qt_proxy *px = arg;
    struct epoll_event ev[256];
    uint64_t next_sweep = qt_now_ms() + GUARD_TICK_MS;
    while (!__atomic_load_n(&px->guard_stop, __ATOMIC_ACQUIRE)) {
        uint64_t now = qt_now_ms();
        int wait = now >= next_sweep ? 0 : (int)(next_sweep - now);
        int n = epoll_wait(px->guard_ep, ev, (int)QT_ARRAY_LEN(ev), wait);
        for (int i = 0; i < n; i++)
            on_hangup(px, ev[i].data.fd);
        now = qt_now_ms();
        if (now >= next_sweep) {
            sweep(px, now);
            next_sweep = now + GUARD_TICK_MS;
        }
    }
    return NULL;
}

int px_guard_start(qt_proxy *px)
{
    struct rlimit rl;
    size_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (size_t)rl.rlim_cur : 65536;
    if (n > (1u << 20))
        n = 1u << 20;
    px->watch = calloc(n, sizeof *px->watch);
    px->hup = calloc(n, 1);
    if (!px->watch || !px->hup)
        return -1;
    px->n_watch = n;
    px->guard_ep = epoll_create1(EPOLL_CLOEXEC);
    if (px->guard_ep < 0)
        return -1;
    if (pthread_create(&px->guard, NULL, guard_main, px))
        return -1;
    px->guard_running = 1;
    return 0;
}

void px_guard_stop(qt_proxy *px)
{
    if (px->guard_running) {
        __atomic_store_n(&px->guard_stop, 1, __ATOMIC_RELEASE);
        pthread_join(px->guard, NULL);
        px->guard_running = 0;
    }
    if (px->guard_ep >= 0)
        close(px->guard_ep);
    px->guard_ep = -1;
    free(px->watch);
    free(px->hup);
    px->watch = NULL;
    px->hup = NULL;
    px->n_watch = 0;
}
