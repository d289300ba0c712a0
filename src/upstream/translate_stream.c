/* translate_stream.c: streamed answers, Anthropic events <-> OpenAI
 * chat.completion.chunk objects (translate.h).
 *
 * DESIGN. Both directions are small state machines fed one parsed event at a
 * time. Anthropic numbers its content blocks (text, tool_use, thinking) in
 * one sequence; OpenAI streams text as delta.content and numbers tool calls
 * in their own sequence (delta.tool_calls[].index). So Anthropic -> OpenAI
 * remembers, per block index, which tool-call index it became; a
 * content_block_start of a tool_use opens the call (id, name, arguments
 * ""), each input_json_delta appends to its arguments. OpenAI -> Anthropic
 * keeps one block open at a time: text opens a text block, a tool call with
 * an id closes the open block and opens a tool_use block, a finish_reason
 * closes it; message_delta (stop_reason, usage) and message_stop go out
 * once the usage chunk has come (OpenAI sends it after the finish) or at the
 * end of the input. Only choice 0 crosses (the other direction refuses
 * n > 1 before sending).
 */
#include "quotatop/translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_int.h"

#define MAX_BLOCKS 1024   /* content blocks / tool calls tracked per answer */

struct qt_tr_stream {
    qt_tr_dir dir;
    int64_t created_s;
    char id[128], model[128];
    bool started, done;
    cJSON *error;
    /* Anthropic -> OpenAI */
    short tool_of_block[MAX_BLOCKS];  /* block index -> tool call index, -1 none */
    int n_tools;
    long in, cache_read, cache_write, out;   /* -1 unknown */
    /* OpenAI -> Anthropic */
    int open_block;                   /* index of the open block, -1 none */
    char open_type[16];               /* "text", "thinking", "tool_use" */
    int next_block;
    short block_of_tool[MAX_BLOCKS];  /* OpenAI tool index -> block index, -1 none */
    char stop_reason[32];
    bool finished, have_usage, delta_sent;
    long u_prompt, u_completion, u_cached;
};

qt_tr_stream *qt_tr_stream_new(qt_tr_dir dir, int64_t created_s)
{
    qt_tr_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->dir = dir;
    s->created_s = created_s;
    s->in = s->cache_read = s->cache_write = s->out = -1;
    s->open_block = -1;
    for (int i = 0; i < MAX_BLOCKS; i++)
        s->tool_of_block[i] = s->block_of_tool[i] = -1;
    return s;
}

void qt_tr_stream_free(qt_tr_stream *s)
{
    if (s == NULL)
        return;
    cJSON_Delete(s->error);
    free(s);
}

bool qt_tr_stream_done(const qt_tr_stream *s) { return s->done; }

const cJSON *qt_tr_stream_error(const qt_tr_stream *s) { return s->error; }

/* Hands obj to emit and deletes it. */
static qt_err emit_obj(const char *event, cJSON *obj, qt_tr_emit emit, void *ud)
{
    if (obj == NULL)
        return QT_ERR_NOMEM;
    int stop = emit ? emit(ud, event, obj) : 0;
    cJSON_Delete(obj);
    return stop ? QT_ERR_CLOSED : QT_OK;
}

static qt_err take_error(qt_tr_stream *s, const cJSON *data)
{
    cJSON_Delete(s->error);
    s->error = cJSON_Duplicate(data, 1);
    return s->error ? QT_ERR_IO : QT_ERR_NOMEM;
}

/* ---- Anthropic -> OpenAI -------------------------------------------------- */

/* {id, object, created, model, choices: [{index 0, delta, finish_reason}]};
 * delta is taken over; NULL delta gives choices []. */
