/* mock.c: the simulated provider's server (see include/quotatop/mock.h).
 *
 * DESIGN
 * libmicrohttpd runs a small pool of epoll threads with suspend/resume, so
 * 10,000 slow requests in flight cost no thread each: latency and stream
 * pacing are timers. The body of a POST is gathered in a per-request buffer
 * (mock_conn); the last call of the access handler runs the pipeline:
 *
 *   parse body -> one critical section under m->lock: count the arrival,
 *   find/create the model, decide (401, 400, 404, outage 503/529, context
 *   400, RPM/TPM 429, injected 500/503/529, ok), charge the buckets, draw
 *   the jitter, snapshot the header values -> unlock -> with a latency:
 *   suspend the connection and put a timer in m->heap; the timer thread
 *   resumes it when due (at once when qt_mock_stop runs) and MHD calls the
 *   handler again -> build the body (mock_body.c) or the error
 *   (mock_reply.c) and queue it. A stream's reader suspends the same way
 *   for stream_chunk_ms between events.
 *
 * Every body is built outside the lock. Latency applies only to admitted
 * requests (ok and injected 5xx); refusals (401/400/404/429/outage) answer
 * at once, as real providers do. Ordering: checks run in the order above,
 * so an outage wins over a rate limit and a rate limit over a fault.
 *
 * Locks: m->lock guards the model table, the PRNG and the sequence number.
 * m->timer_lock guards the heap and m->stopping; a connection is suspended
 * and its timer pushed in one critical section under it, and the timer
 * thread resumes under it, so a resume never precedes its suspend. The two
 * locks are never held together.
 */
#include "quotatop/mock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "mock_int.h"
#include "quotatop/clock.h"

#define MAX_BODY (8u << 20)      /* larger request bodies get 413 */

/* ---- timers ---- */

static void heap_swap(mock_timer *h, size_t i, size_t j)
{
    mock_timer t = h[i];
    h[i] = h[j];
    h[j] = t;
}

/* Suspends c until at_ms (access handler or content reader of c).
 * Returns false, suspending nothing, when the mock stops or is out of
 * memory: the caller then goes on at once. */
static bool mock_suspend_until(qt_mock *m, struct MHD_Connection *c, uint64_t at_ms)
{
    pthread_mutex_lock(&m->timer_lock);
    if (m->stopping || !m->timer_running) {
        pthread_mutex_unlock(&m->timer_lock);
        return false;
    }
    if (m->nheap == m->capheap) {
        size_t nc = m->capheap ? m->capheap * 2 : 1024;
        mock_timer *h = realloc(m->heap, nc * sizeof *h);
        if (!h) {
            pthread_mutex_unlock(&m->timer_lock);
            return false;
        }
        m->heap = h;
        m->capheap = nc;
    }
    size_t i = m->nheap++;
    m->heap[i] = (mock_timer){ at_ms, c };
    while (i > 0 && m->heap[(i - 1) / 2].at_ms > m->heap[i].at_ms) {
        heap_swap(m->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    MHD_suspend_connection(c);
    if (i == 0)
        pthread_cond_signal(&m->timer_cv);   /* a new earliest timer */
    pthread_mutex_unlock(&m->timer_lock);
    return true;
}

/* Pops the earliest timer (caller holds timer_lock, heap not empty). */
static mock_timer heap_pop(qt_mock *m)
{
    mock_timer top = m->heap[0];
    m->heap[0] = m->heap[--m->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < m->nheap && m->heap[l].at_ms < m->heap[s].at_ms)
            s = l;
        if (r < m->nheap && m->heap[r].at_ms < m->heap[s].at_ms)
            s = r;
        if (s == i)
            break;
        heap_swap(m->heap, i, s);
        i = s;
    }
    return top;
}

/* The timer thread: resumes each suspended connection when its time comes;
 * every one at once when the mock stops. */
static void *timer_main(void *arg)
{
    qt_mock *m = arg;
    pthread_mutex_lock(&m->timer_lock);
    for (;;) {
        uint64_t now = qt_now_ms();
        while (m->nheap && (m->stopping || m->heap[0].at_ms <= now))
            MHD_resume_connection(heap_pop(m).c);
        if (m->stopping)
            break;
        if (!m->nheap) {
            pthread_cond_wait(&m->timer_cv, &m->timer_lock);
            continue;
        }
        uint64_t wait = m->heap[0].at_ms - now;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&m->timer_cv, &m->timer_lock, &ts);
    }
    pthread_mutex_unlock(&m->timer_lock);
    return NULL;
}

