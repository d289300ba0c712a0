/* replay_wire.c: what crosses the simulated wire of `replay` (see
 * replay_int.h): recorded requests as jobs, provider bodies read back, and
 * simulated answers as the HTTP responses each provider kind sends.
 *
 * The shapes follow the mock's (src/sim/mock_reply.c) and the real APIs:
 * OpenAI x-ratelimit-{limit,remaining,reset}-{requests,tokens} with
 * durations, Anthropic anthropic-ratelimit-{requests,tokens}-{limit,
 * remaining,reset} with RFC 3339 times rounded up to the second, 429s with
 * retry-after (whole seconds, rounded up) and retry-after-ms; errors as
 * {"error":{message,type,param,code}} or {"type":"error","error":{type,
 * message}}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replay_int.h"

cJSON *rp_job_body(const qt_trace_data *d, size_t idx)
{
    const qt_trace_req *r = &d->reqs[idx];
    const char *ep = qt_trace_name(d, r->endpoint);
    int messages = !strcmp(ep, "messages"), responses = !strcmp(ep, "responses");
    int embeddings = !strcmp(ep, "embeddings");
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char id[32];
    snprintf(id, sizeof id, "r%zu", idx);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "workflow", qt_trace_name(d, r->wf));
    cJSON_AddNumberToObject(o, "priority", r->prio);
    cJSON_AddStringToObject(o, "model", qt_trace_name(d, r->model));
    if (messages || responses || embeddings)   /* the recorded request's own API */
        cJSON_AddStringToObject(o, "endpoint", ep);
    if (r->max_tokens > 0 && !embeddings)
        cJSON_AddNumberToObject(o, responses ? "max_output_tokens" : "max_tokens", r->max_tokens);
    /* Chat and messages: "messages"; responses: "input" message items;
     * embeddings: "input" strings. The same characters either way. */
    cJSON *msgs = cJSON_AddArrayToObject(o, responses || embeddings ? "input" : "messages");
    int n = r->msgs > 0 ? r->msgs : 1;
    if (n > 256)
        n = 256;
    char marker[32];
    int ml = snprintf(marker, sizeof marker, "#r%zu ", idx);
    size_t total = r->chars > (uint32_t)ml ? r->chars : (size_t)ml;
    char *text = malloc(total + 1);
    if (!text || !msgs) {
        free(text);
        cJSON_Delete(o);
        return NULL;
    }
    /* The first part holds the whole marker, however small the parts. */
    size_t first = total / (size_t)n < (size_t)ml ? (size_t)ml : total / (size_t)n;
    size_t per = n > 1 ? (total - first) / (size_t)(n - 1) : 0, used = 0;
    for (int i = 0; i < n; i++) {
        size_t len = i == n - 1 ? total - used : i == 0 ? first : per;
        memset(text, 'x', len);
        if (i == 0)
            memcpy(text, marker, (size_t)ml < len ? (size_t)ml : len);
        text[len] = '\0';
        used += len;
        if (embeddings) {
            cJSON_AddItemToArray(msgs, cJSON_CreateString(text));
            continue;
        }
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", text);
        cJSON_AddItemToArray(msgs, m);
    }
    free(text);
    return o;
}

/* The string value after "key":" in a compact JSON body, into out. */
static int find_str(const char *body, const char *key, char *out, size_t len)
{
    const char *p = strstr(body, key);
    if (!p)
        return -1;
    p += strlen(key);
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < len)
        out[i++] = *p++;
    out[i] = '\0';
    return 0;
}

int rp_parse_request(const char *body, size_t len, rp_req_info *out)
{
    memset(out, 0, sizeof *out);
    out->job = -1;
    out->chars = len;
    if (!body)
        return -1;
    if (find_str(body, "\"model\":\"", out->model, sizeof out->model) != 0)
        return -1;
    const char *p = strstr(body, "\"max_tokens\":");
    if (!p)
        p = strstr(body, "\"max_completion_tokens\":");
    if (!p)
        p = strstr(body, "\"max_output_tokens\":");
    out->stream = strstr(body, "\"stream\":true") != NULL;
    if (p) {
        long long v = strtoll(strchr(p, ':') + 1, NULL, 10);
        out->max_tokens = v > 0 && v < (1LL << 30) ? v : 0;
    }
    const char *m = strstr(body, "#r");
    if (m) {
        char *end;
        long v = strtol(m + 2, &end, 10);
        if (end != m + 2 && *end == ' ' && v >= 0)
            out->job = v;
    }
    return 0;
}