static cJSON *chunk(const qt_tr_stream *s, cJSON *delta, const char *finish)
{
    cJSON *c = cJSON_CreateObject(), *choices = NULL, *ch = NULL;
    bool ok = c && cJSON_AddStringToObject(c, "id", s->id[0] ? s->id : "chatcmpl-quotatop")
              && cJSON_AddStringToObject(c, "object", "chat.completion.chunk")
              && cJSON_AddNumberToObject(c, "created", (double)s->created_s)
              && cJSON_AddStringToObject(c, "model", s->model)
              && (choices = cJSON_AddArrayToObject(c, "choices")) != NULL;
    if (ok && delta) {
        ok = tr_push(choices, ch = cJSON_CreateObject()) && cJSON_AddNumberToObject(ch, "index", 0)
             && cJSON_AddItemToObject(ch, "delta", delta);
        if (ok)
            delta = NULL;
        ok = ok && (finish ? cJSON_AddStringToObject(ch, "finish_reason", finish) != NULL
                           : cJSON_AddNullToObject(ch, "finish_reason") != NULL);
    }
    cJSON_Delete(delta);
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

static cJSON *delta_str(const char *key, const char *val)
{
    cJSON *d = cJSON_CreateObject();
    if (d && cJSON_AddStringToObject(d, key, val))
        return d;
    cJSON_Delete(d);
    return NULL;
}

/* delta {tool_calls: [{index, id?, type?, function: {name?, arguments}}]} */
static cJSON *delta_tool(int index, const char *id, const char *name, const char *args)
{
    cJSON *d = cJSON_CreateObject(), *arr = NULL, *tc = NULL, *fn = NULL;
    bool ok = d && (arr = cJSON_AddArrayToObject(d, "tool_calls")) != NULL
              && tr_push(arr, tc = cJSON_CreateObject()) && cJSON_AddNumberToObject(tc, "index", index)
              && (!id || (cJSON_AddStringToObject(tc, "id", id) && cJSON_AddStringToObject(tc, "type", "function")))
              && (fn = cJSON_AddObjectToObject(tc, "function")) != NULL
              && (!name || cJSON_AddStringToObject(fn, "name", name))
              && cJSON_AddStringToObject(fn, "arguments", args);
    if (!ok) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

static void read_usage(qt_tr_stream *s, const cJSON *u)
{
    tr_count(u, "input_tokens", &s->in);
    tr_count(u, "output_tokens", &s->out);
    tr_count(u, "cache_read_input_tokens", &s->cache_read);
    tr_count(u, "cache_creation_input_tokens", &s->cache_write);
}

static qt_err a2o_block(qt_tr_stream *s, const cJSON *data, bool start, qt_tr_emit emit, void *ud)
{
    long bi = -1;
    tr_count(data, "index", &bi);
    const cJSON *blk = cJSON_GetObjectItemCaseSensitive(data, start ? "content_block" : "delta");
    const char *type = tr_str(blk, "type");
    if (type == NULL)
        return QT_OK;
    if (start && !strcmp(type, "tool_use")) {
        if (bi < 0 || bi >= MAX_BLOCKS || s->n_tools >= MAX_BLOCKS)
            return QT_OK;
        int ti = s->tool_of_block[bi] = (short)s->n_tools++;
        return emit_obj("", chunk(s, delta_tool(ti, tr_str(blk, "id") ? tr_str(blk, "id") : "",
                                                 tr_str(blk, "name") ? tr_str(blk, "name") : "", ""),
                                  NULL), emit, ud);
    }
    if (!strcmp(type, "input_json_delta")) {
        const char *pj = tr_str(blk, "partial_json");
        if (bi < 0 || bi >= MAX_BLOCKS || s->tool_of_block[bi] < 0 || pj == NULL || !pj[0])
            return QT_OK;
        return emit_obj("", chunk(s, delta_tool(s->tool_of_block[bi], NULL, NULL, pj), NULL), emit, ud);
    }
    const char *text = NULL, *key = "content";
    if (!strcmp(type, "text") || !strcmp(type, "text_delta")) {
        text = tr_str(blk, "text");
    } else if (!strcmp(type, "thinking") || !strcmp(type, "thinking_delta")) {
        text = tr_str(blk, "thinking");
        key = "reasoning_content";
    }
    if (text == NULL || !text[0])
        return QT_OK;
    return emit_obj("", chunk(s, delta_str(key, text), NULL), emit, ud);
}

static qt_err a2o_event(qt_tr_stream *s, const char *type, const cJSON *data, qt_tr_emit emit, void *ud)
{
    if (!strcmp(type, "message_start")) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(data, "message");
        qt_prov_copy(s->id, sizeof s->id, tr_str(msg, "id"));
        qt_prov_copy(s->model, sizeof s->model, tr_str(msg, "model"));
        read_usage(s, cJSON_GetObjectItemCaseSensitive(msg, "usage"));
        s->out = -1;   /* message_start's output_tokens is a placeholder */
        s->started = true;
        cJSON *d = delta_str("role", "assistant");
        if (d && !cJSON_AddStringToObject(d, "content", "")) {
            cJSON_Delete(d);
            d = NULL;
        }
        return emit_obj("", chunk(s, d, NULL), emit, ud);
    }
    if (!strcmp(type, "content_block_start") || !strcmp(type, "content_block_delta"))
        return a2o_block(s, data, type[14] == 's', emit, ud);
    if (!strcmp(type, "message_delta")) {
        read_usage(s, cJSON_GetObjectItemCaseSensitive(data, "usage"));
        const char *sr = tr_str(cJSON_GetObjectItemCaseSensitive(data, "delta"), "stop_reason");
        if (sr == NULL)
            return QT_OK;
        return emit_obj("", chunk(s, cJSON_CreateObject(), qt_tr_finish_from_stop_reason(sr)), emit, ud);
    }
    if (!strcmp(type, "message_stop")) {
        s->done = true;
        cJSON *c = chunk(s, NULL, NULL);
        if (c && s->in >= 0 && s->out >= 0) {
            cJSON *u = cJSON_CreateObject();
            if (u) {
                cJSON_AddNumberToObject(u, "input_tokens", (double)s->in);
                cJSON_AddNumberToObject(u, "output_tokens", (double)s->out);
                cJSON_AddNumberToObject(u, "cache_read_input_tokens", (double)(s->cache_read > 0 ? s->cache_read : 0));
                cJSON_AddNumberToObject(u, "cache_creation_input_tokens",
                                        (double)(s->cache_write > 0 ? s->cache_write : 0));
            }
            cJSON *ou = u ? tr_usage_to_openai(u) : NULL;
            cJSON_Delete(u);
            if (ou == NULL || !cJSON_AddItemToObject(c, "usage", ou)) {
                cJSON_Delete(ou);
                cJSON_Delete(c);
                c = NULL;
            }
        }
        return emit_obj("", c, emit, ud);
    }
    if (!strcmp(type, "error"))
        return take_error(s, data);
    return QT_OK;   /* ping, content_block_stop, unknown events */
}

/* ---- OpenAI -> Anthropic -------------------------------------------------- */

static qt_err ev(const char *type, cJSON *obj, qt_tr_emit emit, void *ud)
{
    if (obj && !cJSON_GetObjectItemCaseSensitive(obj, "type")) {
        cJSON *t = cJSON_CreateString(type);
        if (t == NULL || !cJSON_AddItemToObject(obj, "type", t)) {
            cJSON_Delete(t);
            cJSON_Delete(obj);
            return QT_ERR_NOMEM;
        }
        /* "type" first, as Anthropic writes it */
        cJSON_DetachItemViaPointer(obj, t);
        cJSON_InsertItemInArray(obj, 0, t);   /* keeps its name */
    }
    return emit_obj(type, obj, emit, ud);
}

static qt_err close_block(qt_tr_stream *s, qt_tr_emit emit, void *ud)
{
    if (s->open_block < 0)
        return QT_OK;
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddNumberToObject(o, "index", s->open_block)) {
        cJSON_Delete(o);
        o = NULL;
    }
    s->open_block = -1;
    return ev("content_block_stop", o, emit, ud);
}

