/* mock_body.c: what the simulated provider reads and writes.
 *
 * Requests: the model, max_tokens (OpenAI also max_completion_tokens;
 * default 16 when absent; Anthropic requires it), stream and
 * stream_options.include_usage, and the prompt size. Prompt tokens are
 * ceil(bytes / 4) over every message's text (a string content, or the "text"
 * of each part of an array content) plus Anthropic's "system", at least 1;
 * no per-message overhead, so a client estimating chars/4 agrees exactly.
 *
 * Answers: the completion is deterministic. It wants
 * opts.completion_tokens tokens, or 12 + prompt_tokens % 32 when that is 0,
 * and never more than max_tokens (then finish_reason "length" /
 * stop_reason "max_tokens"). The text is a fixed sentence cycled to about
 * 4 bytes per completion token. Bodies and errors follow the shapes the real
 * APIs send; streams are lists of SSE events built up front.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mock_int.h"

#define OPENAI_DEFAULT_MAX_TOKENS 16

static uint64_t text_bytes(const cJSON *content)
{
    if (cJSON_IsString(content))
        return strlen(content->valuestring);
    uint64_t n = 0;
    const cJSON *part;
    if (cJSON_IsArray(content))
        cJSON_ArrayForEach(part, content) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(t))
                n += strlen(t->valuestring);
            else if (cJSON_IsString(part))
                n += strlen(part->valuestring);
        }
    return n;
}

static void bad(mock_req *r, const char *msg)
{
    if (!r->error)
        r->error = msg;
}

void mock_parse_request(const char *body, size_t len, bool anthropic, mock_req *r)
{
    memset(r, 0, sizeof *r);
    cJSON *root = len ? cJSON_ParseWithLengthOpts(body, len, NULL, 0) : NULL;
    if (!cJSON_IsObject(root)) {
        bad(r, anthropic ? "invalid request: the request body is not valid JSON"
                         : "We could not parse the JSON body of your request. (HINT: This likely "
                           "means you aren't using your HTTP library correctly. The OpenAI API "
                           "expects a JSON payload, but what was sent was not valid JSON.)");
        cJSON_Delete(root);
        return;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (cJSON_IsString(model) && model->valuestring[0] &&
        strlen(model->valuestring) < sizeof r->model) {
        strcpy(r->model, model->valuestring);
        r->has_model = true;
    } else {
        bad(r, anthropic ? "model: Field required" : "you must provide a model parameter");
    }

    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    uint64_t bytes = 0;
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        bad(r, anthropic ? "messages: Field required (at least one message)"
                         : "Missing required parameter: 'messages'.");
    } else {
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs) {
            if (!cJSON_IsObject(m)) {
                bad(r, anthropic ? "messages: each message must be an object"
                                 : "Invalid type for 'messages[0]': expected an object.");
                continue;
            }
            bytes += text_bytes(cJSON_GetObjectItemCaseSensitive(m, "content"));
        }
    }
    if (anthropic)
        bytes += text_bytes(cJSON_GetObjectItemCaseSensitive(root, "system"));
    bytes += mock_parse_agent(root, anthropic, r);
    r->prompt_tokens = (bytes + 3) / 4;
    if (r->prompt_tokens == 0)
        r->prompt_tokens = 1;

    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    if (!mt && !anthropic)
        mt = cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens");
    if (mt && !cJSON_IsNull(mt)) {
        if (!cJSON_IsNumber(mt) || mt->valuedouble < 1 || mt->valuedouble > 1e9 ||
            mt->valuedouble != (double)(uint64_t)mt->valuedouble)
            bad(r, anthropic ? "max_tokens: Input should be a positive integer"
                             : "Invalid 'max_tokens': expected a positive integer.");
        else {
            r->max_tokens = (uint64_t)mt->valuedouble;
            r->has_max_tokens = true;
        }
    }
    if (!r->has_max_tokens) {
        if (anthropic)
            bad(r, "max_tokens: Field required");
        r->max_tokens = OPENAI_DEFAULT_MAX_TOKENS;
    }

    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "stream");
    r->stream = cJSON_IsTrue(st);
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    r->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    cJSON_Delete(root);
}

/* ---- errors ---- */

