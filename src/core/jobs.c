/* jobs.c: job lines in, result lines out, and the ok-id set for --resume.
 *
 * DESIGN
 * A job line is parsed with cJSON_ParseWithLengthOpts so a syntax error can
 * name its column; then the fields quotatop reads are checked one by one,
 * each failure producing a message that names the line and the field. The
 * parsed object is kept whole in the job (body) because providers pass
 * unknown fields through. Results are formatted with cJSON and written under
 * one mutex, one fflush per line, so a crash loses at most the line being
 * written and readers can tail the file. Buffered (run, through the engine's
 * on_results_flush) the flush is per turn of a loop instead: a crash loses at
 * most that turn's lines, which --resume runs again. The id set is a small open-addressing
 * hash table of strings.
 */
#include "quotatop/jobs.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

static const char *const endpoint_names[QT_ENDPOINT_COUNT] = {
    "chat", "messages", "responses", "embeddings",
};

const char *qt_endpoint_name(qt_endpoint e)
{
    return (unsigned)e < QT_ENDPOINT_COUNT ? endpoint_names[e] : "chat";
}

int qt_endpoint_parse(const char *s)
{
    for (int i = 0; s && i < QT_ENDPOINT_COUNT; i++)
        if (!strcmp(s, endpoint_names[i]))
            return i;
    return -1;
}

const char *qt_status_name(qt_status s)
{
    switch (s) {
    case QT_STATUS_OK:        return "ok";
    case QT_STATUS_FAILED:    return "failed";
    case QT_STATUS_REJECTED:  return "rejected";
    case QT_STATUS_CANCELLED: return "cancelled";
    case QT_STATUS_INVALID:   return "invalid";
    }
    return "failed";
}

/* Characters of the text in one message's content (string or text parts). */
static size_t content_chars(const cJSON *content)
{
    if (cJSON_IsString(content))
        return strlen(content->valuestring);
    size_t n = 0;
    const cJSON *part;
    if (cJSON_IsArray(content)) {
        cJSON_ArrayForEach(part, content) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(t))
                n += strlen(t->valuestring);
        }
    }
    return n;
}

/* Characters of a JSON value as text (tool definitions and tool calls are
 * sent as part of the prompt); 0 for NULL. */
static size_t json_chars(const cJSON *v)
{
    if (!v)
        return 0;
    char *t = cJSON_PrintUnformatted(v);
    size_t n = t ? strlen(t) : 0;
    free(t);
    return n;
}

static char *id_of(const cJSON *v, long line_no)
{
    char buf[64];
    if (cJSON_IsString(v) && v->valuestring[0])
        return strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        /* The shortest text that reads back as the same number: 1 is "1",
         * 0.1 is "0.1" (not %.17g's 0.10000000000000001). */
        snprintf(buf, sizeof buf, "%.15g", v->valuedouble);
        if (strtod(buf, NULL) != v->valuedouble)
            snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
        return strdup(buf);
    }
    snprintf(buf, sizeof buf, "%ld", line_no);
    return strdup(buf);
}

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 when the bytes
 * there are not one (stray continuation, overlong form, surrogate, above
 * U+10FFFF, or cut short by the end). */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || n > left)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) ||   /* overlong, surrogates */
        (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))     /* overlong, > U+10FFFF */
        return 0;
    return n;
}

long qt_utf8_invalid_at(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        /* Runs of ASCII, 8 bytes at a time (most text is ASCII). */
        uint64_t w;
        while (i + 8 <= len && (memcpy(&w, p + i, 8), (w & 0x8080808080808080ull) == 0))
            i += 8;
        if (i >= len)
            break;
        size_t n = utf8_seq(p + i, len - i);
        if (!n)
            return (long)i;
        i += n;
    }
    return -1;
}

char *qt_utf8_sanitize(char *s)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    long bad = qt_utf8_invalid_at(s, len);
    if (bad < 0)
        return s;
    /* Each bad byte becomes U+FFFD (3 bytes): at most 3x the length. */
    char *out = malloc(len * 3 + 1);
    if (!out) {   /* no memory: '?' for each bad byte, in place */
        for (size_t i = (size_t)bad; i < len;) {
            size_t n = utf8_seq((unsigned char *)s + i, len - i);
            if (!n)
                s[i] = '?';
            i += n ? n : 1;
        }
        return s;
    }
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq((unsigned char *)s + i, len - i);
        if (n) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    free(s);
    return out;
}

