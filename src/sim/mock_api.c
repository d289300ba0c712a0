/* mock_api.c: the mock's OpenAI Responses (POST /v1/responses) and
 * embeddings (POST /v1/embeddings) endpoints.
 *
 * They go through the same limits, latency, outages and stats as chat
 * (mock.c decides; this file only reads bodies and writes answers). A
 * Responses request's prompt is its "input" (a string, or items whose text
 * parts count) plus "instructions"; max_output_tokens bounds the answer
 * (default 16, like chat); function tools ({type: function, name,
 * parameters}) are read as chat tools are, so the mock calls one when asked
 * (tool_choice auto / required / {type: function, name}). An embeddings
 * request's prompt is every input item's text (a batch counts each item, at
 * least one token each); it completes nothing, and each vector has
 * `dimensions` numbers (default 16, at most 4096), deterministic.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mock_int.h"

#define RESPONSES_DEFAULT_MAX_TOKENS 16
#define EMBEDDINGS_DEFAULT_DIMS 16
#define EMBEDDINGS_MAX_DIMS 4096

int mock_api_of(const char *url)
{
    static const char *const paths[] = {"/v1/chat/completions", "/v1/messages", "/v1/responses",
                                        "/v1/embeddings"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(url, paths[i]))
            return i;
    return -1;
}

/* Text bytes of a string, or of the text parts of an item list. */
static uint64_t input_bytes(const cJSON *v)
{
    if (cJSON_IsString(v))
        return strlen(v->valuestring);
    uint64_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (cJSON_IsString(it))
            n += strlen(it->valuestring);
        else if (cJSON_IsObject(it)) {
            n += input_bytes(cJSON_GetObjectItemCaseSensitive(it, "content"));
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "text");
            if (cJSON_IsString(t))
                n += strlen(t->valuestring);
            const cJSON *out = cJSON_GetObjectItemCaseSensitive(it, "output");
            if (cJSON_IsString(out))
                n += strlen(out->valuestring);
        }
    }
    return n;
}

/* Responses tools and tool_choice, rewritten in chat's shape for
 * mock_parse_agent. */
static cJSON *as_chat_tools(const cJSON *root)
{
    cJSON *chat = cJSON_CreateObject();
    cJSON *tools = cJSON_AddArrayToObject(chat, "tools");
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(root, "tools")) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") || !cJSON_IsString(name))
            continue;
        cJSON *ct = cJSON_CreateObject();
        cJSON_AddStringToObject(ct, "type", "function");
        cJSON *fn = cJSON_AddObjectToObject(ct, "function");
        cJSON_AddStringToObject(fn, "name", name->valuestring);
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(t, "parameters");
        if (params)
            cJSON_AddItemToObject(fn, "parameters", cJSON_Duplicate(params, 1));
        cJSON_AddItemToArray(tools, ct);
    }
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "tool_choice");
    if (cJSON_IsString(tc)) {
        cJSON_AddStringToObject(chat, "tool_choice", tc->valuestring);
    } else if (cJSON_IsObject(tc)) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(tc, "name");
        cJSON *c = cJSON_AddObjectToObject(chat, "tool_choice");
        cJSON_AddStringToObject(c, "type", "function");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "function"), "name",
                                cJSON_IsString(name) ? name->valuestring : "");
    }
    return chat;
}

static void parse_responses(const cJSON *root, mock_req *r)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
    if (!cJSON_IsString(input) && !cJSON_IsArray(input)) {
        r->error = "Missing required parameter: 'input'.";
        return;
    }
    uint64_t bytes = input_bytes(input)
                     + input_bytes(cJSON_GetObjectItemCaseSensitive(root, "instructions"));
    cJSON *chat = as_chat_tools(root);
    r->n = 1;
    if (chat && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(chat, "tools")) > 0)
        bytes += mock_parse_agent(chat, false, r);
    cJSON_Delete(chat);
    r->prompt_tokens = bytes ? (bytes + 3) / 4 : 1;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "max_output_tokens");
    r->max_tokens = RESPONSES_DEFAULT_MAX_TOKENS;
    if (mt && !cJSON_IsNull(mt)) {
        if (!cJSON_IsNumber(mt) || mt->valuedouble < 1 || mt->valuedouble > 1e9)
            r->error = "Invalid 'max_output_tokens': expected a positive integer.";
        else {
            r->max_tokens = (uint64_t)mt->valuedouble;
            r->has_max_tokens = true;
        }
    }
    r->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stream"));
}

