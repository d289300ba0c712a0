/* provider.c: the kind-independent half of the provider module.
 *
 * DESIGN. qt_provider_ops_for() maps a kind to its static table
 * (provider_openai.c, provider_anthropic.c). This file holds what both kinds
 * share: parsing JSON bodies with positions reported by hand
 * (cJSON_ParseWithLengthOpts, never the global cJSON_GetErrorPtr), the error
 * body parser (tolerates OpenAI's {"error":{message,type,code}}, Anthropic's
 * {"type":"error","error":{type,message}}, bare strings and garbage), the
 * rate-limit header reader (x-ratelimit-* with Go durations, and
 * anthropic-ratelimit-* with RFC 3339 resets, plus retry-after-ms and
 * retry-after, using the parsers of retry.h), and the rendering of a result
 * as an OpenAI chat.completion. Everything is pure: no I/O, no clock.
 */
#include "quotatop/provider.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "provider_int.h"
#include "quotatop/retry.h"
#include "quotatop/translate.h"

const qt_provider_ops *qt_provider_ops_for(qt_provider_kind kind)
{
    switch (kind) {
    case QT_KIND_OPENAI:    return &qt_provider_openai_ops;
    case QT_KIND_ANTHROPIC: return &qt_provider_anthropic_ops;
    }
    return NULL;
}


/* ---- small helpers ------------------------------------------------------ */

void qt_prov_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

char *qt_prov_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void qt_prov_copy(char *dst, size_t dstlen, const char *src)
{
    if (dstlen == 0)
        return;
    if (src == NULL)
        src = "";
    size_t n = strlen(src);
    if (n >= dstlen)
        n = dstlen - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* True when body ends inside a string or with an object or array still
 * open: the sign of a cut-off response rather than a wrong one. */
static bool ends_open(const char *body, size_t len)
{
    long depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return in_str || depth > 0;
}

cJSON *qt_prov_parse_json(const char *body, size_t len, char *err, size_t errlen)
{
    size_t i = 0;
    while (body && i < len && isspace((unsigned char)body[i]))
        i++;
    if (body == NULL || i == len) {
        qt_prov_errf(err, errlen, "upstream response is empty");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (root == NULL) {
        size_t pos = (end && end >= body) ? (size_t)(end - body) : 0;
        if (pos + 1 >= len || ends_open(body, len))
            qt_prov_errf(err, errlen, "upstream response is truncated JSON (%zu bytes)", len);
        else
            qt_prov_errf(err, errlen, "upstream response is not JSON at byte %zu", pos);
        return NULL;
    }
    size_t pos = (size_t)(end - body);
    while (pos < len && (isspace((unsigned char)body[pos]) || body[pos] == '\0'))
        pos++;
    if (pos < len) {
        qt_prov_errf(err, errlen, "upstream response is not JSON at byte %zu (trailing data)", pos);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

const char *qt_prov_finish_from_anthropic(const char *s)
{
    if (s == NULL)
        return "";
    if (!strcmp(s, "end_turn") || !strcmp(s, "stop_sequence"))
        return "stop";
    if (!strcmp(s, "max_tokens"))
        return "length";
    if (!strcmp(s, "tool_use"))
        return "tool_calls";
    if (!strcmp(s, "refusal"))
        return "content_filter";
    return s;
}

/* True when s holds a byte that could split a header line. */
static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

qt_err qt_prov_check_job(const cJSON *job, const char *api_key, char *err, size_t errlen)
{
    if (!cJSON_IsObject(job)) {
        qt_prov_errf(err, errlen, "job is not a JSON object");
        return QT_ERR_INVALID;
    }
    qt_endpoint ep = qt_prov_endpoint(job);
    const char *need = ep == QT_ENDPOINT_RESPONSES || ep == QT_ENDPOINT_EMBEDDINGS ? "input" : "messages";
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(job, need);
    if (!cJSON_IsString(msgs) && (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)) {
        qt_prov_errf(err, errlen, "job has no %s", need);
        return QT_ERR_INVALID;
    }
    if (api_key && has_ctl(api_key)) {
        qt_prov_errf(err, errlen, "API key contains control characters");
        return QT_ERR_INVALID;
    }
    return QT_OK;
}

bool qt_prov_get_count(const cJSON *obj, const char *key, long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    /* Bounded before the conversion: (long)1e300 is undefined behaviour. */
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0
        || v->valuedouble > QT_PROV_MAX_COUNT)
        return false;
    *out = (long)v->valuedouble;
    return true;
}

bool qt_prov_usage_count(const cJSON *usage, const char *key, long *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, key);
    if (!v) {
        qt_prov_errf(err, errlen, "usage.%s missing", key);
        return false;
    }
    if (!qt_prov_get_count(usage, key, out)) {
        if (cJSON_IsNumber(v))
            qt_prov_errf(err, errlen, "malformed usage: usage.%s is %g (a token count is a number "
                         "from 0 to 2^31)", key, v->valuedouble);
        else
            qt_prov_errf(err, errlen, "malformed usage: usage.%s is not a number", key);
        return false;
    }
    return true;
}

bool qt_prov_error_in_2xx(const cJSON *root, char *err, size_t errlen)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const char *type = qt_prov_get_str(root, "type");
    if (!e || (cJSON_IsNull(e) && !(type && !strcmp(type, "error"))))
        return false;
    /* OpenAI {"error": {"message", "type", "code"}}, Anthropic {"type":
     * "error", "error": {"type", "message"}}, or a bare "error": "text". */
    const char *msg = cJSON_IsString(e) ? e->valuestring : qt_prov_get_str(e, "message");
    const char *et = qt_prov_get_str(e, "type");
    const char *code = qt_prov_get_str(e, "code");
    qt_prov_errf(err, errlen, "upstream answered 2xx with an error: %.64s%s%.160s",
                 et ? et : code ? code : "error", msg ? ": " : "", msg ? msg : "");
    return true;
}

const char *qt_prov_get_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

qt_err qt_prov_add_header(qt_provider_request *r, const char *name, const char *value)
{
    if (r->n_headers >= QT_PROVIDER_MAX_HEADERS)
        return QT_ERR_LIMIT;
    size_t n = strlen(name) + 2 + strlen(value) + 1;
    char *line = malloc(n);
    if (line == NULL)
        return QT_ERR_NOMEM;
    snprintf(line, n, "%s: %s", name, value);
    r->headers[r->n_headers++] = line;
    return QT_OK;
}

void qt_provider_request_free(qt_provider_request *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_headers && i < QT_PROVIDER_MAX_HEADERS; i++) {
        if (r->headers[i]) {
            /* One line holds the API key: do not leave it in freed memory.
             * The volatile pointer keeps the stores from being elided. */
            volatile char *p = r->headers[i];
            while (*p)
                *p++ = '\0';
            free(r->headers[i]);
        }
    }
    free(r->body);
    memset(r, 0, sizeof *r);
}