/* What is wrong with the body of a job for its endpoint, or NULL. */
static const char *messages_problem(const cJSON *msgs, char *detail, size_t len)
{
    if (!msgs)
        return "no \"messages\"";
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return "\"messages\" must be a non-empty array";
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        if (!cJSON_IsObject(m) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role"))) {
            snprintf(detail, len, "messages[%d] needs a \"role\" string", i);
            return detail;
        }
        i++;
    }
    return NULL;
}

static const char *body_problem(qt_endpoint ep, const cJSON *body, char *detail, size_t len)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
    switch (ep) {
    case QT_ENDPOINT_CHAT:
    case QT_ENDPOINT_MESSAGES:
        return messages_problem(cJSON_GetObjectItemCaseSensitive(body, "messages"), detail, len);
    case QT_ENDPOINT_RESPONSES:
        if (!input)
            return "no \"input\" (a responses job needs one)";
        if (!cJSON_IsString(input) && !(cJSON_IsArray(input) && cJSON_GetArraySize(input) > 0))
            return "\"input\" must be a string or a non-empty array";
        return NULL;
    case QT_ENDPOINT_EMBEDDINGS:
        if (!input)
            return "no \"input\" (an embeddings job needs one)";
        if (!cJSON_IsString(input) && !(cJSON_IsArray(input) && cJSON_GetArraySize(input) > 0))
            return "\"input\" must be a string or a non-empty array";
        if (cJSON_IsArray(input) && cJSON_GetArraySize(input) > 2048)
            return "\"input\" has more than 2048 items";
        return NULL;
    }
    return NULL;
}

/* Characters of an embeddings or responses "input": a string, or a list of
 * strings, token arrays (4 characters a token) or input items. Counts the
 * items into *n. */
static size_t input_chars(const cJSON *input, int *n)
{
    if (cJSON_IsString(input)) {
        *n = 1;
        return strlen(input->valuestring);
    }
    size_t chars = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, input) {
        (*n)++;
        if (cJSON_IsString(it))
            chars += strlen(it->valuestring);
        else if (cJSON_IsNumber(it))
            chars += 4;
        else if (cJSON_IsArray(it))
            chars += 4 * (size_t)cJSON_GetArraySize(it);
        else
            chars += content_chars(cJSON_GetObjectItemCaseSensitive(it, "content"))
                     + json_chars(cJSON_GetObjectItemCaseSensitive(it, "arguments"))
                     + json_chars(cJSON_GetObjectItemCaseSensitive(it, "output"));
    }
    return chars;
}

/* Sets the prompt size (the token estimate's input) and the message count
 * of a checked job from its body. */
static void size_job(qt_job *job)
{
    const cJSON *b = job->body;
    const cJSON *m;
    switch (job->endpoint) {
    case QT_ENDPOINT_CHAT:
    case QT_ENDPOINT_MESSAGES:
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(b, "messages")) {
            job->prompt_chars += content_chars(cJSON_GetObjectItemCaseSensitive(m, "content"));
            job->prompt_chars += json_chars(cJSON_GetObjectItemCaseSensitive(m, "tool_calls"));
            job->n_messages++;
        }
        job->prompt_chars += content_chars(cJSON_GetObjectItemCaseSensitive(b, "system"));
        break;
    case QT_ENDPOINT_RESPONSES:
        job->prompt_chars += input_chars(cJSON_GetObjectItemCaseSensitive(b, "input"), &job->n_messages);
        job->prompt_chars += content_chars(cJSON_GetObjectItemCaseSensitive(b, "instructions"));
        break;
    case QT_ENDPOINT_EMBEDDINGS:
        job->prompt_chars += input_chars(cJSON_GetObjectItemCaseSensitive(b, "input"), &job->n_messages);
        return;   /* no tools, and nothing to complete */
    }
    job->prompt_chars += json_chars(cJSON_GetObjectItemCaseSensitive(b, "tools"));
}