static bool mock_stopping(qt_mock *m)
{
    pthread_mutex_lock(&m->timer_lock);
    bool s = m->stopping;
    pthread_mutex_unlock(&m->timer_lock);
    return s;
}

/* ---- the chat pipeline ---- */

static bool key_ok(const qt_mock *m, struct MHD_Connection *c, bool anthropic)
{
    if (!m->key)
        return true;
    const char *got;
    if (anthropic) {
        got = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
    } else {
        got = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (got && !strncasecmp(got, "Bearer ", 7))
            got += 7;
        else
            got = NULL;
    }
    if (!got)
        return false;
    /* compare without an early exit, so timing does not tell a prefix */
    size_t n = strlen(m->key), gn = strlen(got);
    unsigned char diff = (unsigned char)(n != gn);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(m->key[i] ^ got[i < gn ? i : 0]);
    return diff == 0;
}

static void count_outcome(mock_counts *c, mock_decision d)
{
    switch (d) {
    case MOCK_D_OK:        c->ok++; break;
    case MOCK_D_RL_REQ:    c->rate_limited++; c->rl_requests++; break;
    case MOCK_D_RL_TOK:    c->rate_limited++; c->rl_tokens++; break;
    case MOCK_D_OUTAGE:
    case MOCK_D_FAIL_500:
    case MOCK_D_FAIL_503:  c->s5xx++; break;
    default:          c->s4xx++; break;
    }
}

static uint64_t draw_delay(uint64_t *rng, const qt_mock_model_opts *o)
{
    uint64_t d = o->latency_ms;
    if (o->jitter_ms) {
        double u = qt_rand01(rng);
        double j = o->jitter_dist == QT_MOCK_JITTER_EXP ? -log1p(-u) * o->jitter_ms
                                                        : u * (o->jitter_ms + 1);
        if (j > 10.0 * o->jitter_ms)
            j = 10.0 * o->jitter_ms;
        d += (uint64_t)j;
    }
    return d;
}