static qt_err add_header(qt_http_response *r, const char *name, const char *fmt, unsigned long long v,
                         const char *s)
{
    qt_http_header *h = realloc(r->headers, (r->n_headers + 1) * sizeof *h);
    if (!h)
        return QT_ERR_NOMEM;
    r->headers = h;
    char buf[64];
    if (s)
        snprintf(buf, sizeof buf, "%s", s);
    else
        snprintf(buf, sizeof buf, fmt, v);
    h[r->n_headers].name = strdup(name);
    h[r->n_headers].value = strdup(buf);
    if (!h[r->n_headers].name || !h[r->n_headers].value) {
        free(h[r->n_headers].name);
        free(h[r->n_headers].value);
        return QT_ERR_NOMEM;
    }
    r->n_headers++;
    return QT_OK;
}

static void rfc3339(uint64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)((ms + 999) / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static qt_err limit_headers(qt_http_response *r, qt_provider_kind kind, const qt_sim_answer *a,
                            uint64_t wall)
{
    qt_err e = QT_OK;
    char t[48];
    if (kind == QT_KIND_OPENAI) {
        if (a->rpm) {
            e |= add_header(r, "x-ratelimit-limit-requests", "%llu", a->rpm, NULL);
            e |= add_header(r, "x-ratelimit-remaining-requests", "%llu", a->rem_req, NULL);
            e |= add_header(r, "x-ratelimit-reset-requests", "%llums", a->reset_req_ms, NULL);
        }
        if (a->tpm) {
            e |= add_header(r, "x-ratelimit-limit-tokens", "%llu", a->tpm, NULL);
            e |= add_header(r, "x-ratelimit-remaining-tokens", "%llu", a->rem_tok, NULL);
            e |= add_header(r, "x-ratelimit-reset-tokens", "%llums", a->reset_tok_ms, NULL);
        }
        return e ? QT_ERR_NOMEM : QT_OK;
    }
    if (a->rpm) {
        rfc3339(wall + a->reset_req_ms, t, sizeof t);
        e |= add_header(r, "anthropic-ratelimit-requests-limit", "%llu", a->rpm, NULL);
        e |= add_header(r, "anthropic-ratelimit-requests-remaining", "%llu", a->rem_req, NULL);
        e |= add_header(r, "anthropic-ratelimit-requests-reset", NULL, 0, t);
    }
    if (a->tpm) {
        rfc3339(wall + a->reset_tok_ms, t, sizeof t);
        e |= add_header(r, "anthropic-ratelimit-tokens-limit", "%llu", a->tpm, NULL);
        e |= add_header(r, "anthropic-ratelimit-tokens-remaining", "%llu", a->rem_tok, NULL);
        e |= add_header(r, "anthropic-ratelimit-tokens-reset", NULL, 0, t);
    }
    return e ? QT_ERR_NOMEM : QT_OK;
}

/* The body of an answer (heap) or NULL when out of memory. */
static char *body_of(qt_provider_kind kind, const char *model, const qt_sim_answer *a, uint64_t seq)
{
    char buf[640];
    int an = kind == QT_KIND_ANTHROPIC;
    if (a->status >= 200 && a->status < 300) {
        if (an)
            snprintf(buf, sizeof buf, "{\"id\":\"msg_replay%llu\",\"type\":\"message\",\"role\":\"assistant\","
                     "\"model\":\"%.100s\",\"content\":[{\"type\":\"text\",\"text\":\"\"}],"
                     "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":%lld,\"output_tokens\":%lld}}",
                     (unsigned long long)seq, model, (long long)a->prompt_tokens,
                     (long long)a->completion_tokens);
        else
            snprintf(buf, sizeof buf, "{\"id\":\"chatcmpl-replay%llu\",\"object\":\"chat.completion\","
                     "\"created\":0,\"model\":\"%.100s\",\"choices\":[{\"index\":0,\"message\":"
                     "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":\"stop\"}],"
                     "\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld}}",
                     (unsigned long long)seq, model, (long long)a->prompt_tokens,
                     (long long)a->completion_tokens, (long long)(a->prompt_tokens + a->completion_tokens));
    } else if (a->status == 429) {
        const char *what = a->limited_on == 't' ? "tokens" : "requests";
        if (an)
            snprintf(buf, sizeof buf, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                     "\"message\":\"This request would exceed the rate limit for %s per minute "
                     "(replay).\"}}", what);
        else
            snprintf(buf, sizeof buf, "{\"error\":{\"message\":\"Rate limit reached for %.100s on %s "
                     "per min (replay).\",\"type\":\"%s\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}",
                     model, what, what);
    } else if (an) {
        int over = a->status == 529 || a->status == 503;
        snprintf(buf, sizeof buf, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":"
                 "\"recorded failure (replay)\"}}", over ? "overloaded_error" : "api_error");
    } else {
        snprintf(buf, sizeof buf, "{\"error\":{\"message\":\"recorded failure (replay)\",\"type\":"
                 "\"server_error\",\"param\":null,\"code\":null}}");
    }
    return strdup(buf);
}

qt_err rp_build_response(qt_provider_kind kind, const char *model, const qt_sim_answer *a,
                         uint64_t wall_ms, uint64_t seq, qt_http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->elapsed_ms = (int64_t)a->total_ms;
    if (a->status == 0) {             /* a recorded transport failure */
        resp->transport = QT_HTTP_OTHER;
        snprintf(resp->error, sizeof resp->error, "recorded transport error (replay)");
        resp->body = strdup("");
        return resp->body ? QT_OK : QT_ERR_NOMEM;
    }
    resp->status = a->status;
    resp->body = body_of(kind, model, a, seq);
    if (!resp->body)
        return QT_ERR_NOMEM;
    resp->body_len = strlen(resp->body);
    qt_err e = add_header(resp, "content-type", NULL, 0, "application/json");
    if (e == QT_OK)
        e = limit_headers(resp, kind, a, wall_ms);
    if (e == QT_OK && a->status == 429) {
        e = add_header(resp, "retry-after", "%llu", (a->retry_after_ms + 999) / 1000, NULL);
        if (e == QT_OK)
            e = add_header(resp, "retry-after-ms", "%llu", a->retry_after_ms, NULL);
    }
    return e;
}

/* The SSE body of a 2xx answer as the kind streams it: OpenAI chunks (role,
 * finish, the usage chunk stream_options asks for, [DONE]); Anthropic
 * message_start (input usage), one empty text block, message_delta (output
 * usage), message_stop. NULL when out of memory. */
static char *sse_of(qt_provider_kind kind, const char *model, const qt_sim_answer *a, uint64_t seq)
{
    char buf[2048];
    unsigned long long q = (unsigned long long)seq;
    long long pt = (long long)a->prompt_tokens, ct = (long long)a->completion_tokens;
    if (kind == QT_KIND_ANTHROPIC)
        snprintf(buf, sizeof buf,
                 "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_replay%llu\","
                 "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"%.100s\",\"content\":[],"
                 "\"stop_reason\":null,\"usage\":{\"input_tokens\":%lld,\"output_tokens\":0}}}\n\n"
                 "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
                 "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
                 "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                 "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                 "\"usage\":{\"output_tokens\":%lld}}\n\n"
                 "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                 q, model, pt, ct);
    else
        snprintf(buf, sizeof buf,
                 "data: {\"id\":\"chatcmpl-replay%llu\",\"object\":\"chat.completion.chunk\",\"created\":0,"
                 "\"model\":\"%.100s\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                 "\"finish_reason\":null}]}\n\n"
                 "data: {\"id\":\"chatcmpl-replay%llu\",\"object\":\"chat.completion.chunk\",\"created\":0,"
                 "\"model\":\"%.100s\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
                 "data: {\"id\":\"chatcmpl-replay%llu\",\"object\":\"chat.completion.chunk\",\"created\":0,"
                 "\"model\":\"%.100s\",\"choices\":[],\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                 "\"total_tokens\":%lld}}\n\n"
                 "data: [DONE]\n\n",
                 q, model, q, model, q, model, pt, ct, pt + ct);
    return strdup(buf);
}

qt_err rp_make_stream(qt_http_response *resp, qt_provider_kind kind, const char *model, const qt_sim_answer *a,
                      uint64_t seq)
{
    if (resp->transport != QT_HTTP_OK || resp->status < 200 || resp->status >= 300)
        return QT_OK;   /* errors come whole, streamed request or not */
    char *sse = sse_of(kind, model, a, seq);
    if (!sse)
        return QT_ERR_NOMEM;
    free(resp->body);
    resp->body = sse;
    resp->body_len = strlen(sse);
    for (size_t i = 0; i < resp->n_headers; i++)
        if (!strcmp(resp->headers[i].name, "content-type")) {
            char *v = strdup("text/event-stream");
            if (!v)
                return QT_ERR_NOMEM;
            free(resp->headers[i].value);
            resp->headers[i].value = v;
        }
    return QT_OK;
}
