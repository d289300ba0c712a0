/* mock_agent.c: what the simulated provider reads of agents' requests:
 * tools, tool_choice, n, tool calls and tool results in the history, and
 * the cache counts it reports.
 *
 * DESIGN. The mock answers like a model that always uses its tools: when a
 * request offers tools (and tool_choice is not none), it calls the named tool
 * or else the first one, with arguments made from the tool's JSON schema
 * (each property gets a value of its type: "mock-<name>", 42, true, [], {}),
 * so a client can check that what it declared reached the upstream intact.
 * When the last message is a tool result, it answers with text quoting the
 * result, so an agent loop ends and a test can see the result crossed. Like
 * the real APIs it refuses a tool result that answers no earlier call (the
 * mistake a broken translation makes). Cached tokens come from the model's
 * ratios and from a small prompt cache per model: every message prefix of a
 * request (tools and system first) is hashed, and a later request that
 * repeats a prefix of at least 1024 tokens reports it as cached (in steps of
 * 128), the way an agent's growing history is billed. Everything is read
 * into fixed buffers of mock_req, so nothing here allocates what the caller
 * must free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mock_int.h"
#include "quotatop/common.h"

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Arguments for a tool from its parameter schema, into buf. */
static void make_args(const cJSON *schema, char *buf, size_t len)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    int n = 0;
    for (const cJSON *p = cJSON_IsObject(props) ? props->child : NULL; o && p && n < 8; p = p->next, n++) {
        const char *type = str_of(p, "type");
        char v[80];
        if (type && (!strcmp(type, "integer") || !strcmp(type, "number"))) {
            cJSON_AddNumberToObject(o, p->string, 42);
        } else if (type && !strcmp(type, "boolean")) {
            cJSON_AddTrueToObject(o, p->string);
        } else if (type && !strcmp(type, "array")) {
            cJSON_AddArrayToObject(o, p->string);
        } else if (type && !strcmp(type, "object")) {
            cJSON_AddObjectToObject(o, p->string);
        } else {
            snprintf(v, sizeof v, "mock-%.60s", p->string);
            cJSON_AddStringToObject(o, p->string, v);
        }
    }
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    snprintf(buf, len, "%s", s && strlen(s) < len ? s : "{}");
    free(s);
}

/* Reads tools and tool_choice: sets call_tool, tool_name, tool_args. */
static void read_tools(const cJSON *root, bool anthropic, mock_req *r)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    if (!cJSON_IsArray(tools) || !tools->child)
        return;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "tool_choice");
    const char *want = NULL;
    if (anthropic) {
        const char *type = str_of(tc, "type");
        if (type && !strcmp(type, "none"))
            return;
        if (type && !strcmp(type, "tool"))
            want = str_of(tc, "name");
    } else {
        if (cJSON_IsString(tc) && !strcmp(tc->valuestring, "none"))
            return;
        if (cJSON_IsObject(tc))
            want = str_of(cJSON_GetObjectItemCaseSensitive(tc, "function"), "name");
    }
    const cJSON *pick = NULL;
    for (const cJSON *t = tools->child; t; t = t->next) {
        const cJSON *def = anthropic ? t : cJSON_GetObjectItemCaseSensitive(t, "function");
        const char *name = str_of(def, "name");
        if (name == NULL) {
            if (!r->error)
                r->error = anthropic ? "tools: each tool needs a name" : "Missing required parameter: 'tools[0].function.name'.";
            return;
        }
        if (pick == NULL || (want && !strcmp(name, want)))
            pick = t;
        if (want && !strcmp(name, want))
            break;
    }
    const cJSON *def = anthropic ? pick : cJSON_GetObjectItemCaseSensitive(pick, "function");
    const char *name = str_of(def, "name");
    if (want && strcmp(name, want) != 0) {
        if (!r->error)
            r->error = anthropic ? "tool_choice: the named tool is not among tools"
                                 : "Invalid value for 'tool_choice': the function is not in 'tools'.";
        return;
    }
    r->call_tool = true;
    snprintf(r->tool_name, sizeof r->tool_name, "%s", name);
    make_args(cJSON_GetObjectItemCaseSensitive(def, anthropic ? "input_schema" : "parameters"), r->tool_args,
              sizeof r->tool_args);
}