/* The critical section: classify, count, charge. */
static void decide(qt_mock *m, const mock_req *q, bool auth_ok, bool too_big, mock_verdict *v)
{
    memset(v, 0, sizeof *v);
    uint64_t now = qt_now_ms();
    pthread_mutex_lock(&m->lock);
    v->seq = ++m->seq;
    mock_table *t = &m->table;
    mock_counts_arrive(&t->total, now);
    mock_model *md = NULL;
    if (!too_big && q->has_model) {
        md = mock_table_get(t, q->model, !m->only_declared, &m->defaults, now);
        if (md)
            mock_counts_arrive(&md->c, now);
    }
    const qt_mock_model_opts *o = md ? &md->o : &m->defaults;
    uint64_t cost = q->prompt_tokens + q->max_tokens;

    if (md) {
        mock_bucket_refill(&md->req, o->rpm, now);
        mock_bucket_refill(&md->tok, o->tpm, now);
    }
    if (!auth_ok)
        v->d = MOCK_D_AUTH;
    else if (too_big)
        v->d = MOCK_D_TOO_BIG;
    else if (q->error)
        v->d = MOCK_D_BAD;
    else if (!md)
        v->d = m->only_declared ? MOCK_D_NO_MODEL : MOCK_D_TABLE_FULL;
    else if (mock_in_outage(t, md, m->start_ms, now))
        v->d = MOCK_D_OUTAGE;
    else if (o->context_window && cost > o->context_window)
        v->d = MOCK_D_CONTEXT;
    else {
        uint64_t wr, wt;
        bool fr = mock_bucket_fits(&md->req, o->rpm, 1, &wr);
        bool ft = mock_bucket_fits(&md->tok, o->tpm, cost, &wt);
        if (!fr || !ft) {
            v->d = !fr ? MOCK_D_RL_REQ : MOCK_D_RL_TOK;
            v->retry_ms = wr > wt ? wr : wt;
        } else {
            if (o->rpm) md->req.level -= 1.0;
            if (o->tpm) md->tok.level -= (double)cost;
            if (o->fail_rate > 0 && qt_rand01(&m->rng) < o->fail_rate)
                v->d = qt_rand_next(&m->rng) & 1 ? MOCK_D_FAIL_503 : MOCK_D_FAIL_500;
            else
                v->d = MOCK_D_OK;
            v->delay_ms = draw_delay(&m->rng, o);
        }
    }
    v->context_window = o->context_window;
    if (v->d == MOCK_D_OK) {
        v->completion = mock_completion_tokens(o, q->prompt_tokens, q->max_tokens, &v->truncated);
        mock_usage_extras(md, q, v);
        md->c.prompt_tokens += q->prompt_tokens;
        md->c.completion_tokens += v->completion;
        t->total.prompt_tokens += q->prompt_tokens;
        t->total.completion_tokens += v->completion;
    }
    if (md) {
        v->have_limits = true;
        v->rpm = o->rpm;
        v->tpm = o->tpm;
        v->rem_req = mock_bucket_remaining(&md->req, o->rpm);
        v->rem_tok = mock_bucket_remaining(&md->tok, o->tpm);
        v->reset_req_ms = mock_bucket_reset_ms(&md->req, o->rpm);
        v->reset_tok_ms = mock_bucket_reset_ms(&md->tok, o->tpm);
        count_outcome(&md->c, v->d);
        if (++md->c.in_flight > md->c.max_in_flight)
            md->c.max_in_flight = md->c.in_flight;
    }
    count_outcome(&t->total, v->d);
    if (++t->total.in_flight > t->total.max_in_flight)
        t->total.max_in_flight = t->total.in_flight;
    pthread_mutex_unlock(&m->lock);
}

static void done_in_flight(qt_mock *m, const mock_req *q)
{
    pthread_mutex_lock(&m->lock);
    mock_model *md = q->has_model ? mock_table_get(&m->table, q->model, false, NULL, 0) : NULL;
    if (md && md->c.in_flight)
        md->c.in_flight--;
    if (m->table.total.in_flight)
        m->table.total.in_flight--;
    pthread_mutex_unlock(&m->lock);
}

/* A chat request's first part: parse, decide, and with a latency suspend
 * the connection until it has run out. Returns true when suspended (the
 * handler is called again then and finishes with chat_finish). */
static bool chat_begin(qt_mock *m, struct MHD_Connection *c, mock_conn *cx, mock_api api)
{
    bool anthropic = api == MOCK_API_MESSAGES;
    if (cx->too_big)
        memset(&cx->q, 0, sizeof cx->q);
    else if (api == MOCK_API_RESPONSES || api == MOCK_API_EMBEDDINGS)
        mock_parse_api_request(cx->buf, cx->len, api, &cx->q);
    else
        mock_parse_request(cx->buf, cx->len, anthropic, &cx->q);
    cx->q.api = (int)api;
    bool auth = key_ok(m, c, anthropic);
    cx->anthropic = anthropic;
    cx->key_given = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                anthropic ? "x-api-key" : "Authorization") != NULL;
    decide(m, &cx->q, auth, cx->too_big, &cx->v);
    cx->state = 1;
    return cx->v.delay_ms && mock_suspend_until(m, c, qt_now_ms() + cx->v.delay_ms);
}