/* Opens a block of type (closing another one first); blk is its
 * content_block (taken over). */
static qt_err open_block(qt_tr_stream *s, const char *type, cJSON *blk, qt_tr_emit emit, void *ud)
{
    qt_err rc = close_block(s, emit, ud);
    if (rc != QT_OK || blk == NULL) {
        cJSON_Delete(blk);
        return rc != QT_OK ? rc : QT_ERR_NOMEM;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddNumberToObject(o, "index", s->next_block) || !cJSON_AddItemToObject(o, "content_block", blk)) {
        if (!o || !cJSON_GetObjectItemCaseSensitive(o, "content_block"))
            cJSON_Delete(blk);
        cJSON_Delete(o);
        return QT_ERR_NOMEM;
    }
    s->open_block = s->next_block++;
    qt_prov_copy(s->open_type, sizeof s->open_type, type);
    return ev("content_block_start", o, emit, ud);
}

static qt_err block_delta(int index, const char *dtype, const char *key, const char *val, qt_tr_emit emit,
                          void *ud)
{
    cJSON *o = cJSON_CreateObject(), *d = NULL;
    if (!o || !cJSON_AddNumberToObject(o, "index", index) || !(d = cJSON_AddObjectToObject(o, "delta"))
        || !cJSON_AddStringToObject(d, "type", dtype) || !cJSON_AddStringToObject(d, key, val)) {
        cJSON_Delete(o);
        return QT_ERR_NOMEM;
    }
    return ev("content_block_delta", o, emit, ud);
}