static char *print_and_free(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

char *mock_openai_error(const char *message, const char *type, const char *param,
                        const char *code)
{
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    if (!e) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    if (param) cJSON_AddStringToObject(e, "param", param); else cJSON_AddNullToObject(e, "param");
    if (code)  cJSON_AddStringToObject(e, "code", code);   else cJSON_AddNullToObject(e, "code");
    return print_and_free(o);
}

char *mock_anthropic_error(const char *type, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "error");
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    if (!e) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddStringToObject(e, "message", message);
    return print_and_free(o);
}

/* ---- answers ---- */

uint64_t mock_completion_tokens(const qt_mock_model_opts *o, uint64_t prompt,
                                uint64_t max_tokens, bool *truncated)
{
    uint64_t want = o->completion_tokens ? o->completion_tokens : 12 + prompt % 32;
    *truncated = want > max_tokens;
    return *truncated ? max_tokens : want;
}

static const char sentence[] =
    "This is a simulated reply from the quotatop mock provider, "
    "deterministic so that tests can rely on it. ";

/* The reply text: the sentence cycled, at most 4 bytes per token, at least
 * one word. Caller frees. */
static char *reply_text(uint64_t tokens)
{
    size_t want = tokens * 4;
    if (want > 1 << 20)
        want = 1 << 20;
    char *s = malloc(want + 16);
    if (!s)
        return NULL;
    size_t n = 0, i = 0, slen = sizeof sentence - 1;
    for (;;) {
        size_t w = 0;                       /* next word, with its space */
        while (sentence[(i + w) % slen] != ' ')
            w++;
        w++;
        if (n && n + w > want)
            break;
        for (size_t k = 0; k < w; k++)
            s[n++] = sentence[(i + k) % slen];
        i = (i + w) % slen;
        if (n >= want)
            break;
    }
    while (n && s[n - 1] == ' ')
        n--;
    s[n] = '\0';
    return s;
}

/* The text of an answer: the tool result quoted after a tool call, else
 * the cycled sentence. Caller frees. */
char *mock_answer_text(const mock_answer *a)
{
    if (a->q && a->q->after_tool) {
        size_t n = strlen(a->q->tool_result) + 40;
        char *s = malloc(n);
        if (s)
            snprintf(s, n, "Tool result received: %s", a->q->tool_result);
        return s;
    }
    return reply_text(a->completion_tokens);
}

static bool calls_tool(const mock_answer *a) { return a->q && a->q->call_tool; }
static unsigned n_choices(const mock_answer *a) { return a->q && a->q->n > 1 ? a->q->n : 1; }

static const char *openai_finish(const mock_answer *a)
{
    return a->truncated ? "length" : calls_tool(a) ? "tool_calls" : "stop";
}

static const char *anthropic_stop(const mock_answer *a)
{
    return a->truncated ? "max_tokens" : calls_tool(a) ? "tool_use" : "end_turn";
}

static void tool_id(const mock_answer *a, unsigned choice, bool anthropic, char *buf, size_t len)
{
    snprintf(buf, len, anthropic ? "toolu_mock%016llx%02u" : "call_mock%016llx%02u",
             (unsigned long long)a->seq, choice);
}

/* usage: prompt_tokens (cached ones included, with their details),
 * completion_tokens summed over the choices. */
static void openai_usage(cJSON *o, const mock_answer *a)
{
    uint64_t ct = a->completion_tokens * n_choices(a);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)a->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)ct);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(a->prompt_tokens + ct));
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", (double)a->cached);
    cJSON_AddNumberToObject(d, "audio_tokens", 0);
    d = cJSON_AddObjectToObject(u, "completion_tokens_details");
    cJSON_AddNumberToObject(d, "reasoning_tokens", 0);
}

static void anthropic_usage(cJSON *u, const mock_answer *a, uint64_t output)
{
    cJSON_AddNumberToObject(u, "input_tokens", (double)(a->prompt_tokens - a->cached - a->cache_write));
    cJSON_AddNumberToObject(u, "cache_creation_input_tokens", (double)a->cache_write);
    cJSON_AddNumberToObject(u, "cache_read_input_tokens", (double)a->cached);
    cJSON_AddNumberToObject(u, "output_tokens", (double)output);
}