/* The answer of a decided chat request (its latency is over). */
static void chat_finish(qt_mock *m, mock_conn *cx, mock_reply *r)
{
    const mock_req *q = &cx->q;
    const mock_verdict *v = &cx->v;
    bool anthropic = cx->anthropic;
    char rid[48];
    snprintf(rid, sizeof rid, "req_mock%016llx", (unsigned long long)v->seq);
    mock_add_header_s(r, anthropic ? "request-id" : "x-request-id", rid);
    mock_limit_headers(r, v, anthropic);
    if (v->d != MOCK_D_OK) {
        mock_error_reply(r, v, q, anthropic, cx->key_given);
    } else {
        mock_answer a = { q->model, q->prompt_tokens, v->completion, v->truncated, v->seq,
                          qt_wall_ms() / 1000, q, v->cached, v->cache_write };
        if (q->api == MOCK_API_EMBEDDINGS) {
            mock_set_json(r, 200, mock_embeddings_body(&a));
        } else if (q->stream) {
            r->events = anthropic ? mock_anthropic_stream(&a, &r->nev)
                        : q->api == MOCK_API_RESPONSES ? mock_responses_stream(&a, &r->nev)
                        : mock_openai_stream(&a, q->include_usage, &r->nev);
            r->status = r->events ? 200 : 500;
            r->ctype = "text/event-stream";
            mock_add_header_s(r, "Cache-Control", "no-cache");
        } else {
            mock_set_json(r, 200, anthropic ? mock_anthropic_body(&a)
                                  : q->api == MOCK_API_RESPONSES ? mock_responses_body(&a)
                                  : mock_openai_body(&a));
        }
    }
    static const char *const paths[] = {"/v1/chat/completions", "/v1/messages", "/v1/responses",
                                        "/v1/embeddings"};
    if (m->verbose)
        fprintf(stderr, "mock: POST %s model=%s -> %u\n", paths[q->api & 3],
                q->has_model ? q->model : "-", r->status);
    done_in_flight(m, q);
}

static bool any_key_ok(const qt_mock *m, struct MHD_Connection *c)
{
    return key_ok(m, c, false) || key_ok(m, c, true);
}

/* Fills *r for one complete request. */
static void route(qt_mock *m, struct MHD_Connection *c, const char *url, const char *method,
                  mock_conn *cx, mock_reply *r)
{
    bool post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
    bool anth_kind = m->kind == QT_MOCK_ANTHROPIC;
    if (mock_api_of(url) >= 0) {
        bool anthropic = mock_api_of(url) == MOCK_API_MESSAGES;
        if (!post)   /* POST is answered by chat_begin / chat_finish */
            mock_bad_method(r, anthropic, method, url, "POST");
    } else if (!strcmp(url, "/healthz")) {
        if (!get && strcmp(method, "HEAD"))
            return mock_bad_method(r, anth_kind, method, url, "GET");
        r->status = 200;
        r->body = strdup("ok\n");
        r->ctype = "text/plain";
    } else if (!strcmp(url, "/stats")) {
        if (get)
            mock_set_json(r, 200, qt_mock_stats_json(m));
        else if (!strcmp(method, "DELETE")) {
            qt_mock_stats_reset(m);
            mock_set_json(r, 200, strdup("{\"ok\":true}"));
        } else
            mock_bad_method(r, anth_kind, method, url, "GET, DELETE");
    } else if (!strcmp(url, "/stats/reset")) {
        if (!post)
            return mock_bad_method(r, anth_kind, method, url, "POST");
        qt_mock_stats_reset(m);
        mock_set_json(r, 200, strdup("{\"ok\":true}"));
    } else if (!strcmp(url, "/v1/models")) {
        if (!get)
            return mock_bad_method(r, anth_kind, method, url, "GET");
        mock_handle_models(m, r);
    } else if (!strcmp(url, "/control/outage") || !strcmp(url, "/control/model")) {
        if (!post)
            return mock_bad_method(r, anth_kind, method, url, "POST");
        if (!any_key_ok(m, c))
            return mock_kind_error(r, anth_kind, 401, "authentication_error", "invalid_request_error",
                              "invalid_api_key", "a valid API key is required");
        mock_handle_control(m, url + 9, cx, r);
    } else {
        mock_not_found(r, anth_kind, method, url);
    }
}

/* ---- libmicrohttpd glue ---- */