/* A text-like delta (text or thinking) into a block of that type. */
static qt_err o2a_text(qt_tr_stream *s, const char *btype, const char *text, qt_tr_emit emit, void *ud)
{
    bool thinking = btype[0] == 't' && btype[1] == 'h';
    if (s->open_block < 0 || strcmp(s->open_type, btype) != 0) {
        cJSON *b = cJSON_CreateObject();
        if (b && (!cJSON_AddStringToObject(b, "type", btype)
                  || !cJSON_AddStringToObject(b, thinking ? "thinking" : "text", ""))) {
            cJSON_Delete(b);
            b = NULL;
        }
        qt_err rc = open_block(s, btype, b, emit, ud);
        if (rc != QT_OK)
            return rc;
    }
    return block_delta(s->open_block, thinking ? "thinking_delta" : "text_delta", thinking ? "thinking" : "text",
                       text, emit, ud);
}

static qt_err o2a_tools(qt_tr_stream *s, const cJSON *calls, qt_tr_emit emit, void *ud)
{
    for (const cJSON *tc = cJSON_IsArray(calls) ? calls->child : NULL; tc; tc = tc->next) {
        long ti = 0;
        tr_count(tc, "index", &ti);
        if (ti >= MAX_BLOCKS)
            continue;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const char *id = tr_str(tc, "id"), *args = tr_str(fn, "arguments");
        qt_err rc = QT_OK;
        if (id || s->block_of_tool[ti] < 0) {
            cJSON *b = cJSON_CreateObject();
            if (b && (!cJSON_AddStringToObject(b, "type", "tool_use") || !cJSON_AddStringToObject(b, "id", id ? id : "")
                      || !cJSON_AddStringToObject(b, "name", tr_str(fn, "name") ? tr_str(fn, "name") : "")
                      || !cJSON_AddObjectToObject(b, "input"))) {
                cJSON_Delete(b);
                b = NULL;
            }
            rc = open_block(s, "tool_use", b, emit, ud);
            s->block_of_tool[ti] = (short)s->open_block;
        }
        if (rc == QT_OK && args && args[0])
            rc = block_delta(s->block_of_tool[ti], "input_json_delta", "partial_json", args, emit, ud);
        if (rc != QT_OK)
            return rc;
    }
    return QT_OK;
}

/* message_delta + message_stop, once. */
static qt_err o2a_finish(qt_tr_stream *s, qt_tr_emit emit, void *ud)
{
    if (s->delta_sent)
        return QT_OK;
    s->delta_sent = true;
    qt_err rc = close_block(s, emit, ud);
    cJSON *o = rc == QT_OK ? cJSON_CreateObject() : NULL, *d = NULL, *u = NULL;
    long in = s->u_prompt - s->u_cached;
    bool ok = o && (d = cJSON_AddObjectToObject(o, "delta")) != NULL
              && (s->stop_reason[0] ? cJSON_AddStringToObject(d, "stop_reason", s->stop_reason) != NULL
                                    : cJSON_AddStringToObject(d, "stop_reason", "end_turn") != NULL)
              && cJSON_AddNullToObject(d, "stop_sequence") && (u = cJSON_AddObjectToObject(o, "usage")) != NULL
              && cJSON_AddNumberToObject(u, "input_tokens", (double)(in > 0 ? in : 0))
              && cJSON_AddNumberToObject(u, "cache_read_input_tokens", (double)s->u_cached)
              && cJSON_AddNumberToObject(u, "output_tokens", (double)s->u_completion);
    if (rc != QT_OK) {
        cJSON_Delete(o);
        return rc;
    }
    if (!ok) {
        cJSON_Delete(o);
        return QT_ERR_NOMEM;
    }
    rc = ev("message_delta", o, emit, ud);
    s->done = true;
    return rc == QT_OK ? ev("message_stop", cJSON_CreateObject(), emit, ud) : rc;
}