char *mock_openai_body(const mock_answer *a)
{
    char *text = mock_answer_text(a);
    if (!text)
        return NULL;
    char id[64];
    snprintf(id, sizeof id, "chatcmpl-mock%016llx", (unsigned long long)a->seq);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "chat.completion");
    cJSON_AddNumberToObject(o, "created", (double)a->created_s);
    cJSON_AddStringToObject(o, "model", a->model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    for (unsigned i = 0; i < n_choices(a); i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, c);
        cJSON_AddNumberToObject(c, "index", i);
        cJSON *msg = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        if (calls_tool(a)) {
            char tid[64];
            tool_id(a, i, false, tid, sizeof tid);
            cJSON_AddNullToObject(msg, "content");
            cJSON *tc = cJSON_CreateObject();
            cJSON_AddItemToArray(cJSON_AddArrayToObject(msg, "tool_calls"), tc);
            cJSON_AddStringToObject(tc, "id", tid);
            cJSON_AddStringToObject(tc, "type", "function");
            cJSON *fn = cJSON_AddObjectToObject(tc, "function");
            cJSON_AddStringToObject(fn, "name", a->q->tool_name);
            cJSON_AddStringToObject(fn, "arguments", a->q->tool_args);
        } else {
            cJSON_AddStringToObject(msg, "content", text);
        }
        cJSON_AddNullToObject(msg, "refusal");
        cJSON_AddNullToObject(c, "logprobs");
        cJSON_AddStringToObject(c, "finish_reason", openai_finish(a));
    }
    openai_usage(o, a);
    cJSON_AddStringToObject(o, "system_fingerprint", "fp_mock");
    free(text);
    return print_and_free(o);
}

char *mock_anthropic_body(const mock_answer *a)
{
    char *text = mock_answer_text(a);
    if (!text)
        return NULL;
    char id[64];
    snprintf(id, sizeof id, "msg_mock%016llx", (unsigned long long)a->seq);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "type", "message");
    cJSON_AddStringToObject(o, "role", "assistant");
    cJSON_AddStringToObject(o, "model", a->model);
    cJSON *content = cJSON_AddArrayToObject(o, "content");
    cJSON *blk = cJSON_CreateObject();
    cJSON_AddItemToArray(content, blk);
    if (calls_tool(a)) {
        char tid[64];
        tool_id(a, 0, true, tid, sizeof tid);
        cJSON_AddStringToObject(blk, "type", "tool_use");
        cJSON_AddStringToObject(blk, "id", tid);
        cJSON_AddStringToObject(blk, "name", a->q->tool_name);
        cJSON *in = cJSON_Parse(a->q->tool_args);
        cJSON_AddItemToObject(blk, "input", in ? in : cJSON_CreateObject());
    } else {
        cJSON_AddStringToObject(blk, "type", "text");
        cJSON_AddStringToObject(blk, "text", text);
    }
    cJSON_AddStringToObject(o, "stop_reason", anthropic_stop(a));
    cJSON_AddNullToObject(o, "stop_sequence");
    anthropic_usage(cJSON_AddObjectToObject(o, "usage"), a, a->completion_tokens);
    free(text);
    return print_and_free(o);
}

/* ---- streams ---- */


/* Appends "[event: NAME\n]data: JSON\n\n", taking ownership of o. */
void mock_ev_add(mock_evlist *l, const char *event, cJSON *o)
{
    char *json = print_and_free(o);
    if (!json || l->oom) {
        free(json);
        l->oom = true;
        return;
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, ncap * sizeof *v);
        if (!v) {
            free(json);
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = ncap;
    }
    size_t len = strlen(json) + (event ? strlen(event) : 0) + 32;
    char *s = malloc(len);
    if (!s) {
        free(json);
        l->oom = true;
        return;
    }
    if (event)
        snprintf(s, len, "event: %s\ndata: %s\n\n", event, json);
    else
        snprintf(s, len, "data: %s\n\n", json);
    free(json);
    l->v[l->n++] = s;
}

char **mock_ev_finish(mock_evlist *l, size_t *n)
{
    if (l->oom) {
        mock_events_free(l->v, l->n);
        *n = 0;
        return NULL;
    }
    *n = l->n;
    return l->v;
}

void mock_events_free(char **ev, size_t n)
{
    for (size_t i = 0; ev && i < n; i++)
        free(ev[i]);
    free(ev);
}