void qt_provider_result_free(qt_provider_result *r)
{
    if (r == NULL)
        return;
    free(r->id);
    free(r->model);
    free(r->content);
    free(r->finish_reason);
    free(r->tool_calls);
    free(r->choices);
    free(r->openai_json);
    free(r->native_json);
    free(r->embeddings);
    memset(r, 0, sizeof *r);
}

/* ---- error bodies ------------------------------------------------------- */

/* Copies a JSON string or number into dst; leaves dst alone otherwise. */
static void copy_json_scalar(char *dst, size_t dstlen, const cJSON *v)
{
    if (cJSON_IsString(v) && v->valuestring)
        qt_prov_copy(dst, dstlen, v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(dst, dstlen, "%.0f", v->valuedouble);
}

/* The first 200 printable characters of a body, whitespace runs and other
 * bytes folded into one space, trimmed. */
static void printable_prefix(char *dst, size_t dstlen, const char *body, size_t len)
{
    size_t o = 0, max = dstlen - 1;
    if (max > 200)
        max = 200;
    bool space = false;
    for (size_t i = 0; body && i < len && o < max; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c > 0x20 && c < 0x7f) {
            if (space && o > 0 && o < max)
                dst[o++] = ' ';
            space = false;
            if (o < max)
                dst[o++] = (char)c;
        } else {
            space = true;
        }
    }
    dst[o] = '\0';
}

