/* translate_resp.c: whole answers, Anthropic message <-> OpenAI
 * chat.completion (translate.h), and the usage and stop-reason vocabularies
 * both directions share with the stream translation.
 *
 * DESIGN. An Anthropic message has one list of content blocks; an OpenAI
 * answer has one choice whose message holds the text (content) and the
 * calls (tool_calls) apart. Text blocks are joined in order, each tool_use
 * block becomes one tool call (input printed as the arguments text), and
 * thinking blocks become reasoning_content; the other way splits them back.
 * Usage is the subtle part: Anthropic's input_tokens excludes what was read
 * from or written to the prompt cache, OpenAI's prompt_tokens includes
 * everything, with the cached part in prompt_tokens_details.cached_tokens.
 */
#include "quotatop/translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_int.h"

const char *qt_tr_finish_from_stop_reason(const char *s)
{
    if (s == NULL)
        return NULL;
    if (!strcmp(s, "end_turn") || !strcmp(s, "stop_sequence") || !strcmp(s, "pause_turn"))
        return "stop";
    if (!strcmp(s, "max_tokens"))
        return "length";
    if (!strcmp(s, "tool_use"))
        return "tool_calls";
    if (!strcmp(s, "refusal"))
        return "content_filter";
    return s;
}

const char *qt_tr_stop_reason_from_finish(const char *f)
{
    if (f == NULL)
        return NULL;
    if (!strcmp(f, "stop"))
        return "end_turn";
    if (!strcmp(f, "length"))
        return "max_tokens";
    if (!strcmp(f, "tool_calls") || !strcmp(f, "function_call"))
        return "tool_use";
    if (!strcmp(f, "content_filter"))
        return "refusal";
    return f;
}

cJSON *tr_usage_to_openai(const cJSON *u)
{
    long in = 0, out = 0, cr = 0, cw = 0;
    tr_count(u, "input_tokens", &in);
    tr_count(u, "output_tokens", &out);
    tr_count(u, "cache_read_input_tokens", &cr);
    tr_count(u, "cache_creation_input_tokens", &cw);
    cJSON *o = cJSON_CreateObject(), *d = NULL;
    bool ok = o && cJSON_AddNumberToObject(o, "prompt_tokens", (double)(in + cr + cw))
              && cJSON_AddNumberToObject(o, "completion_tokens", (double)out)
              && cJSON_AddNumberToObject(o, "total_tokens", (double)(in + cr + cw + out))
              && (d = cJSON_AddObjectToObject(o, "prompt_tokens_details")) != NULL
              && cJSON_AddNumberToObject(d, "cached_tokens", (double)cr)
              && (cw == 0 || cJSON_AddNumberToObject(o, "cache_creation_input_tokens", (double)cw));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* One tool_use block -> an OpenAI tool call {id, type, function}. */
static cJSON *tool_call_of(const cJSON *blk)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(blk, "input");
    char *args = input ? cJSON_PrintUnformatted(input) : strdup("{}");
    cJSON *tc = cJSON_CreateObject(), *fn = NULL;
    bool ok = args && tc && cJSON_AddStringToObject(tc, "id", tr_str(blk, "id") ? tr_str(blk, "id") : "")
              && cJSON_AddStringToObject(tc, "type", "function")
              && (fn = cJSON_AddObjectToObject(tc, "function")) != NULL
              && cJSON_AddStringToObject(fn, "name", tr_str(blk, "name") ? tr_str(blk, "name") : "")
              && cJSON_AddStringToObject(fn, "arguments", args);
    free(args);
    if (!ok) {
        cJSON_Delete(tc);
        return NULL;
    }
    return tc;
}