qt_err qt_job_from_json(cJSON *body, long line_no, const qt_config *cfg, qt_job **out,
                        char **id_out, char **workflow_out, char *err, size_t errlen)
{
    char where[48];
    if (line_no > 0)
        snprintf(where, sizeof where, "line %ld: ", line_no);
    else
        where[0] = '\0';
    *out = NULL;
    if (id_out)
        *id_out = NULL;
    if (workflow_out)
        *workflow_out = NULL;
    if (!cJSON_IsObject(body)) {
        snprintf(err, errlen, "%sa job must be a JSON object", where);
        if (id_out)
            *id_out = id_of(NULL, line_no);
        if (workflow_out)
            *workflow_out = strdup("default");
        cJSON_Delete(body);
        return QT_ERR_INVALID;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
    const cJSON *wf = cJSON_GetObjectItemCaseSensitive(body, "workflow");
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(body, "priority");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(body, "max_tokens");
    const cJSON *mct = cJSON_GetObjectItemCaseSensitive(body, "max_completion_tokens");
    const cJSON *mot = cJSON_GetObjectItemCaseSensitive(body, "max_output_tokens");
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(body, "endpoint");
    int endpoint = ep ? qt_endpoint_parse(cJSON_IsString(ep) ? ep->valuestring : NULL) : QT_ENDPOINT_CHAT;
    if (id_out)
        *id_out = id_of(id, line_no);
    if (workflow_out)
        *workflow_out = strdup(cJSON_IsString(wf) && wf->valuestring[0] ? wf->valuestring : "default");

    const char *problem = NULL;
    char detail[200] = "";
    int model_idx = -1;
    if (id && !cJSON_IsString(id) && !cJSON_IsNumber(id))
        problem = "\"id\" must be a string or a number";
    else if (wf && !cJSON_IsString(wf))
        problem = "\"workflow\" must be a string";
    else if (pr && (!cJSON_IsNumber(pr) || pr->valuedouble < 1 || pr->valuedouble > 10
                    || pr->valuedouble != (int)pr->valuedouble))
        problem = "\"priority\" must be a whole number from 1 (most urgent) to 10";
    else if (!model)
        problem = "missing \"model\"";
    else if (!cJSON_IsString(model))
        problem = "\"model\" must be a string";
    else if ((model_idx = qt_config_model_index(cfg, model->valuestring)) < 0) {
        snprintf(detail, sizeof detail, "unknown model \"%.80s\" (not in the config)",
                 model->valuestring);
        problem = detail;
    } else if (ep && (!cJSON_IsString(ep) || endpoint < 0))
        problem = "\"endpoint\" must be \"chat\", \"messages\", \"responses\" or \"embeddings\"";
    else if (mt && (!cJSON_IsNumber(mt) || mt->valuedouble < 1 || mt->valuedouble > 10000000))
        problem = "\"max_tokens\" must be a positive number";
    else if (mct && (!cJSON_IsNumber(mct) || mct->valuedouble < 1 || mct->valuedouble > 10000000))
        problem = "\"max_completion_tokens\" must be a positive number";
    else if (mot && (!cJSON_IsNumber(mot) || mot->valuedouble < 1 || mot->valuedouble > 10000000))
        problem = "\"max_output_tokens\" must be a positive number";
    else
        problem = body_problem((qt_endpoint)endpoint, body, detail, sizeof detail);
    if (problem) {
        snprintf(err, errlen, "%s%s", where, problem);
        cJSON_Delete(body);
        return QT_ERR_INVALID;
    }

    qt_job *job = calloc(1, sizeof *job);
    if (!job) {
        snprintf(err, errlen, "%sout of memory", where);
        cJSON_Delete(body);
        return QT_ERR_NOMEM;
    }
    job->id = id_of(id, line_no);
    job->workflow = strdup(cJSON_IsString(wf) && wf->valuestring[0] ? wf->valuestring : "default");
    job->priority = pr ? (int)pr->valuedouble : 5;
    job->model = strdup(model->valuestring);
    job->model_idx = model_idx;
    job->max_tokens = mt ? (int)mt->valuedouble : 0;
    if (mct && (int)mct->valuedouble > job->max_tokens)   /* reserve the larger */
        job->max_tokens = (int)mct->valuedouble;
    if (mot && (int)mot->valuedouble > job->max_tokens)   /* the Responses API's name */
        job->max_tokens = (int)mot->valuedouble;
    job->line_no = line_no;
    job->endpoint = (qt_endpoint)endpoint;
    job->body = body;
    size_job(job);
    *out = job;
    return QT_OK;
}

qt_err qt_job_parse(const char *line, size_t len, long line_no, const qt_config *cfg,
                    qt_job **out, char **id_out, char **workflow_out, char *err, size_t errlen)
{
    const char *end = NULL;
    *out = NULL;
    long bad = qt_utf8_invalid_at(line, len);
    if (bad >= 0) {
        /* cJSON would copy the bytes raw into the result line, which strict
         * JSON readers then reject: refuse the line instead. */
        snprintf(err, errlen, "line %ld: not valid UTF-8 (byte %ld)", line_no, bad + 1);
        if (id_out)
            *id_out = id_of(NULL, line_no);
        if (workflow_out)
            *workflow_out = strdup("default");
        return QT_ERR_INVALID;
    }
    cJSON *body = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!body) {
        size_t col = end && end >= line ? (size_t)(end - line) + 1 : 1;
        snprintf(err, errlen, "line %ld: malformed JSON near column %zu", line_no, col);
        if (id_out)
            *id_out = id_of(NULL, line_no);
        if (workflow_out)
            *workflow_out = strdup("default");
        return QT_ERR_INVALID;
    }
    return qt_job_from_json(body, line_no, cfg, out, id_out, workflow_out, err, errlen);
}