static qt_err o2a_start(qt_tr_stream *s, const cJSON *data, qt_tr_emit emit, void *ud)
{
    s->started = true;
    qt_prov_copy(s->id, sizeof s->id, tr_str(data, "id"));
    qt_prov_copy(s->model, sizeof s->model, tr_str(data, "model"));
    cJSON *o = cJSON_CreateObject(), *m = NULL, *u = NULL;
    bool ok = o && (m = cJSON_AddObjectToObject(o, "message")) != NULL
              && cJSON_AddStringToObject(m, "id", s->id) && cJSON_AddStringToObject(m, "type", "message")
              && cJSON_AddStringToObject(m, "role", "assistant") && cJSON_AddStringToObject(m, "model", s->model)
              && cJSON_AddArrayToObject(m, "content") && cJSON_AddNullToObject(m, "stop_reason")
              && cJSON_AddNullToObject(m, "stop_sequence") && (u = cJSON_AddObjectToObject(m, "usage")) != NULL
              && cJSON_AddNumberToObject(u, "input_tokens", 0) && cJSON_AddNumberToObject(u, "output_tokens", 0);
    if (!ok) {
        cJSON_Delete(o);
        return QT_ERR_NOMEM;
    }
    return ev("message_start", o, emit, ud);
}

static qt_err o2a_chunk(qt_tr_stream *s, const cJSON *data, qt_tr_emit emit, void *ud)
{
    if (cJSON_GetObjectItemCaseSensitive(data, "error"))
        return take_error(s, data);
    qt_err rc = s->started ? QT_OK : o2a_start(s, data, emit, ud);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(data, "choices");
    const cJSON *c0 = NULL;
    for (const cJSON *c = cJSON_IsArray(choices) ? choices->child : NULL; c && !c0; c = c->next) {
        long idx = 0;
        tr_count(c, "index", &idx);
        if (idx == 0)
            c0 = c;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(c0, "delta");
    const char *reasoning = tr_str(d, "reasoning_content"), *text = tr_str(d, "content");
    if (rc == QT_OK && reasoning && reasoning[0])
        rc = o2a_text(s, "thinking", reasoning, emit, ud);
    if (rc == QT_OK && text && text[0])
        rc = o2a_text(s, "text", text, emit, ud);
    if (rc == QT_OK)
        rc = o2a_tools(s, cJSON_GetObjectItemCaseSensitive(d, "tool_calls"), emit, ud);
    const char *fr = tr_str(c0, "finish_reason");
    if (rc == QT_OK && fr) {
        qt_prov_copy(s->stop_reason, sizeof s->stop_reason, qt_tr_stop_reason_from_finish(fr));
        s->finished = true;
        rc = close_block(s, emit, ud);
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(data, "usage");
    if (rc == QT_OK && cJSON_IsObject(u)) {
        s->have_usage = true;
        tr_count(u, "prompt_tokens", &s->u_prompt);
        tr_count(u, "completion_tokens", &s->u_completion);
        tr_count(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details"), "cached_tokens", &s->u_cached);
    }
    if (rc == QT_OK && s->finished && s->have_usage)
        rc = o2a_finish(s, emit, ud);
    return rc;
}

/* ---- entry points ---------------------------------------------------------- */

qt_err qt_tr_stream_event(qt_tr_stream *s, const char *event, const cJSON *data, qt_tr_emit emit, void *ud)
{
    if (!cJSON_IsObject(data))
        return QT_OK;
    if (s->dir == QT_TR_OPENAI_TO_ANTHROPIC)
        return s->delta_sent ? QT_OK : o2a_chunk(s, data, emit, ud);
    const char *type = tr_str(data, "type");
    if (type == NULL)
        type = event ? event : "";
    return a2o_event(s, type, data, emit, ud);
}

qt_err qt_tr_stream_end(qt_tr_stream *s, qt_tr_emit emit, void *ud)
{
    if (s->dir != QT_TR_OPENAI_TO_ANTHROPIC || !s->started || s->error)
        return QT_OK;
    return o2a_finish(s, emit, ud);
}