typedef struct {
    qt_mock *m;
    struct MHD_Connection *c;
    char   **ev;
    size_t   n, i, off;
    bool     paced;              /* the pause before event i is over */
} stream_state;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_state *s = cls;
    if (s->i == s->n)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (s->off == 0 && s->i > 0 && s->m->stream_chunk_ms) {
        /* Pause between events: suspended until the timer resumes it, then
         * called again for the same position. */
        if (!s->paced && mock_suspend_until(s->m, s->c, qt_now_ms() + s->m->stream_chunk_ms)) {
            s->paced = true;
            return 0;
        }
        s->paced = false;
        if (mock_stopping(s->m))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    const char *e = s->ev[s->i];
    size_t left = strlen(e + s->off), k = left < max ? left : max;
    memcpy(buf, e + s->off, k);
    s->off += k;
    if (s->off == strlen(e)) {
        s->i++;
        s->off = 0;
    }
    return (ssize_t)k;
}

static void stream_free(void *cls)
{
    stream_state *s = cls;
    mock_events_free(s->ev, s->n);
    free(s);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, qt_mock *m, mock_reply *r)
{
    struct MHD_Response *resp = NULL;
    if (r->events) {
        stream_state *s = malloc(sizeof *s);
        if (s) {
            *s = (stream_state){ m, c, r->events, r->nev, 0, 0, false };
            resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s,
                                                     stream_free);
            if (!resp)
                stream_free(s);
        } else {
            mock_events_free(r->events, r->nev);
        }
        r->events = NULL;
    } else {
        size_t len = r->body ? strlen(r->body) : 0;
        resp = MHD_create_response_from_buffer(len, r->body ? r->body : (char *)"",
                                               r->body ? MHD_RESPMEM_MUST_FREE
                                                       : MHD_RESPMEM_PERSISTENT);
        if (!resp)
            free(r->body);
        r->body = NULL;
    }
    if (!resp)
        return MHD_NO;
    if (r->ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    for (int i = 0; i < r->nh; i++)
        MHD_add_response_header(resp, r->h[i].name, r->h[i].value);
    enum MHD_Result rc = MHD_queue_response(c, r->status ? r->status : 500, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    qt_mock *m = cls;
    mock_conn *cx = *con_cls;
    if (!cx) {
        cx = calloc(1, sizeof *cx);
        if (!cx)
            return MHD_NO;
        *con_cls = cx;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (cx->too_big || cx->len + n > MAX_BODY) {
            cx->too_big = true;
            return MHD_YES;
        }
        if (cx->len + n + 1 > cx->cap) {
            size_t ncap = cx->cap ? cx->cap : 1024;
            while (ncap < cx->len + n + 1)
                ncap *= 2;
            char *b = realloc(cx->buf, ncap);
            if (!b)
                return MHD_NO;
            cx->buf = b;
            cx->cap = ncap;
        }
        memcpy(cx->buf + cx->len, upload, n);
        cx->len += n;
        cx->buf[cx->len] = '\0';
        return MHD_YES;
    }
    bool chat = !strcmp(method, "POST") && mock_api_of(url) >= 0;
    if (chat && cx->state == 0 && chat_begin(m, c, cx, (mock_api)mock_api_of(url)))
        return MHD_YES;   /* suspended: called again when the latency is over */
    mock_reply r;
    memset(&r, 0, sizeof r);
    if (chat)
        chat_finish(m, cx, &r);
    else
        route(m, c, url, method, cx, &r);
    return send_reply(c, m, &r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls; (void)c; (void)toe;
    mock_conn *cx = *con_cls;
    if (cx) {
        free(cx->buf);
        free(cx);
        *con_cls = NULL;
    }
}

/* Binds and listens on "HOST:PORT"; returns the socket or -1 with err. */
static int listen_on(const char *listen_s, bool *v6, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen_s, ':');
    if (!colon || colon == listen_s || !colon[1] ||
        (size_t)(colon - listen_s) >= sizeof host) {
        snprintf(err, errlen, "bad listen address '%s' (expected HOST:PORT)", listen_s);
        return -1;
    }
    memcpy(host, listen_s, (size_t)(colon - listen_s));
    host[colon - listen_s] = '\0';
    char *h = host;
    size_t hl = strlen(h);
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        snprintf(err, errlen, "bad port in listen address '%s'", listen_s);
        return -1;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
    int gai = getaddrinfo(h, colon + 1, &hints, &ai);
    if (gai) {
        snprintf(err, errlen, "cannot resolve '%s': %s", h, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4096)) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen_s, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    return fd;
}

/* Raises the soft RLIMIT_NOFILE to the hard one; the connections that
 * leaves room for. */
static unsigned connection_room(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return 1000;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = { rl.rlim_max > (1u << 20) ? (1u << 20) : rl.rlim_max, rl.rlim_max };
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl.rlim_cur = up.rlim_cur;
    }
    uint64_t n = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : (uint64_t)rl.rlim_cur;
    n = n > 128 ? n - 64 : 64;
    return n > 1000000 ? 1000000 : (unsigned)n;
}

