/* proxy_json.c: the proxy's small pure helpers: OpenAI-shaped bodies
 * (errors, model lists, answers rebuilt from the response cache), the SSE
 * events of such answers, the listen address, the constant-time token
 * compare and Prometheus label escaping. No I/O, no locks, no globals.
 */
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "proxy_int.h"

/* ------------------------------------------------------------ buffers */

int px_buf_add(px_buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return -1;
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

int px_buf_adds(px_buf *b, const char *s) { return px_buf_add(b, s, strlen(s)); }

int px_buf_addf(px_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return px_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int r = px_buf_add(b, big, (size_t)n);
    free(big);
    return r;
}

void px_buf_free(px_buf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------ OpenAI shapes */

static void add_str_or_null(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

/* Anthropic's error type for an HTTP status. */
static const char *anthropic_error_type(unsigned status)
{
    switch (status) {
    case 400: case 405: case 409: case 422: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 410: return "invalid_request_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

char *px_anthropic_error_json(unsigned status, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "error");
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "type", anthropic_error_type(status));
    cJSON_AddStringToObject(e, "message", message);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *px_error_json(const char *message, const char *type, const char *param, const char *code)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    if (!e) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddStringToObject(e, "message", message ? message : "");
    cJSON_AddStringToObject(e, "type", type ? type : "invalid_request_error");
    add_str_or_null(e, "param", param);
    add_str_or_null(e, "code", code);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* One model in both SDKs' shapes at once: OpenAI's {id, object, created,
 * owned_by} and Anthropic's {type, id, display_name, created_at}. */
static cJSON *model_obj(const qt_model_cfg *m, int64_t created_s)
{
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "id", m->name);
    cJSON_AddStringToObject(x, "object", "model");
    cJSON_AddNumberToObject(x, "created", (double)created_s);
    cJSON_AddStringToObject(x, "owned_by", m->n_providers ? m->providers[0] : "quotatop");
    cJSON_AddStringToObject(x, "type", "model");
    cJSON_AddStringToObject(x, "display_name", m->name);
    char at[32];
    time_t t = (time_t)created_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(x, "created_at", at);
    return x;
}

char *px_models_json(const qt_config *cfg, int64_t created_s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    for (size_t i = 0; data && i < cfg->n_models; i++)
        cJSON_AddItemToArray(data, model_obj(&cfg->models[i], created_s));
    /* Anthropic's page fields: one page holds every model. */
    cJSON_AddBoolToObject(o, "has_more", 0);
    if (cfg->n_models) {
        cJSON_AddStringToObject(o, "first_id", cfg->models[0].name);
        cJSON_AddStringToObject(o, "last_id", cfg->models[cfg->n_models - 1].name);
    } else {
        cJSON_AddNullToObject(o, "first_id");
        cJSON_AddNullToObject(o, "last_id");
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *px_model_json(const qt_config *cfg, const char *name, int64_t created_s)
{
    int i = qt_config_model_index(cfg, name);
    if (i < 0)
        return NULL;
    cJSON *o = model_obj(&cfg->models[i], created_s);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static cJSON *usage_obj(long pt, long ct)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)pt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)ct);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(pt + ct));
    return u;
}

char *px_answer_completion_json(const char *id, const char *model, int64_t created_s, const char *content,
                                const char *finish_reason, const char *tool_calls, long prompt_tokens,
                                long completion_tokens)
{
    cJSON *o = cJSON_CreateObject();
    char cid[64];
    snprintf(cid, sizeof cid, "chatcmpl-%.40s", id);
    cJSON_AddStringToObject(o, "id", cid);
    cJSON_AddStringToObject(o, "object", "chat.completion");
    cJSON_AddNumberToObject(o, "created", (double)created_s);
    cJSON_AddStringToObject(o, "model", model ? model : "");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON *calls = tool_calls ? cJSON_Parse(tool_calls) : NULL;
    if (cJSON_IsArray(calls) && (!content || !content[0]))
        cJSON_AddNullToObject(msg, "content");   /* as OpenAI answers a call */
    else
        cJSON_AddStringToObject(msg, "content", content ? content : "");
    if (cJSON_IsArray(calls))
        cJSON_AddItemToObject(msg, "tool_calls", calls);
    else
        cJSON_Delete(calls);
    cJSON_AddStringToObject(c, "finish_reason", finish_reason ? finish_reason : "stop");
    cJSON_AddItemToArray(choices, c);
    cJSON_AddItemToObject(o, "usage", usage_obj(prompt_tokens, completion_tokens));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *px_completion_json(const char *id, const char *model, int64_t created_s, const char *content,
                         long prompt_tokens, long completion_tokens)
{
    return px_answer_completion_json(id, model, created_s, content, NULL, NULL, prompt_tokens,
                                     completion_tokens);
}

/* One chunk: delta may be NULL (an empty object), finish may be NULL;
 * usage_only builds the usage chunk (empty choices). */
static int add_chunk(px_buf *out, const char *id, const char *model, int64_t created_s,
                     cJSON *delta, const char *finish, cJSON *usage)
{
    cJSON *o = cJSON_CreateObject();
    char cid[64];
    snprintf(cid, sizeof cid, "chatcmpl-%.40s", id);
    cJSON_AddStringToObject(o, "id", cid);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", (double)created_s);
    cJSON_AddStringToObject(o, "model", model ? model : "");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    if (!usage) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "index", 0);
        cJSON_AddItemToObject(c, "delta", delta ? delta : cJSON_CreateObject());
        add_str_or_null(c, "finish_reason", finish);
        cJSON_AddItemToArray(choices, c);
    } else {
        cJSON_AddItemToObject(o, "usage", usage);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        return -1;
    int r = px_buf_addf(out, "data: %s\n\n", s);
    free(s);
    return r;
}

int px_sse_from_answer(px_buf *out, const char *id, const char *model, int64_t created_s,
                       const char *content, const char *finish_reason, const char *tool_calls,
                       long prompt_tokens, long completion_tokens, int with_usage)
{
    cJSON *d1 = cJSON_CreateObject();
    cJSON_AddStringToObject(d1, "role", "assistant");
    cJSON_AddStringToObject(d1, "content", "");
    int r = add_chunk(out, id, model, created_s, d1, NULL, NULL);
    if (content && content[0]) {
        cJSON *d2 = cJSON_CreateObject();
        cJSON_AddStringToObject(d2, "content", content);
        r |= add_chunk(out, id, model, created_s, d2, NULL, NULL);
    }
    cJSON *calls = tool_calls ? cJSON_Parse(tool_calls) : NULL;
    int i = 0;
    for (const cJSON *c = cJSON_IsArray(calls) ? calls->child : NULL; c; c = c->next, i++) {
        /* One chunk per call, as a stream starts one: index, id, type,
         * name, and here the arguments whole. */
        cJSON *d = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(d, "tool_calls");
        cJSON *tc = cJSON_Duplicate(c, 1);
        cJSON_AddNumberToObject(tc, "index", i);
        cJSON_AddItemToArray(arr, tc);
        r |= add_chunk(out, id, model, created_s, d, NULL, NULL);
    }
    cJSON_Delete(calls);
    r |= add_chunk(out, id, model, created_s, NULL, finish_reason ? finish_reason : "stop", NULL);
    if (with_usage)
        r |= add_chunk(out, id, model, created_s, NULL, NULL, usage_obj(prompt_tokens, completion_tokens));
    return r ? -1 : 0;
}

int px_sse_from_content(px_buf *out, const char *id, const char *model, int64_t created_s,
                        const char *content, long prompt_tokens, long completion_tokens,
                        int with_usage)
{
    return px_sse_from_answer(out, id, model, created_s, content ? content : "", NULL, NULL, prompt_tokens,
                              completion_tokens, with_usage);
}

int px_chunk_is_usage_only(const char *json, size_t len)
{
    /* Cheap pre-check: most chunks carry no usage numbers at all. */
    if (!memmem(json, len, "\"prompt_tokens\"", 15))
        return 0;
    cJSON *o = cJSON_ParseWithLength(json, len);
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "choices");
    int r = cJSON_IsArray(ch) && cJSON_GetArraySize(ch) == 0;
    cJSON_Delete(o);
    return r;
}