/* Calls fn(word, arg) for each word of text, the space kept with the word. */
void mock_each_word(const char *text, void (*fn)(const char *, void *), void *arg)
{
    char w[128];
    const char *p = text;
    while (*p) {
        size_t n = strcspn(p, " ");
        if (p[n] == ' ')
            n++;
        size_t k = n < sizeof w - 1 ? n : sizeof w - 1;
        memcpy(w, p, k);
        w[k] = '\0';
        fn(w, arg);
        p += n;
    }
}

typedef struct {
    mock_evlist *l;
    const mock_answer *a;
    const char *id;
    bool include_usage;
    unsigned choice;
} stream_ctx;

static cJSON *openai_chunk(const stream_ctx *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", c->id);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", (double)c->a->created_s);
    cJSON_AddStringToObject(o, "model", c->a->model);
    cJSON_AddStringToObject(o, "system_fingerprint", "fp_mock");
    return o;
}

/* A chunk with one choice whose delta is returned to fill. */
static cJSON *openai_choice_chunk(const stream_ctx *c, cJSON **delta, const char *finish)
{
    cJSON *o = openai_chunk(c);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", c->choice);
    *delta = cJSON_AddObjectToObject(ch, "delta");
    cJSON_AddNullToObject(ch, "logprobs");
    if (finish) cJSON_AddStringToObject(ch, "finish_reason", finish);
    else        cJSON_AddNullToObject(ch, "finish_reason");
    if (c->include_usage)
        cJSON_AddNullToObject(o, "usage");
    return o;
}

static void openai_word(const char *word, void *arg)
{
    stream_ctx *c = arg;
    cJSON *delta;
    cJSON *o = openai_choice_chunk(c, &delta, NULL);
    cJSON_AddStringToObject(delta, "content", word);
    mock_ev_add(c->l, NULL, o);
}

/* Calls fn(piece, arg) for the arguments text cut in about three pieces
 * (a client must reassemble them). */
static void each_piece(const char *args, void (*fn)(const char *, void *), void *arg)
{
    size_t n = strlen(args), step = n / 3 + 1;
    char buf[sizeof ((mock_req *)0)->tool_args];
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        memcpy(buf, args + i, k);
        buf[k] = '\0';
        fn(buf, arg);
    }
}

static void openai_args_piece(const char *piece, void *arg)
{
    stream_ctx *c = arg;
    cJSON *delta;
    cJSON *o = openai_choice_chunk(c, &delta, NULL);
    cJSON *tc = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(delta, "tool_calls"), tc);
    cJSON_AddNumberToObject(tc, "index", 0);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(tc, "function"), "arguments", piece);
    mock_ev_add(c->l, NULL, o);
}

/* One choice of a streamed OpenAI answer: role, text or tool call, finish. */
static void openai_stream_choice(stream_ctx *c, const char *text)
{
    cJSON *delta;
    cJSON *o = openai_choice_chunk(c, &delta, NULL);
    cJSON_AddStringToObject(delta, "role", "assistant");
    if (calls_tool(c->a)) {
        char tid[64];
        tool_id(c->a, c->choice, false, tid, sizeof tid);
        cJSON_AddNullToObject(delta, "content");
        cJSON *tc = cJSON_CreateObject();
        cJSON_AddItemToArray(cJSON_AddArrayToObject(delta, "tool_calls"), tc);
        cJSON_AddNumberToObject(tc, "index", 0);
        cJSON_AddStringToObject(tc, "id", tid);
        cJSON_AddStringToObject(tc, "type", "function");
        cJSON *fn = cJSON_AddObjectToObject(tc, "function");
        cJSON_AddStringToObject(fn, "name", c->a->q->tool_name);
        cJSON_AddStringToObject(fn, "arguments", "");
        mock_ev_add(c->l, NULL, o);
        each_piece(c->a->q->tool_args, openai_args_piece, c);
    } else {
        cJSON_AddStringToObject(delta, "content", "");
        mock_ev_add(c->l, NULL, o);
        mock_each_word(text, openai_word, c);
    }
    o = openai_choice_chunk(c, &delta, openai_finish(c->a));
    mock_ev_add(c->l, NULL, o);
}