/* Stops the timer thread, which first resumes every suspended connection
 * (MHD must not meet one when it stops); later suspends are refused. */
static void stop_timers(qt_mock *m)
{
    pthread_mutex_lock(&m->timer_lock);
    m->stopping = true;
    pthread_cond_signal(&m->timer_cv);
    pthread_mutex_unlock(&m->timer_lock);
    if (m->timer_running)
        pthread_join(m->timer_thread, NULL);
    m->timer_running = false;
}

qt_mock *qt_mock_start(const qt_mock_opts *opts, char *err, size_t errlen)
{
    qt_mock *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->kind = opts->kind;
    m->defaults = opts->defaults;
    m->defaults.name[0] = '\0';
    m->only_declared = opts->only_declared;
    m->stream_chunk_ms = opts->stream_chunk_ms;
    m->verbose = opts->verbose;
    m->rng = opts->seed;
    m->start_ms = qt_now_ms();
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->timer_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->timer_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (opts->require_key && opts->require_key[0] && !(m->key = strdup(opts->require_key))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < opts->nmodels; i++) {
        if (!opts->models[i].name[0]) {
            snprintf(err, errlen, "declared model %zu has no name", i);
            goto fail;
        }
        if (qt_mock_set_model(m, &opts->models[i])) {
            snprintf(err, errlen, "out of memory or too many models (max %d)", MOCK_MAX_MODELS);
            goto fail;
        }
    }
    bool v6 = false;
    int fd = listen_on(opts->listen ? opts->listen : "127.0.0.1:0", &v6, err, errlen);
    if (fd < 0)
        goto fail;
    m->port = qt_bound_port(fd);
    if (pthread_create(&m->timer_thread, NULL, timer_main, m)) {
        snprintf(err, errlen, "cannot start the timer thread");
        close(fd);
        goto fail;
    }
    m->timer_running = true;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = nc < 2 ? 2 : nc > 16 ? 16 : (unsigned)nc;
    m->d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                                MHD_USE_TURBO | (v6 ? MHD_USE_IPv6 : 0),
                            0, NULL, NULL, on_request, m,
                            MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_THREAD_POOL_SIZE, threads,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, m,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                            MHD_OPTION_CONNECTION_LIMIT, connection_room(),
                            MHD_OPTION_END);
    if (!m->d) {
        snprintf(err, errlen, "libmicrohttpd failed to start on %s",
                 opts->listen ? opts->listen : "127.0.0.1:0");
        close(fd);
        goto fail;
    }
    return m;
fail:
    stop_timers(m);
    mock_table_free(&m->table);
    free(m->key);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->timer_lock);
    pthread_cond_destroy(&m->timer_cv);
    free(m);
    return NULL;
}

int qt_mock_port(const qt_mock *m)
{
    return m->port;
}

void qt_mock_stop(qt_mock *m)
{
    if (!m)
        return;
    stop_timers(m);              /* every waiting request is resumed now */
    MHD_stop_daemon(m->d);
    mock_table_free(&m->table);
    if (m->key) {
        memset(m->key, 0, strlen(m->key));
        free(m->key);
    }
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->timer_lock);
    pthread_cond_destroy(&m->timer_cv);
    free(m->heap);
    free(m);
}