#define MAX_IDS 64

typedef struct {
    char ids[MAX_IDS][64];
    int n;
} id_set;

static void ids_add(id_set *s, const char *id)
{
    if (id && s->n < MAX_IDS)
        snprintf(s->ids[s->n++], sizeof s->ids[0], "%s", id);
}

static bool ids_has(const id_set *s, const char *id)
{
    for (int i = 0; id && i < s->n; i++)
        if (!strcmp(s->ids[i], id))
            return true;
    return s->n >= MAX_IDS;   /* too many to track: do not refuse */
}

/* The text of a tool result's content (string, or the first text part). */
static const char *result_text(const cJSON *c)
{
    if (cJSON_IsString(c))
        return c->valuestring;
    for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; p; p = p->next)
        if (str_of(p, "text"))
            return str_of(p, "text");
    return "";
}

/* Walks the history: tool calls seen, tool results answering them. Returns
 * the bytes of tool-call arguments and results (they count as prompt). */
static uint64_t read_history(const cJSON *msgs, bool anthropic, mock_req *r)
{
    id_set seen = {0};
    uint64_t bytes = 0;
    const char *last_result = NULL;
    for (const cJSON *m = msgs->child; m; m = m->next) {
        const char *role = str_of(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        last_result = NULL;
        if (!anthropic) {
            const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
            for (const cJSON *tc = cJSON_IsArray(calls) ? calls->child : NULL; tc; tc = tc->next) {
                ids_add(&seen, str_of(tc, "id"));
                const char *args = str_of(cJSON_GetObjectItemCaseSensitive(tc, "function"), "arguments");
                bytes += args ? strlen(args) : 0;
            }
            if (role && !strcmp(role, "tool")) {
                if (!ids_has(&seen, str_of(m, "tool_call_id")) && !r->error)
                    r->error = "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                               "message with 'tool_calls'.";
                last_result = result_text(content);
            }
            continue;
        }
        for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
            const char *type = str_of(b, "type");
            if (type && !strcmp(type, "tool_use")) {
                ids_add(&seen, str_of(b, "id"));
                char *in = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "input"));
                bytes += in ? strlen(in) : 0;
                free(in);
            } else if (type && !strcmp(type, "tool_result")) {
                if (!ids_has(&seen, str_of(b, "tool_use_id")) && !r->error)
                    r->error = "messages: unexpected `tool_use_id` found in `tool_result` blocks: each "
                               "`tool_result` block must have a corresponding `tool_use` block in the previous message.";
                last_result = result_text(cJSON_GetObjectItemCaseSensitive(b, "content"));
                bytes += strlen(last_result);
            }
        }
    }
    if (last_result) {
        r->after_tool = true;
        snprintf(r->tool_result, sizeof r->tool_result, "%s", last_result);
    }
    return bytes;
}

/* Bytes of the text of a message: string content, text parts, tool-call
 * arguments, tool results (as the prompt count reads them). */
static uint64_t message_bytes(const cJSON *m)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    uint64_t n = 0;
    if (cJSON_IsString(c))
        n += strlen(c->valuestring);
    for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; p; p = p->next) {
        const char *t = str_of(p, "text");
        n += t ? strlen(t) : 0;
        const cJSON *inner = cJSON_GetObjectItemCaseSensitive(p, "content");
        if (cJSON_IsString(inner))
            n += strlen(inner->valuestring);
    }
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    for (const cJSON *tc = cJSON_IsArray(calls) ? calls->child : NULL; tc; tc = tc->next) {
        const char *a = str_of(cJSON_GetObjectItemCaseSensitive(tc, "function"), "arguments");
        n += a ? strlen(a) : 0;
    }
    return n;
}

static bool has_cache_control(const cJSON *v, int depth)
{
    for (const cJSON *c = v && depth < 16 ? v->child : NULL; c; c = c->next)
        if ((c->string && !strcmp(c->string, "cache_control")) || has_cache_control(c, depth + 1))
            return true;
    return false;
}

/* The hash and token count of every message prefix: what a prompt cache
 * keys on (tools and system first, as providers order the prompt). */