static void parse_embeddings(const cJSON *root, mock_req *r)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
    uint64_t tokens = 0;
    if (cJSON_IsString(input)) {
        r->n_inputs = 1;
        tokens = (strlen(input->valuestring) + 3) / 4;
        tokens += tokens == 0;
    } else if (cJSON_IsArray(input) && cJSON_GetArraySize(input) > 0) {
        const cJSON *it;
        cJSON_ArrayForEach(it, input) {
            uint64_t t = cJSON_IsString(it) ? (strlen(it->valuestring) + 3) / 4
                         : cJSON_IsArray(it) ? (uint64_t)cJSON_GetArraySize(it) : 1;
            tokens += t ? t : 1;
            r->n_inputs++;
        }
    } else {
        r->error = "Missing required parameter: 'input'.";
        return;
    }
    if (r->n_inputs > 2048) {
        r->error = "Invalid 'input': at most 2048 items.";
        return;
    }
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
    r->dimensions = EMBEDDINGS_DEFAULT_DIMS;
    if (cJSON_IsNumber(dims) && dims->valuedouble >= 1 && dims->valuedouble <= EMBEDDINGS_MAX_DIMS)
        r->dimensions = (unsigned)dims->valuedouble;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "encoding_format");
    r->base64 = cJSON_IsString(fmt) && !strcmp(fmt->valuestring, "base64");
    r->prompt_tokens = tokens;
    r->max_tokens = 0;
    r->has_max_tokens = true;
}

void mock_parse_api_request(const char *body, size_t len, mock_api api, mock_req *r)
{
    memset(r, 0, sizeof *r);
    r->api = (int)api;
    cJSON *root = len ? cJSON_ParseWithLengthOpts(body, len, NULL, 0) : NULL;
    if (!cJSON_IsObject(root)) {
        r->error = "We could not parse the JSON body of your request.";
        cJSON_Delete(root);
        return;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (cJSON_IsString(model) && model->valuestring[0] && strlen(model->valuestring) < sizeof r->model) {
        strcpy(r->model, model->valuestring);
        r->has_model = true;
    } else {
        r->error = "you must provide a model parameter";
    }
    if (api == MOCK_API_RESPONSES)
        parse_responses(root, r);
    else
        parse_embeddings(root, r);
    if (r->prompt_tokens == 0)
        r->prompt_tokens = 1;
    cJSON_Delete(root);
}

/* ---- answers -------------------------------------------------------------- */

static char *print_and_free(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

static bool calls_tool(const mock_answer *a) { return a->q && a->q->call_tool; }

static void ids(const mock_answer *a, char *resp, char *item, char *call, size_t len)
{
    snprintf(resp, len, "resp_mock%016llx", (unsigned long long)a->seq);
    snprintf(item, len, calls_tool(a) ? "fc_mock%016llx" : "msg_mock%016llx", (unsigned long long)a->seq);
    snprintf(call, len, "call_mock%016llx00", (unsigned long long)a->seq);
}

static cJSON *usage_of(const mock_answer *a)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "input_tokens", (double)a->prompt_tokens);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "input_tokens_details"), "cached_tokens",
                            (double)a->cached);
    cJSON_AddNumberToObject(u, "output_tokens", (double)a->completion_tokens);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "output_tokens_details"), "reasoning_tokens", 0);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(a->prompt_tokens + a->completion_tokens));
    return u;
}