void qt_prov_parse_error(int status, const char *body, size_t len, qt_provider_error *out)
{
    memset(out, 0, sizeof *out);
    out->status = status;
    cJSON *root = qt_prov_parse_json(body, len, NULL, 0);
    if (cJSON_IsObject(root)) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
        if (cJSON_IsObject(e)) {
            copy_json_scalar(out->message, sizeof out->message,
                             cJSON_GetObjectItemCaseSensitive(e, "message"));
            copy_json_scalar(out->type, sizeof out->type,
                             cJSON_GetObjectItemCaseSensitive(e, "type"));
            copy_json_scalar(out->code, sizeof out->code,
                             cJSON_GetObjectItemCaseSensitive(e, "code"));
        } else if (cJSON_IsString(e)) {
            qt_prov_copy(out->message, sizeof out->message, e->valuestring);
        } else {
            copy_json_scalar(out->message, sizeof out->message,
                             cJSON_GetObjectItemCaseSensitive(root, "message"));
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
            if (cJSON_IsString(t) && strcmp(t->valuestring, "error") != 0)
                copy_json_scalar(out->type, sizeof out->type, t);
            copy_json_scalar(out->code, sizeof out->code,
                             cJSON_GetObjectItemCaseSensitive(root, "code"));
        }
    }
    cJSON_Delete(root);
    if (out->message[0] == '\0')
        printable_prefix(out->message, sizeof out->message, body, len);
}

/* ---- rate-limit headers ------------------------------------------------- */

static bool parse_int64(const char *s, int64_t *out)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s))
        return false;
    char *end;
    double v = strtod(s, &end);   /* tolerates "100.0" */
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0' || !isfinite(v) || v < 0 || v > 9e18)
        return false;
    *out = (int64_t)v;
    return true;
}

/* A reset value: a Go duration ("6m0s"), an RFC 3339 time, or a bare number
 * (seconds; above 1e12 epoch ms, above 1e9 epoch seconds). */
static bool parse_reset(const char *s, int64_t now_wall_ms, int64_t *out_ms)
{
    int64_t v;
    if (qt_retry_parse_duration_ms(s, &v) == 0) {
        *out_ms = v;
        return true;
    }
    if (qt_retry_parse_rfc3339_ms(s, &v) == 0) {
        *out_ms = v > now_wall_ms ? v - now_wall_ms : 0;
        return true;
    }
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s))
        return false;
    char *end;
    double d = strtod(s, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0' || !isfinite(d) || d < 0 || d > 9e15)
        return false;
    if (d > 1e12)
        v = (int64_t)d - now_wall_ms;
    else if (d > 1e9)
        v = (int64_t)(d * 1000.0) - now_wall_ms;
    else
        v = (int64_t)ceil(d * 1000.0);
    *out_ms = v > 0 ? v : 0;
    return true;
}

enum field { F_LIMIT, F_REMAINING, F_RESET };

static void set_field(qt_limit_window *w, enum field f, const char *value, int64_t now_wall_ms)
{
    int64_t v;
    if (f == F_RESET) {
        if (parse_reset(value, now_wall_ms, &v))
            w->reset_ms = v;
    } else if (parse_int64(value, &v)) {
        if (f == F_LIMIT)
            w->limit = v;
        else
            w->remaining = v;
    }
}

static void reset_window(qt_limit_window *w)
{
    w->limit = w->remaining = w->reset_ms = -1;
}