char **mock_openai_stream(const mock_answer *a, bool include_usage, size_t *n)
{
    char *text = mock_answer_text(a);
    if (!text)
        return NULL;
    char id[64];
    snprintf(id, sizeof id, "chatcmpl-mock%016llx", (unsigned long long)a->seq);
    mock_evlist l = { 0 };
    stream_ctx c = { &l, a, id, include_usage, 0 };
    for (c.choice = 0; c.choice < n_choices(a); c.choice++)
        openai_stream_choice(&c, text);
    if (include_usage) {
        cJSON *o = openai_chunk(&c);
        cJSON_AddArrayToObject(o, "choices");
        openai_usage(o, a);
        mock_ev_add(&l, NULL, o);
    }
    free(text);
    /* the terminator is not JSON: add it by hand */
    char **v = mock_ev_finish(&l, n);
    if (!v)
        return NULL;
    char **nv = realloc(v, (*n + 1) * sizeof *nv);
    char *done = strdup("data: [DONE]\n\n");
    if (!nv || !done) {
        free(done);
        mock_events_free(nv ? nv : v, *n);
        return NULL;
    }
    nv[(*n)++] = done;
    return nv;
}

static void anthropic_delta(stream_ctx *c, const char *type, const char *key, const char *val)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "content_block_delta");
    cJSON_AddNumberToObject(o, "index", 0);
    cJSON *d = cJSON_AddObjectToObject(o, "delta");
    cJSON_AddStringToObject(d, "type", type);
    cJSON_AddStringToObject(d, key, val);
    mock_ev_add(c->l, "content_block_delta", o);
}

static void anthropic_word(const char *word, void *arg)
{
    anthropic_delta(arg, "text_delta", "text", word);
}

static void anthropic_args_piece(const char *piece, void *arg)
{
    anthropic_delta(arg, "input_json_delta", "partial_json", piece);
}

static void anthropic_start(stream_ctx *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "message_start");
    cJSON *m = cJSON_AddObjectToObject(o, "message");
    cJSON_AddStringToObject(m, "id", c->id);
    cJSON_AddStringToObject(m, "type", "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    cJSON_AddStringToObject(m, "model", c->a->model);
    cJSON_AddArrayToObject(m, "content");
    cJSON_AddNullToObject(m, "stop_reason");
    cJSON_AddNullToObject(m, "stop_sequence");
    anthropic_usage(cJSON_AddObjectToObject(m, "usage"), c->a, 1);
    mock_ev_add(c->l, "message_start", o);

    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "content_block_start");
    cJSON_AddNumberToObject(o, "index", 0);
    cJSON *b = cJSON_AddObjectToObject(o, "content_block");
    if (calls_tool(c->a)) {
        char tid[64];
        tool_id(c->a, 0, true, tid, sizeof tid);
        cJSON_AddStringToObject(b, "type", "tool_use");
        cJSON_AddStringToObject(b, "id", tid);
        cJSON_AddStringToObject(b, "name", c->a->q->tool_name);
        cJSON_AddObjectToObject(b, "input");
    } else {
        cJSON_AddStringToObject(b, "type", "text");
        cJSON_AddStringToObject(b, "text", "");
    }
    mock_ev_add(c->l, "content_block_start", o);

    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ping");
    mock_ev_add(c->l, "ping", o);
}

char **mock_anthropic_stream(const mock_answer *a, size_t *n)
{
    char *text = mock_answer_text(a);
    if (!text)
        return NULL;
    char id[64];
    snprintf(id, sizeof id, "msg_mock%016llx", (unsigned long long)a->seq);
    mock_evlist l = { 0 };
    stream_ctx c = { &l, a, id, false, 0 };
    anthropic_start(&c);
    if (calls_tool(a))
        each_piece(a->q->tool_args, anthropic_args_piece, &c);
    else
        mock_each_word(text, anthropic_word, &c);

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "content_block_stop");
    cJSON_AddNumberToObject(o, "index", 0);
    mock_ev_add(&l, "content_block_stop", o);

    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "message_delta");
    cJSON *d = cJSON_AddObjectToObject(o, "delta");
    cJSON_AddStringToObject(d, "stop_reason", anthropic_stop(a));
    cJSON_AddNullToObject(d, "stop_sequence");
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "output_tokens", (double)a->completion_tokens);
    mock_ev_add(&l, "message_delta", o);

    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "message_stop");
    mock_ev_add(&l, "message_stop", o);
    free(text);
    return mock_ev_finish(&l, n);
}