void qt_job_free(qt_job *job)
{
    if (!job)
        return;
    free(job->id);
    free(job->workflow);
    free(job->model);
    cJSON_Delete(job->body);
    free(job);
}

/* ------------------------------------------------------------- results */

struct qt_results {
    pthread_mutex_t lock;   /* guards f: one line at a time */
    FILE *f;
    int is_stdout;
    int buffered;           /* qt_results_set_buffered (under lock) */
};

qt_results *qt_results_open(const char *path, int append)
{
    qt_results *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (!strcmp(path, "-")) {
        r->f = stdout;
        r->is_stdout = 1;
    } else {
        r->f = fopen(path, append ? "a+" : "w");
        if (!r->f) {
            int e = errno;
            free(r);
            errno = e;
            return NULL;
        }
        /* A run killed mid-write leaves a torn last line: start on a fresh
         * line so the next result is not glued onto the fragment. */
        if (append && fseek(r->f, -1, SEEK_END) == 0 && fgetc(r->f) != '\n') {
            fseek(r->f, 0, SEEK_END);
            if (fputc('\n', r->f) == EOF || fflush(r->f) != 0) {
                int e = errno;
                fclose(r->f);
                free(r);
                errno = e;
                return NULL;
            }
        }
        fseek(r->f, 0, SEEK_END);
    }
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

/* The result line is written directly, not built as a cJSON tree and
 * printed: that tree cost more than everything else a result needs (about
 * 45,000 instructions a line, measured with callgrind). The output is
 * byte for byte what cJSON_PrintUnformatted gives for the same object
 * (tests/unit/test_jobs.c compares the two): keys in the same order,
 * strings escaped as cJSON escapes them, numbers printed as cJSON prints
 * them, embedded JSON texts parsed and printed again by cJSON. */
typedef struct {
    char *s;
    size_t len, cap;
    int nomem;
} jline;

static void jl_grow(jline *b, size_t more)
{
    if (b->nomem || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *n = realloc(b->s, cap);
    if (!n) {
        b->nomem = 1;
        return;
    }
    b->s = n;
    b->cap = cap;
}

static void jl_put(jline *b, const char *p, size_t n)
{
    jl_grow(b, n);
    if (b->nomem)
        return;
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void jl_puts(jline *b, const char *p) { jl_put(b, p, strlen(p)); }

/* A JSON string as cJSON escapes it: ", \ and control characters; other
 * bytes as they are (qt_utf8_sanitize fixes what is not UTF-8). */
static void jl_str(jline *b, const char *v)
{
    size_t n = strlen(v), extra = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 32 || c == '"' || c == '\\')
            extra += (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r'
                      || c == '\t') ? 1 : 5;
    }
    jl_grow(b, n + extra);
    if (b->nomem)
        return;
    char *o = b->s + b->len;
    *o++ = '"';
    if (extra == 2) {
        memcpy(o, v, n);
        o += n;
    } else {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)v[i];
            if (c >= 32 && c != '"' && c != '\\') {
                *o++ = (char)c;
                continue;
            }
            *o++ = '\\';
            switch (c) {
            case '"':  *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                snprintf(o, 6, "u%04x", c);
                o += 5;
            }
        }
    }
    *o++ = '"';
    *o = '\0';
    b->len = (size_t)(o - b->s);
}

static void jl_key(jline *b, const char *k)
{
    jl_put(b, b->len > 1 ? ",\"" : "\"", b->len > 1 ? 2 : 1);
    jl_puts(b, k);
    jl_put(b, "\":", 2);
}

static void add_str_or_null(jline *b, const char *k, const char *v)
{
    jl_key(b, k);
    if (v)
        jl_str(b, v);
    else
        jl_put(b, "null", 4);
}

/* A number as cJSON prints it: an int as %d, else the shortest of %1.15g
 * and %1.17g that reads back the same. */