qt_err qt_tr_resp_anthropic_to_openai(const cJSON *msg, int64_t created_s, cJSON **out,
                                      char *err, size_t errlen)
{
    *out = NULL;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(msg, "usage");
    if (!cJSON_IsObject(msg) || !cJSON_IsArray(content)) {
        tr_errf(err, errlen, "content missing");
        return QT_ERR_INVALID;
    }
    if (!cJSON_IsObject(usage)) {
        tr_errf(err, errlen, "usage missing");
        return QT_ERR_INVALID;
    }
    tr_sbuf text = {0}, thinking = {0};
    cJSON *calls = cJSON_CreateArray();
    bool ok = calls != NULL, any_text = false;
    for (const cJSON *b = content->child; ok && b; b = b->next) {
        const char *type = tr_str(b, "type");
        if (type == NULL)
            continue;
        if (!strcmp(type, "text") && tr_str(b, "text")) {
            ok = tr_sb_adds(&text, tr_str(b, "text"));
            any_text = true;
        } else if (!strcmp(type, "tool_use")) {
            ok = tr_push(calls, tool_call_of(b));
        } else if (!strcmp(type, "thinking") && tr_str(b, "thinking")) {
            ok = tr_sb_adds(&thinking, tr_str(b, "thinking"));
        }
    }
    const char *id = tr_str(msg, "id"), *model = tr_str(msg, "model");
    const char *fr = qt_tr_finish_from_stop_reason(tr_str(msg, "stop_reason"));
    cJSON *o = ok ? cJSON_CreateObject() : NULL, *choices = NULL, *ch = NULL, *m = NULL;
    ok = o && cJSON_AddStringToObject(o, "id", id ? id : "")
         && cJSON_AddStringToObject(o, "object", "chat.completion")
         && cJSON_AddNumberToObject(o, "created", (double)created_s)
         && cJSON_AddStringToObject(o, "model", model ? model : "")
         && (choices = cJSON_AddArrayToObject(o, "choices")) != NULL
         && tr_push(choices, ch = cJSON_CreateObject())
         && cJSON_AddNumberToObject(ch, "index", 0)
         && (m = cJSON_AddObjectToObject(ch, "message")) != NULL
         && cJSON_AddStringToObject(m, "role", "assistant")
         && (any_text || cJSON_GetArraySize(calls) == 0
                 ? cJSON_AddStringToObject(m, "content", text.s ? text.s : "") != NULL
                 : cJSON_AddNullToObject(m, "content") != NULL)
         && (thinking.len == 0 || cJSON_AddStringToObject(m, "reasoning_content", thinking.s));
    if (ok && cJSON_GetArraySize(calls) > 0) {
        ok = cJSON_AddItemToObject(m, "tool_calls", calls);
        if (ok)
            calls = NULL;
    }
    ok = ok && cJSON_AddNullToObject(ch, "logprobs")
         && (fr ? cJSON_AddStringToObject(ch, "finish_reason", fr) != NULL
                : cJSON_AddNullToObject(ch, "finish_reason") != NULL);
    cJSON *u = ok ? tr_usage_to_openai(usage) : NULL;
    ok = ok && u && cJSON_AddItemToObject(o, "usage", u);
    if (!ok && u && !cJSON_GetObjectItemCaseSensitive(o, "usage"))
        cJSON_Delete(u);
    cJSON_Delete(calls);
    free(text.s);
    free(thinking.s);
    if (!ok) {
        cJSON_Delete(o);
        tr_errf(err, errlen, "out of memory translating the answer");
        return QT_ERR_NOMEM;
    }
    *out = o;
    return QT_OK;
}

/* OpenAI tool calls -> tool_use blocks appended to blocks. */
static qt_err tool_use_of(const cJSON *calls, cJSON *blocks, char *err, size_t errlen)
{
    int k = 0;
    for (const cJSON *tc = cJSON_IsArray(calls) ? calls->child : NULL; tc; tc = tc->next, k++) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const char *args = tr_str(fn, "arguments");
        cJSON *input = args && args[0] ? cJSON_Parse(args) : cJSON_CreateObject();
        if (!cJSON_IsObject(input)) {
            cJSON_Delete(input);
            tr_errf(err, errlen, "tool_calls[%d].function.arguments is not a JSON object", k);
            return QT_ERR_INVALID;
        }
        cJSON *b = cJSON_CreateObject();
        bool ok = b && tr_push(blocks, b) && cJSON_AddStringToObject(b, "type", "tool_use")
                  && cJSON_AddStringToObject(b, "id", tr_str(tc, "id") ? tr_str(tc, "id") : "")
                  && cJSON_AddStringToObject(b, "name", tr_str(fn, "name") ? tr_str(fn, "name") : "")
                  && cJSON_AddItemToObject(b, "input", input);
        if (!ok) {
            if (!b || !cJSON_GetObjectItemCaseSensitive(b, "input"))
                cJSON_Delete(input);
            return QT_ERR_NOMEM;
        }
    }
    return QT_OK;
}