int px_upstream_status_of(const char *error)
{
    /* The engine words a failed attempt "MODEL via PROVIDER: STATUS type: msg". */
    const char *v = error ? strstr(error, " via ") : NULL;
    const char *c = v ? strstr(v, ": ") : NULL;
    if (!c || !isdigit((unsigned char)c[2]) || !isdigit((unsigned char)c[3])
        || !isdigit((unsigned char)c[4]) || c[5] != ' ')
        return 0;
    return (c[2] - '0') * 100 + (c[3] - '0') * 10 + (c[4] - '0');
}

/* ------------------------------------------------------------ addresses, tokens */

int px_resolve_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen,
                      int *loopback, char *err, size_t errlen)
{
    char host[256];
    const char *port;
    if (!listen || !*listen) {
        snprintf(err, errlen, "empty listen address");
        return -1;
    }
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof host) {
            snprintf(err, errlen, "\"%s\" is not [IPV6]:PORT", listen);
            return -1;
        }
        memcpy(host, listen + 1, (size_t)(close - listen - 1));
        host[close - listen - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof host || strchr(listen, ':') != colon) {
            snprintf(err, errlen, "\"%s\" is not HOST:PORT", listen);
            return -1;
        }
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        port = colon + 1;
    }
    char *end;
    long pn = strtol(port, &end, 10);
    if (!*port || *end || pn < 0 || pn > 65535) {
        snprintf(err, errlen, "\"%s\": bad port \"%s\"", listen, port);
        return -1;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int gr = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gr != 0 || !res) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(gr));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    *loopback = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        *loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        *loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
        /* ::ffff:127.x.y.z is loopback too. */
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            *loopback = a->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

int qt_proxy_token_equal(const char *given, size_t given_len, const char *expected)
{
    size_t n = strlen(expected);
    /* Every byte of the expected token is looked at whatever was given, so
     * the time taken says nothing about how much of a guess was right. */
    volatile unsigned char acc = (unsigned char)(given_len != n);
    for (size_t i = 0; i < n; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        acc |= (unsigned char)(g ^ (unsigned char)expected[i]);
    }
    return acc == 0;
}

size_t qt_proxy_label_escape(const char *s, char *out, size_t outlen)
{
    size_t need = 0, o = 0;
    for (; s && *s; s++) {
        char esc[3] = { *s, 0, 0 };
        size_t k = 1;
        if (*s == '\\' || *s == '"') {
            esc[0] = '\\';
            esc[1] = *s;
            k = 2;
        } else if (*s == '\n') {
            esc[0] = '\\';
            esc[1] = 'n';
            k = 2;
        }
        need += k;
        if (outlen && o + k < outlen) {
            memcpy(out + o, esc, k);
            o += k;
        }
    }
    if (outlen)
        out[o] = '\0';
    return need;
}