static void add_num(jline *b, const char *k, double d)
{
    char nb[32];
    int vi = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
    jl_key(b, k);
    if (isnan(d) || isinf(d)) {
        snprintf(nb, sizeof nb, "null");
    } else if (d == (double)vi) {
        /* %d, without printf's cost */
        char t[16];
        size_t n = 0, o = 0;
        unsigned u = vi < 0 ? 0u - (unsigned)vi : (unsigned)vi;
        do
            t[n++] = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        if (vi < 0)
            nb[o++] = '-';
        while (n)
            nb[o++] = t[--n];
        nb[o] = '\0';
    } else {
        double test = 0;
        snprintf(nb, sizeof nb, "%1.15g", d);
        if (sscanf(nb, "%lg", &test) != 1 || fabs(test - d) > fmax(fabs(test), fabs(d)) * DBL_EPSILON)
            snprintf(nb, sizeof nb, "%1.17g", d);
    }
    jl_puts(b, nb);
}

/* Adds a field holding the JSON value of text (our own printed output),
 * parsed again so a malformed text can never break the line; skipped when
 * text is NULL or does not parse. */
static void add_json_text(jline *b, const char *k, const char *text)
{
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    char *p = v ? cJSON_PrintUnformatted(v) : NULL;
    cJSON_Delete(v);
    if (!p) {
        if (v)
            b->nomem = 1;
        return;
    }
    jl_key(b, k);
    jl_puts(b, p);
    free(p);
}

char *qt_result_to_json(const qt_result *res)
{
    jline b = { 0 };
    jl_put(&b, "{", 1);
    add_str_or_null(&b, "id", res->id);
    add_str_or_null(&b, "workflow", res->workflow);
    add_str_or_null(&b, "status", qt_status_name(res->status));
    add_str_or_null(&b, "model", res->model);
    add_str_or_null(&b, "model_used", res->model_used);
    add_str_or_null(&b, "provider", res->provider);
    add_num(&b, "attempts", res->attempts);
    add_num(&b, "prompt_tokens", (double)res->prompt_tokens);
    add_num(&b, "completion_tokens", (double)res->completion_tokens);
    /* Round to a micro-dollar fraction so the file stays readable. */
    char cost[32];
    snprintf(cost, sizeof cost, "%.9f", res->cost_usd);
    jl_key(&b, "cost_usd");
    jl_puts(&b, cost);
    add_num(&b, "queued_ms", (double)res->queued_ms);
    add_num(&b, "latency_ms", (double)res->latency_ms);
    jl_key(&b, "cached");
    jl_puts(&b, res->cached ? "true" : "false");
    add_str_or_null(&b, "error", res->error);
    add_str_or_null(&b, "content", res->content);
    add_str_or_null(&b, "finish_reason", res->finish_reason);
    add_json_text(&b, "tool_calls", res->tool_calls);
    add_json_text(&b, "choices", res->choices);
    if (res->cached_tokens > 0)
        add_num(&b, "cached_tokens", (double)res->cached_tokens);
    if (res->cache_write_tokens > 0)
        add_num(&b, "cache_write_tokens", (double)res->cache_write_tokens);
    if (res->reasoning_tokens > 0)
        add_num(&b, "reasoning_tokens", (double)res->reasoning_tokens);
    if (res->endpoint != QT_ENDPOINT_CHAT)
        add_str_or_null(&b, "endpoint", qt_endpoint_name(res->endpoint));
    /* Only an OpenAI response id: an anthropic-kind answer (translated)
     * left no state a previous_response_id could name. */
    if (res->endpoint == QT_ENDPOINT_RESPONSES && res->upstream_id && !strncmp(res->upstream_id, "resp_", 5))
        add_str_or_null(&b, "response_id", res->upstream_id);
    add_json_text(&b, "embeddings", res->embeddings);
    jl_put(&b, "}", 1);
    if (b.nomem) {
        free(b.s);
        return NULL;
    }
    /* Upstream text may hold bytes that are not UTF-8: U+FFFD for each, so
     * every line stays strict JSON. */
    return qt_utf8_sanitize(b.s);
}

qt_err qt_results_write(qt_results *r, const qt_result *res)
{
    char *line = qt_result_to_json(res);
    if (!line)
        return QT_ERR_NOMEM;
    pthread_mutex_lock(&r->lock);
    int bad = fputs(line, r->f) < 0 || fputc('\n', r->f) == EOF || (!r->buffered && fflush(r->f) != 0);
    pthread_mutex_unlock(&r->lock);
    free(line);
    return bad ? QT_ERR_IO : QT_OK;
}