/* The one output item: a message with the text, or a function call. */
static cJSON *output_item(const mock_answer *a, const char *text, bool done)
{
    char rid[48], iid[48], cid[48];
    ids(a, rid, iid, cid, sizeof rid);
    cJSON *it = cJSON_CreateObject();
    if (calls_tool(a)) {
        cJSON_AddStringToObject(it, "type", "function_call");
        cJSON_AddStringToObject(it, "id", iid);
        cJSON_AddStringToObject(it, "call_id", cid);
        cJSON_AddStringToObject(it, "name", a->q->tool_name);
        cJSON_AddStringToObject(it, "arguments", done ? a->q->tool_args : "");
        cJSON_AddStringToObject(it, "status", done ? "completed" : "in_progress");
        return it;
    }
    cJSON_AddStringToObject(it, "type", "message");
    cJSON_AddStringToObject(it, "id", iid);
    cJSON_AddStringToObject(it, "status", done ? "completed" : "in_progress");
    cJSON_AddStringToObject(it, "role", "assistant");
    cJSON *content = cJSON_AddArrayToObject(it, "content");
    if (done) {
        cJSON *part = cJSON_CreateObject();
        cJSON_AddStringToObject(part, "type", "output_text");
        cJSON_AddStringToObject(part, "text", text);
        cJSON_AddArrayToObject(part, "annotations");
        cJSON_AddItemToArray(content, part);
    }
    return it;
}

/* The response object: complete (with output and usage) or as it starts. */
static cJSON *response_obj(const mock_answer *a, const char *text, bool done)
{
    char rid[48], iid[48], cid[48];
    ids(a, rid, iid, cid, sizeof rid);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", rid);
    cJSON_AddStringToObject(o, "object", "response");
    cJSON_AddNumberToObject(o, "created_at", (double)a->created_s);
    cJSON_AddStringToObject(o, "status", !done ? "in_progress" : a->truncated && !calls_tool(a)
                                                                  ? "incomplete" : "completed");
    cJSON_AddNullToObject(o, "error");
    if (done && a->truncated && !calls_tool(a))
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "incomplete_details"), "reason",
                                "max_output_tokens");
    else
        cJSON_AddNullToObject(o, "incomplete_details");
    cJSON_AddStringToObject(o, "model", a->model);
    cJSON *out = cJSON_AddArrayToObject(o, "output");
    if (done)
        cJSON_AddItemToArray(out, output_item(a, text, true));
    cJSON_AddBoolToObject(o, "parallel_tool_calls", 1);
    cJSON_AddNullToObject(o, "previous_response_id");
    if (done)
        cJSON_AddItemToObject(o, "usage", usage_of(a));
    else
        cJSON_AddNullToObject(o, "usage");
    return o;
}

char *mock_responses_body(const mock_answer *a)
{
    char *text = mock_answer_text(a);
    if (!text)
        return NULL;
    cJSON *o = response_obj(a, text, true);
    free(text);
    return print_and_free(o);
}

typedef struct {
    mock_evlist *l;
    const char *item_id;
    int seq;
    bool args;   /* deltas of function-call arguments, else of text */
} delta_ctx;

static cJSON *event(const char *type, int *seq)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNumberToObject(e, "sequence_number", (*seq)++);
    return e;
}

static void add(mock_evlist *l, cJSON *e)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "type");
    char name[64];
    snprintf(name, sizeof name, "%s", cJSON_IsString(t) ? t->valuestring : "");
    mock_ev_add(l, name, e);
}

static void on_piece(const char *piece, void *arg)
{
    delta_ctx *c = arg;
    cJSON *e = event(c->args ? "response.function_call_arguments.delta" : "response.output_text.delta",
                     &c->seq);
    cJSON_AddStringToObject(e, "item_id", c->item_id);
    cJSON_AddNumberToObject(e, "output_index", 0);
    if (!c->args)
        cJSON_AddNumberToObject(e, "content_index", 0);
    cJSON_AddStringToObject(e, "delta", piece);
    add(c->l, e);
}