/* OpenAI usage -> Anthropic usage (input_tokens without the cached part). */
static cJSON *usage_to_anthropic(const cJSON *u)
{
    long pt = 0, ct = 0, cached = 0, cw = 0;
    tr_count(u, "prompt_tokens", &pt);
    tr_count(u, "completion_tokens", &ct);
    tr_count(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details"), "cached_tokens", &cached);
    tr_count(u, "cache_creation_input_tokens", &cw);
    long in = pt - cached - cw;
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddNumberToObject(o, "input_tokens", (double)(in > 0 ? in : 0))
              && cJSON_AddNumberToObject(o, "cache_creation_input_tokens", (double)cw)
              && cJSON_AddNumberToObject(o, "cache_read_input_tokens", (double)cached)
              && cJSON_AddNumberToObject(o, "output_tokens", (double)ct);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

qt_err qt_tr_resp_openai_to_anthropic(const cJSON *completion, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(completion, "choices");
    const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(c0, "message");
    if (!cJSON_IsObject(m)) {
        tr_errf(err, errlen, "choices[0].message missing");
        return QT_ERR_INVALID;
    }
    const char *id = tr_str(completion, "id"), *model = tr_str(completion, "model");
    const char *text = tr_str(m, "content"), *refusal = tr_str(m, "refusal");
    const char *reasoning = tr_str(m, "reasoning_content");
    const char *fr = tr_str(c0, "finish_reason");
    cJSON *o = cJSON_CreateObject(), *blocks = NULL;
    bool ok = o && cJSON_AddStringToObject(o, "id", id ? id : "")
              && cJSON_AddStringToObject(o, "type", "message")
              && cJSON_AddStringToObject(o, "role", "assistant")
              && cJSON_AddStringToObject(o, "model", model ? model : "")
              && (blocks = cJSON_AddArrayToObject(o, "content")) != NULL;
    if (ok && reasoning && reasoning[0]) {
        cJSON *b = cJSON_CreateObject();
        ok = tr_push(blocks, b) && cJSON_AddStringToObject(b, "type", "thinking")
             && cJSON_AddStringToObject(b, "thinking", reasoning) && cJSON_AddStringToObject(b, "signature", "");
    }
    const char *t = text && text[0] ? text : refusal;
    if (ok && t && t[0]) {
        cJSON *b = cJSON_CreateObject();
        ok = tr_push(blocks, b) && cJSON_AddStringToObject(b, "type", "text") && cJSON_AddStringToObject(b, "text", t);
    }
    qt_err rc = ok ? tool_use_of(cJSON_GetObjectItemCaseSensitive(m, "tool_calls"), blocks, err, errlen)
                   : QT_ERR_NOMEM;
    const char *sr = qt_tr_stop_reason_from_finish(fr);
    cJSON *u = rc == QT_OK ? usage_to_anthropic(cJSON_GetObjectItemCaseSensitive(completion, "usage")) : NULL;
    if (rc == QT_OK) {
        ok = (sr ? cJSON_AddStringToObject(o, "stop_reason", sr) != NULL
                 : cJSON_AddNullToObject(o, "stop_reason") != NULL)
             && cJSON_AddNullToObject(o, "stop_sequence") && u && cJSON_AddItemToObject(o, "usage", u);
        if (!ok) {
            if (u && !cJSON_GetObjectItemCaseSensitive(o, "usage"))
                cJSON_Delete(u);
            rc = QT_ERR_NOMEM;
        }
    }
    if (rc != QT_OK) {
        if (rc == QT_ERR_NOMEM)
            tr_errf(err, errlen, "out of memory translating the answer");
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return QT_OK;
}