void qt_results_set_buffered(qt_results *r, int on)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->buffered = on != 0;
    int bad = fflush(r->f) != 0;
    (void)bad;   /* seen by the next flush or the close (ferror) */
    pthread_mutex_unlock(&r->lock);
}

qt_err qt_results_flush(qt_results *r)
{
    if (!r)
        return QT_OK;
    pthread_mutex_lock(&r->lock);
    int bad = fflush(r->f) != 0;
    pthread_mutex_unlock(&r->lock);
    return bad ? QT_ERR_IO : QT_OK;
}

qt_err qt_results_close(qt_results *r)
{
    if (!r)
        return QT_OK;
    int bad = fflush(r->f) != 0 || ferror(r->f);
    if (!r->is_stdout && fclose(r->f) != 0)
        bad = 1;
    pthread_mutex_destroy(&r->lock);
    free(r);
    return bad ? QT_ERR_IO : QT_OK;
}

/* --------------------------------------------------------------- id set */

struct qt_idset {
    char **slots;   /* open addressing, NULL = empty */
    long *vals;     /* the value stored with each slot's id */
    size_t cap;     /* power of two */
    size_t count;
    long bad_lines; /* qt_results_ok_ids: lines that are not result objects */
    long first_bad; /* 1-based line number of the first of them, 0 none */
    int torn_tail;  /* the file's last line has no newline (a torn write) */
};

qt_idset *qt_idset_new(void) { return calloc(1, sizeof(qt_idset)); }

static int idset_grow(qt_idset *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 64;
    char **n = calloc(ncap, sizeof *n);
    long *v = calloc(ncap, sizeof *v);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i])
            continue;
        size_t j = qt_hash_str(QT_HASH_SEED, s->slots[i]) & (ncap - 1);
        while (n[j])
            j = (j + 1) & (ncap - 1);
        n[j] = s->slots[i];
        v[j] = s->vals[i];
    }
    free(s->slots);
    free(s->vals);
    s->slots = n;
    s->vals = v;
    s->cap = ncap;
    return 0;
}

/* The slot holding id, or the empty slot where it would go. cap > 0. */
static size_t idset_find(const qt_idset *s, const char *id)
{
    size_t j = qt_hash_str(QT_HASH_SEED, id) & (s->cap - 1);
    while (s->slots[j] && strcmp(s->slots[j], id))
        j = (j + 1) & (s->cap - 1);
    return j;
}

int qt_idset_add(qt_idset *s, const char *id, long val, long *old_val)
{
    if (!s || !id)
        return -1;
    if ((s->count + 1) * 2 > s->cap && idset_grow(s) != 0)
        return -1;
    size_t j = idset_find(s, id);
    if (s->slots[j]) {
        if (old_val)
            *old_val = s->vals[j];
        return 0;
    }
    if (!(s->slots[j] = strdup(id)))
        return -1;
    s->vals[j] = val;
    s->count++;
    return 1;
}

int qt_idset_has(const qt_idset *s, const char *id)
{
    if (!s || !s->cap || !id)
        return 0;
    return s->slots[idset_find(s, id)] != NULL;
}

size_t qt_idset_count(const qt_idset *s) { return s ? s->count : 0; }

long qt_idset_bad_lines(const qt_idset *s, long *first_bad, int *torn_tail)
{
    if (first_bad)
        *first_bad = s ? s->first_bad : 0;
    if (torn_tail)
        *torn_tail = s ? s->torn_tail : 0;
    return s ? s->bad_lines : 0;
}

void qt_idset_free(qt_idset *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i]);
    free(s->slots);
    free(s->vals);
    free(s);
}

qt_idset *qt_results_ok_ids(const char *path)
{
    qt_idset *s = qt_idset_new();
    if (!s)
        return NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return s;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long line_no = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        line_no++;
        int torn = line[n - 1] != '\n';
        size_t len = (size_t)n - !torn;
        if (strspn(line, " \t\r\n") == (size_t)n)
            continue;   /* blank */
        cJSON *o = cJSON_ParseWithLength(line, len);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (!cJSON_IsString(st) || !cJSON_IsString(id)) {
            /* A torn write or foreign text: not a result, ignored (its job
             * has no ok line, so it runs again). */
            if (!s->bad_lines++)
                s->first_bad = line_no;
            s->torn_tail |= torn;
        } else if (!strcmp(st->valuestring, "ok")) {
            qt_idset_add(s, id->valuestring, line_no, NULL);
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    return s;
}