char **mock_responses_stream(const mock_answer *a, size_t *n)
{
    char *text = mock_answer_text(a);
    if (!text)
        return NULL;
    char rid[48], iid[48], cid[48];
    ids(a, rid, iid, cid, sizeof rid);
    mock_evlist l = { 0 };
    delta_ctx c = { &l, iid, 0, calls_tool(a) };
    cJSON *e = event("response.created", &c.seq);
    cJSON_AddItemToObject(e, "response", response_obj(a, text, false));
    add(&l, e);
    e = event("response.output_item.added", &c.seq);
    cJSON_AddNumberToObject(e, "output_index", 0);
    cJSON_AddItemToObject(e, "item", output_item(a, text, false));
    add(&l, e);
    if (c.args) {
        mock_each_word(a->q->tool_args, on_piece, &c);
        e = event("response.function_call_arguments.done", &c.seq);
        cJSON_AddStringToObject(e, "item_id", iid);
        cJSON_AddNumberToObject(e, "output_index", 0);
        cJSON_AddStringToObject(e, "arguments", a->q->tool_args);
        add(&l, e);
    } else {
        e = event("response.content_part.added", &c.seq);
        cJSON_AddStringToObject(e, "item_id", iid);
        cJSON_AddNumberToObject(e, "output_index", 0);
        cJSON_AddNumberToObject(e, "content_index", 0);
        cJSON *part = cJSON_AddObjectToObject(e, "part");
        cJSON_AddStringToObject(part, "type", "output_text");
        cJSON_AddStringToObject(part, "text", "");
        cJSON_AddArrayToObject(part, "annotations");
        add(&l, e);
        mock_each_word(text, on_piece, &c);
        e = event("response.output_text.done", &c.seq);
        cJSON_AddStringToObject(e, "item_id", iid);
        cJSON_AddNumberToObject(e, "output_index", 0);
        cJSON_AddNumberToObject(e, "content_index", 0);
        cJSON_AddStringToObject(e, "text", text);
        add(&l, e);
    }
    e = event("response.output_item.done", &c.seq);
    cJSON_AddNumberToObject(e, "output_index", 0);
    cJSON_AddItemToObject(e, "item", output_item(a, text, true));
    add(&l, e);
    bool incomplete = a->truncated && !calls_tool(a);
    e = event(incomplete ? "response.incomplete" : "response.completed", &c.seq);
    cJSON_AddItemToObject(e, "response", response_obj(a, text, true));
    add(&l, e);
    free(text);
    return mock_ev_finish(&l, n);
}

/* A vector as base64 of little-endian float32s, as encoding_format
 * "base64" asks (what the openai SDKs request by default). */
static cJSON *base64_vector(const float *v, unsigned n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = (size_t)n * 4;
    unsigned char *b = malloc(len);
    char *out = malloc((len + 2) / 3 * 4 + 1);
    cJSON *s = NULL;
    if (b && out) {
        for (unsigned i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &v[i], 4);
            for (int k = 0; k < 4; k++)
                b[i * 4 + k] = (unsigned char)(u >> (8 * k));
        }
        size_t o = 0;
        for (size_t i = 0; i < len; i += 3) {
            uint32_t w = (uint32_t)b[i] << 16 | (i + 1 < len ? (uint32_t)b[i + 1] << 8 : 0)
                         | (i + 2 < len ? b[i + 2] : 0);
            out[o++] = tab[w >> 18 & 63];
            out[o++] = tab[w >> 12 & 63];
            out[o++] = i + 1 < len ? tab[w >> 6 & 63] : '=';
            out[o++] = i + 2 < len ? tab[w & 63] : '=';
        }
        out[o] = '\0';
        s = cJSON_CreateString(out);
    }
    free(b);
    free(out);
    return s;
}

char *mock_embeddings_body(const mock_answer *a)
{
    unsigned items = a->q && a->q->n_inputs ? a->q->n_inputs : 1;
    unsigned dims = a->q && a->q->dimensions ? a->q->dimensions : EMBEDDINGS_DEFAULT_DIMS;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    uint64_t rng = a->seq * 0x9e3779b97f4a7c15ULL + 1;
    for (unsigned i = 0; data && i < items; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "object", "embedding");
        cJSON_AddNumberToObject(e, "index", i);
        float vec[EMBEDDINGS_MAX_DIMS];
        for (unsigned k = 0; k < dims; k++)   /* three decimals keep bodies small */
            vec[k] = (float)(round((qt_rand01(&rng) * 2 - 1) * 1000) / 1000);
        if (a->q && a->q->base64) {
            cJSON_AddItemToObject(e, "embedding", base64_vector(vec, dims));
        } else {
            cJSON *v = cJSON_AddArrayToObject(e, "embedding");
            for (unsigned k = 0; v && k < dims; k++)
                cJSON_AddItemToArray(v, cJSON_CreateNumber(round((double)vec[k] * 1000) / 1000));
        }
        cJSON_AddItemToArray(data, e);
    }
    cJSON_AddStringToObject(o, "model", a->model);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)a->prompt_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)a->prompt_tokens);
    return print_and_free(o);
}