static void read_prefixes(const cJSON *root, mock_req *r)
{
    uint64_t h = QT_HASH_SEED, bytes = 0;
    const char *const heads[] = {"tools", "system"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, heads[i]);
        char *t = v ? cJSON_PrintUnformatted(v) : NULL;
        if (t) {
            h = qt_hash_str(h, t);
            bytes += cJSON_IsString(v) ? strlen(v->valuestring) : strlen(t);
        }
        free(t);
    }
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    for (const cJSON *m = cJSON_IsArray(msgs) ? msgs->child : NULL; m && r->n_prefix < MOCK_MAX_PREFIXES;
         m = m->next) {
        char *t = cJSON_PrintUnformatted(m);
        h = qt_hash_str(h, t ? t : "");
        free(t);
        bytes += message_bytes(m);
        r->prefix_hash[r->n_prefix] = h ? h : 1;
        r->prefix_tokens[r->n_prefix++] = bytes / 4;
    }
    r->cache_control = has_cache_control(root, 0);
}

uint64_t mock_parse_agent(const cJSON *root, bool anthropic, mock_req *r)
{
    r->anthropic = anthropic;
    read_prefixes(root, r);
    r->n = 1;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "n");
    if (!anthropic && cJSON_IsNumber(n)) {
        if (n->valuedouble < 1 || n->valuedouble > 16 || n->valuedouble != (double)(int)n->valuedouble) {
            if (!r->error)
                r->error = "Invalid 'n': the mock accepts 1 to 16.";
        } else {
            r->n = (unsigned)n->valuedouble;
        }
    }
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    uint64_t bytes = cJSON_IsArray(msgs) ? read_history(msgs, anthropic, r) : 0;
    if (!r->after_tool)
        read_tools(root, anthropic, r);
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    if (cJSON_IsArray(tools) && tools->child) {
        char *t = cJSON_PrintUnformatted(tools);
        bytes += t ? strlen(t) : 0;
        free(t);
    }
    return bytes;
}

void mock_usage_extras(mock_model *md, const mock_req *q, mock_verdict *v)
{
    const qt_mock_model_opts *o = &md->o;
    if (q->call_tool) {   /* a call is short and whole: about its arguments' length */
        uint64_t want = strlen(q->tool_args) / 4 + 8;
        v->completion = want < q->max_tokens ? want : q->max_tokens;
        v->truncated = false;
    }
    double p = (double)q->prompt_tokens;
    v->cached = (uint64_t)(p * o->cache_ratio);
    v->cache_write = (uint64_t)(p * o->cache_write_ratio);
    /* The longest prefix seen before, as a provider's prompt cache would. */
    uint64_t hit = 0;
    for (unsigned i = q->n_prefix; i-- > 0 && !hit;) {
        if (q->prefix_tokens[i] < MOCK_CACHE_MIN)
            break;
        for (unsigned k = 0; k < MOCK_SEEN && !hit; k++)
            if (md->seen[k] == q->prefix_hash[i])
                hit = q->prefix_tokens[i] / MOCK_CACHE_STEP * MOCK_CACHE_STEP;
    }
    if (!q->anthropic || q->cache_control) {
        if (hit > v->cached)
            v->cached = hit;
        if (q->anthropic && q->prompt_tokens >= MOCK_CACHE_MIN && v->cache_write == 0 && v->cached < q->prompt_tokens)
            v->cache_write = q->prompt_tokens - v->cached;   /* the rest is written for next time */
    }
    for (unsigned i = 0; i < q->n_prefix; i++) {
        bool known = false;
        for (unsigned k = 0; k < MOCK_SEEN && !known; k++)
            known = md->seen[k] == q->prefix_hash[i];
        if (!known && q->prefix_tokens[i] >= MOCK_CACHE_MIN) {
            md->seen[md->seen_next] = q->prefix_hash[i];
            md->seen_next = (md->seen_next + 1) % MOCK_SEEN;
        }
    }
    if (v->cached > q->prompt_tokens)
        v->cached = q->prompt_tokens;
    if (v->cache_write > q->prompt_tokens - v->cached)
        v->cache_write = q->prompt_tokens - v->cached;
}