void qt_prov_parse_limit_headers(const qt_http_header *headers, size_t n,
                                 int64_t now_wall_ms, qt_provider_limits *out)
{
    reset_window(&out->requests);
    reset_window(&out->tokens);
    reset_window(&out->input_tokens);
    reset_window(&out->output_tokens);
    out->retry_after_ms = -1;
    int64_t retry_after_ms_hdr = -1, retry_after_hdr = -1;

    static const struct {
        const char *name;
        size_t window;     /* offset into qt_provider_limits */
        enum field field;
    } table[] = {
#define W(m) offsetof(qt_provider_limits, m)
        {"x-ratelimit-limit-requests",               W(requests),      F_LIMIT},
        {"x-ratelimit-remaining-requests",           W(requests),      F_REMAINING},
        {"x-ratelimit-reset-requests",               W(requests),      F_RESET},
        {"x-ratelimit-limit-tokens",                 W(tokens),        F_LIMIT},
        {"x-ratelimit-remaining-tokens",             W(tokens),        F_REMAINING},
        {"x-ratelimit-reset-tokens",                 W(tokens),        F_RESET},
        {"anthropic-ratelimit-requests-limit",       W(requests),      F_LIMIT},
        {"anthropic-ratelimit-requests-remaining",   W(requests),      F_REMAINING},
        {"anthropic-ratelimit-requests-reset",       W(requests),      F_RESET},
        {"anthropic-ratelimit-tokens-limit",         W(tokens),        F_LIMIT},
        {"anthropic-ratelimit-tokens-remaining",     W(tokens),        F_REMAINING},
        {"anthropic-ratelimit-tokens-reset",         W(tokens),        F_RESET},
        {"anthropic-ratelimit-input-tokens-limit",   W(input_tokens),  F_LIMIT},
        {"anthropic-ratelimit-input-tokens-remaining", W(input_tokens), F_REMAINING},
        {"anthropic-ratelimit-input-tokens-reset",   W(input_tokens),  F_RESET},
        {"anthropic-ratelimit-output-tokens-limit",  W(output_tokens), F_LIMIT},
        {"anthropic-ratelimit-output-tokens-remaining", W(output_tokens), F_REMAINING},
        {"anthropic-ratelimit-output-tokens-reset",  W(output_tokens), F_RESET},
#undef W
    };

    for (size_t i = 0; headers && i < n; i++) {
        const char *name = headers[i].name, *value = headers[i].value;
        if (name == NULL || value == NULL)
            continue;
        if (!strcasecmp(name, "retry-after-ms")) {
            char *end;
            double d = strtod(value, &end);
            while (isspace((unsigned char)*end))
                end++;
            if (end != value && *end == '\0' && isfinite(d) && d >= 0 && d < 9e15)
                retry_after_ms_hdr = (int64_t)ceil(d);
            continue;
        }
        if (!strcasecmp(name, "retry-after")) {
            int64_t v;
            if (qt_retry_parse_retry_after_ms(value, now_wall_ms, &v) == 0)
                retry_after_hdr = v;
            continue;
        }
        for (size_t k = 0; k < QT_ARRAY_LEN(table); k++) {
            if (!strcasecmp(name, table[k].name)) {
                qt_limit_window *w = (qt_limit_window *)((char *)out + table[k].window);
                set_field(w, table[k].field, value, now_wall_ms);
                break;
            }
        }
    }
    /* retry-after-ms is the more precise of the two when both are sent. */
    out->retry_after_ms = retry_after_ms_hdr >= 0 ? retry_after_ms_hdr : retry_after_hdr;
}

/* ---- OpenAI rendering --------------------------------------------------- */

char *qt_provider_to_openai_json(const qt_provider_result *r, const char *model,
                                 int64_t created_s)
{
    cJSON *root = cJSON_CreateObject();
    if (root == NULL)
        return NULL;
    const char *id = (r->id && r->id[0]) ? r->id : "chatcmpl-quotatop";
    const char *m = model ? model : (r->model ? r->model : "");
    cJSON *choices = NULL, *choice = NULL, *msg = NULL, *usage = NULL;
    bool ok = cJSON_AddStringToObject(root, "id", id)
        && cJSON_AddStringToObject(root, "object", "chat.completion")
        && cJSON_AddNumberToObject(root, "created", (double)created_s)
        && cJSON_AddStringToObject(root, "model", m)
        && (choices = cJSON_AddArrayToObject(root, "choices")) != NULL
        && (choice = cJSON_CreateObject()) != NULL
        && cJSON_AddItemToArray(choices, choice)
        && cJSON_AddNumberToObject(choice, "index", 0)
        && (msg = cJSON_AddObjectToObject(choice, "message")) != NULL
        && cJSON_AddStringToObject(msg, "role", "assistant")
        && cJSON_AddStringToObject(msg, "content", r->content ? r->content : "")
        && ((r->finish_reason && r->finish_reason[0])
                ? cJSON_AddStringToObject(choice, "finish_reason", r->finish_reason) != NULL
                : cJSON_AddNullToObject(choice, "finish_reason") != NULL)
        && (usage = cJSON_AddObjectToObject(root, "usage")) != NULL
        && cJSON_AddNumberToObject(usage, "prompt_tokens", (double)r->prompt_tokens)
        && cJSON_AddNumberToObject(usage, "completion_tokens", (double)r->completion_tokens)
        && cJSON_AddNumberToObject(usage, "total_tokens",
                                   (double)(r->prompt_tokens + r->completion_tokens));
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

/* ---- growing string (provider_int.h) ------------------------------------- */

bool sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (p == NULL)
            return false;
        b->s = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return true;
}

bool sb_adds(sbuf *b, const char *s)
{
    return sb_add(b, s, strlen(s));
}

bool sb_set(sbuf *b, const char *s, size_t n)
{
    b->len = 0;
    return sb_add(b, s, n);
}

const char *sb_str(const sbuf *b)
{
    return b->s ? b->s : "";
}
