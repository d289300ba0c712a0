/* translate_responses.c: the OpenAI Responses API <-> chat completions
 * (translate.h), so a Responses request can reach an Anthropic-kind model:
 * Responses -> chat here, then chat -> Anthropic (translate_req.c); the
 * answer comes back Anthropic -> chat (translate_resp.c), then chat ->
 * Responses here.
 *
 * DESIGN. A Responses request is a list of input items instead of
 * messages: message items (role and content, parts input_text /
 * output_text / input_image), function_call items (an assistant's tool
 * call, call_id kept as the tool call id) and function_call_output items
 * (a tool result naming the call_id). They unfold into chat messages in
 * order: instructions first as a system message, consecutive function
 * calls merged into the assistant message before them (Anthropic wants
 * every tool_use of one turn in one assistant message), outputs as role
 * tool messages. Function tools lose one level of nesting ({type, name,
 * parameters} -> {type, function: {name, parameters}}), tool_choice
 * {type: function, name} becomes {type: function, function: {name}},
 * max_output_tokens becomes max_completion_tokens. Reasoning items are
 * dropped (they are the OpenAI model's own, encrypted, and mean nothing
 * to another model).
 *
 * What cannot cross is refused naming the field, before anything is sent
 * (qt_tr_responses_carries_to_anthropic, cheap, for the router):
 * previous_response_id and conversation (the state lives at the OpenAI
 * upstream), item_reference items, built-in tools (web search, file
 * search, computer use, ...), input_file and input_audio parts, images
 * given as a file_id, text.format json_schema, background, prompt
 * templates, top_logprobs. store, include, truncation, reasoning,
 * service_tier, metadata and the cache keys are dropped.
 *
 * The answer: one message item with the text (when there is text or no
 * call) and one function_call item per tool call, status "incomplete"
 * (incomplete_details.reason max_output_tokens / content_filter) for
 * finish_reason length / content_filter, usage renamed (input_tokens with
 * input_tokens_details.cached_tokens, output_tokens with
 * output_tokens_details.reasoning_tokens). Ids are derived, never
 * invented from a clock: "resp_" + the upstream id, "msg_" + it for the
 * message item, "fc_" + the call id for a function call item.
 */
#include "quotatop/translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_int.h"

#define NOT_CARRIED " cannot be carried to an anthropic-kind model"

/* ---- what cannot cross ---------------------------------------------------- */

static bool is_message_item(const cJSON *it)
{
    const char *type = tr_str(it, "type");
    return type ? !strcmp(type, "message") : tr_str(it, "role") != NULL;
}

/* The parts of one message item's content. */
static bool parts_carry(const cJSON *content, int i, char *why, size_t n)
{
    int k = 0;
    for (const cJSON *p = cJSON_IsArray(content) ? content->child : NULL; p; p = p->next, k++) {
        const char *type = tr_str(p, "type");
        if (type && (!strcmp(type, "input_text") || !strcmp(type, "output_text") || !strcmp(type, "text")
                     || !strcmp(type, "refusal")))
            continue;
        if (type && !strcmp(type, "input_image")) {
            if (tr_str(p, "image_url"))
                continue;
            tr_errf(why, n, "input[%d].content[%d]: an input_image given by file_id" NOT_CARRIED
                    " (send image_url)", i, k);
            return false;
        }
        tr_errf(why, n, "input[%d].content[%d]: part type \"%.30s\"" NOT_CARRIED, i, k, type ? type : "?");
        return false;
    }
    return true;
}

bool qt_tr_responses_carries_to_anthropic(const cJSON *req, char *why, size_t n)
{
    if (!cJSON_IsObject(req)) {
        tr_errf(why, n, "request is not a JSON object");
        return false;
    }
    const char *prev = tr_str(req, "previous_response_id");
    if (prev && prev[0]) {
        tr_errf(why, n, "\"previous_response_id\"" NOT_CARRIED " (the conversation state lives at the "
                "OpenAI upstream; send the whole input instead)");
        return false;
    }
    const cJSON *conv = cJSON_GetObjectItemCaseSensitive(req, "conversation");
    if (conv && !cJSON_IsNull(conv)) {
        tr_errf(why, n, "\"conversation\"" NOT_CARRIED " (its state lives at the OpenAI upstream)");
        return false;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "background"))) {
        tr_errf(why, n, "\"background\": true" NOT_CARRIED);
        return false;
    }
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(req, "prompt");
    if (prompt && !cJSON_IsNull(prompt)) {
        tr_errf(why, n, "\"prompt\" (a stored prompt template)" NOT_CARRIED);
        return false;
    }
    const cJSON *tl = cJSON_GetObjectItemCaseSensitive(req, "top_logprobs");
    if (cJSON_IsNumber(tl) && tl->valuedouble > 0) {
        tr_errf(why, n, "\"top_logprobs\"" NOT_CARRIED " (it has no log probabilities)");
        return false;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(req, "text"), "format");
    const char *ft = tr_str(fmt, "type");
    if (ft && strcmp(ft, "text") && strcmp(ft, "json_object")) {
        tr_errf(why, n, "\"text.format\" %.30s" NOT_CARRIED, ft);
        return false;
    }
    int i = 0;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    for (const cJSON *t = cJSON_IsArray(tools) ? tools->child : NULL; t; t = t->next, i++) {
        const char *type = tr_str(t, "type");
        if (!type || strcmp(type, "function")) {
            tr_errf(why, n, "tools[%d]: type \"%.30s\"" NOT_CARRIED " (only function tools cross)", i,
                    type ? type : "?");
            return false;
        }
    }
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    const char *tct = tr_str(tc, "type");
    if (cJSON_IsObject(tc) && (!tct || strcmp(tct, "function"))) {
        tr_errf(why, n, "\"tool_choice\" type \"%.30s\"" NOT_CARRIED, tct ? tct : "?");
        return false;
    }
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(req, "input");
    i = 0;
    for (const cJSON *it = cJSON_IsArray(input) ? input->child : NULL; it; it = it->next, i++) {
        const char *type = tr_str(it, "type");
        if (is_message_item(it)) {
            if (!parts_carry(cJSON_GetObjectItemCaseSensitive(it, "content"), i, why, n))
                return false;
            continue;
        }
        if (type && (!strcmp(type, "function_call") || !strcmp(type, "function_call_output")
                     || !strcmp(type, "reasoning")))
            continue;
        tr_errf(why, n, "input[%d]: item type \"%.30s\"" NOT_CARRIED "%s", i, type ? type : "?",
                type && !strcmp(type, "item_reference") ? " (it names state kept at the OpenAI upstream)" : "");
        return false;
    }
    return true;
}

/* ---- Responses request -> chat request ------------------------------------- */

/* A part list -> chat parts (user) or joined text (assistant: *text_out). */
static qt_err convert_parts(const cJSON *content, int i, bool joined, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    tr_sbuf text = {0};
    cJSON *parts = joined ? NULL : cJSON_CreateArray();
    if (!joined && !parts)
        return QT_ERR_NOMEM;
    int k = 0;
    bool ok = true;
    for (const cJSON *p = content->child; ok && p; p = p->next, k++) {
        const char *type = tr_str(p, "type");
        const char *t = type && !strcmp(type, "refusal") ? tr_str(p, "refusal") : tr_str(p, "text");
        if (type && !strcmp(type, "input_image")) {
            const char *url = tr_str(p, "image_url"), *detail = tr_str(p, "detail");
            if (joined || !url) {
                tr_errf(err, errlen, "input[%d].content[%d]: %s", i, k,
                        joined ? "an image in an assistant message" NOT_CARRIED : "input_image.image_url missing");
                cJSON_Delete(parts);
                free(text.s);
                return joined ? QT_ERR_LIMIT : QT_ERR_INVALID;
            }
            cJSON *o = cJSON_CreateObject(), *iu = NULL;
            ok = tr_push(parts, o) && cJSON_AddStringToObject(o, "type", "image_url")
                 && (iu = cJSON_AddObjectToObject(o, "image_url")) != NULL && cJSON_AddStringToObject(iu, "url", url)
                 && (!detail || cJSON_AddStringToObject(iu, "detail", detail));
            continue;
        }
        if (t == NULL) {
            tr_errf(err, errlen, "input[%d].content[%d]: no text", i, k);
            cJSON_Delete(parts);
            free(text.s);
            return QT_ERR_INVALID;
        }
        if (joined) {
            ok = tr_sb_adds(&text, t);
            continue;
        }
        cJSON *o = cJSON_CreateObject();
        ok = tr_push(parts, o) && cJSON_AddStringToObject(o, "type", "text") && cJSON_AddStringToObject(o, "text", t);
        const cJSON *cc = cJSON_GetObjectItemCaseSensitive(p, "cache_control");
        if (ok && cc)
            ok = tr_add_dup(o, "cache_control", cc);
    }
    if (ok && joined)
        ok = (parts = cJSON_CreateString(sb_str(&text))) != NULL;
    free(text.s);
    if (!ok) {
        cJSON_Delete(parts);
        return QT_ERR_NOMEM;
    }
    *out = parts;
    return QT_OK;
}

/* The last message of msgs when it is an assistant's, else NULL. */
static cJSON *last_assistant(cJSON *msgs)
{
    cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
    const char *role = tr_str(last, "role");
    return role && !strcmp(role, "assistant") ? last : NULL;
}

/* A function_call item -> a tool call on the assistant message ending msgs
 * (a new one, content null, when the last message is not an assistant's). */
static qt_err add_function_call(cJSON *msgs, const cJSON *it, int i, char *err, size_t errlen)
{
    const char *call_id = tr_str(it, "call_id"), *name = tr_str(it, "name"), *args = tr_str(it, "arguments");
    if (!call_id || !name) {
        tr_errf(err, errlen, "input[%d]: a function_call needs call_id and name", i);
        return QT_ERR_INVALID;
    }
    cJSON *m = last_assistant(msgs);
    if (m == NULL) {
        m = cJSON_CreateObject();
        if (!tr_push(msgs, m) || !cJSON_AddStringToObject(m, "role", "assistant") || !cJSON_AddNullToObject(m, "content"))
            return QT_ERR_NOMEM;
    }
    cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    if (!calls && (calls = cJSON_AddArrayToObject(m, "tool_calls")) == NULL)
        return QT_ERR_NOMEM;
    cJSON *c = cJSON_CreateObject(), *fn = NULL;
    bool ok = tr_push(calls, c) && cJSON_AddStringToObject(c, "id", call_id)
              && cJSON_AddStringToObject(c, "type", "function")
              && (fn = cJSON_AddObjectToObject(c, "function")) != NULL && cJSON_AddStringToObject(fn, "name", name)
              && cJSON_AddStringToObject(fn, "arguments", args && args[0] ? args : "{}");
    return ok ? QT_OK : QT_ERR_NOMEM;
}

/* A function_call_output item -> a role tool message. */
static qt_err add_function_output(cJSON *msgs, const cJSON *it, int i, char *err, size_t errlen)
{
    const char *call_id = tr_str(it, "call_id");
    const cJSON *output = cJSON_GetObjectItemCaseSensitive(it, "output");
    if (!call_id || (!cJSON_IsString(output) && !cJSON_IsArray(output))) {
        tr_errf(err, errlen, "input[%d]: a function_call_output needs call_id and output", i);
        return QT_ERR_INVALID;
    }
    cJSON *content = NULL;
    qt_err rc = QT_OK;
    if (cJSON_IsString(output))
        content = cJSON_CreateString(output->valuestring);
    else if ((rc = convert_parts(output, i, true, &content, err, errlen)) != QT_OK)
        return rc;
    cJSON *m = content ? cJSON_CreateObject() : NULL;
    bool ok = tr_push(msgs, m) && cJSON_AddStringToObject(m, "role", "tool")
              && cJSON_AddStringToObject(m, "tool_call_id", call_id) && cJSON_AddItemToObject(m, "content", content);
    if (!ok)
        cJSON_Delete(content);   /* m, if any, is in msgs or was deleted by tr_push */
    return ok ? QT_OK : QT_ERR_NOMEM;
}

/* A message item -> a chat message. */
static qt_err add_message(cJSON *msgs, const cJSON *it, int i, char *err, size_t errlen)
{
    const char *role = tr_str(it, "role");
    if (!role || (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system")
                  && strcmp(role, "developer"))) {
        tr_errf(err, errlen, "input[%d]: role \"%.20s\" is not user, assistant, system or developer", i,
                role ? role : "?");
        return QT_ERR_INVALID;
    }
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
    cJSON *c = NULL;
    if (cJSON_IsString(content)) {
        c = cJSON_CreateString(content->valuestring);
    } else if (cJSON_IsArray(content)) {
        /* System and assistant text goes joined: both translators take a
         * string there most simply. */
        qt_err rc = convert_parts(content, i, strcmp(role, "user") != 0, &c, err, errlen);
        if (rc != QT_OK)
            return rc;
    } else {
        tr_errf(err, errlen, "input[%d].content missing", i);
        return QT_ERR_INVALID;
    }
    cJSON *m = c ? cJSON_CreateObject() : NULL;
    bool ok = tr_push(msgs, m) && cJSON_AddStringToObject(m, "role", role)
              && cJSON_AddItemToObject(m, "content", c);
    if (!ok)
        cJSON_Delete(c);   /* m, if any, is in msgs or was deleted by tr_push */
    return ok ? QT_OK : QT_ERR_NOMEM;
}

static qt_err add_input(const cJSON *req, cJSON *msgs, char *err, size_t errlen)
{
    const char *ins = tr_str(req, "instructions");
    if (ins && ins[0]) {
        cJSON *m = cJSON_CreateObject();
        if (!tr_push(msgs, m) || !cJSON_AddStringToObject(m, "role", "system") || !cJSON_AddStringToObject(m, "content", ins))
            return QT_ERR_NOMEM;
    }
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(req, "input");
    if (cJSON_IsString(input)) {
        cJSON *m = cJSON_CreateObject();
        bool ok = tr_push(msgs, m) && cJSON_AddStringToObject(m, "role", "user")
                  && cJSON_AddStringToObject(m, "content", input->valuestring);
        return ok ? QT_OK : QT_ERR_NOMEM;
    }
    if (!cJSON_IsArray(input)) {
        tr_errf(err, errlen, "input missing (a string or a list of items)");
        return QT_ERR_INVALID;
    }
    int i = 0;
    for (const cJSON *it = input->child; it; it = it->next, i++) {
        const char *type = tr_str(it, "type");
        qt_err rc = QT_OK;
        if (!cJSON_IsObject(it)) {
            tr_errf(err, errlen, "input[%d] is not an object", i);
            rc = QT_ERR_INVALID;
        } else if (is_message_item(it)) {
            rc = add_message(msgs, it, i, err, errlen);
        } else if (!strcmp(type, "function_call")) {
            rc = add_function_call(msgs, it, i, err, errlen);
        } else if (!strcmp(type, "function_call_output")) {
            rc = add_function_output(msgs, it, i, err, errlen);
        } else if (strcmp(type, "reasoning")) {
            tr_errf(err, errlen, "input[%d]: item type \"%.30s\"" NOT_CARRIED, i, type);
            rc = QT_ERR_LIMIT;
        }
        if (rc != QT_OK)
            return rc;
    }
    return QT_OK;
}

/* tools, tool_choice, parallel_tool_calls. */
static qt_err add_tools(const cJSON *req, cJSON *chat, char *err, size_t errlen)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0) {
        cJSON *arr = cJSON_AddArrayToObject(chat, "tools");
        if (!arr)
            return QT_ERR_NOMEM;
        int i = 0;
        for (const cJSON *t = tools->child; t; t = t->next, i++) {
            const char *name = tr_str(t, "name"), *desc = tr_str(t, "description");
            const cJSON *params = cJSON_GetObjectItemCaseSensitive(t, "parameters");
            if (!name) {
                tr_errf(err, errlen, "tools[%d].name missing", i);
                return QT_ERR_INVALID;
            }
            cJSON *o = cJSON_CreateObject(), *fn = NULL;
            bool ok = tr_push(arr, o) && cJSON_AddStringToObject(o, "type", "function")
                      && (fn = cJSON_AddObjectToObject(o, "function")) != NULL
                      && cJSON_AddStringToObject(fn, "name", name)
                      && (!desc || cJSON_AddStringToObject(fn, "description", desc))
                      && (!cJSON_IsObject(params) || tr_add_dup(fn, "parameters", params));
            if (!ok)
                return QT_ERR_NOMEM;
        }
    }
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    bool ok = true;
    if (cJSON_IsString(tc)) {
        ok = cJSON_AddStringToObject(chat, "tool_choice", tc->valuestring) != NULL;
    } else if (cJSON_IsObject(tc)) {
        const char *name = tr_str(tc, "name");
        if (!name) {
            tr_errf(err, errlen, "tool_choice.name missing");
            return QT_ERR_INVALID;
        }
        cJSON *o = cJSON_AddObjectToObject(chat, "tool_choice"), *fn = NULL;
        ok = o && cJSON_AddStringToObject(o, "type", "function") && (fn = cJSON_AddObjectToObject(o, "function"))
             && cJSON_AddStringToObject(fn, "name", name);
    }
    const cJSON *ptc = cJSON_GetObjectItemCaseSensitive(req, "parallel_tool_calls");
    if (ok && cJSON_IsBool(ptc))
        ok = tr_add_dup(chat, "parallel_tool_calls", ptc);
    return ok ? QT_OK : QT_ERR_NOMEM;
}

qt_err qt_tr_req_responses_to_chat(const cJSON *req, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cJSON_IsObject(req)) {
        tr_errf(err, errlen, "request is not a JSON object");
        return QT_ERR_INVALID;
    }
    if (!qt_tr_responses_carries_to_anthropic(req, err, errlen))
        return QT_ERR_LIMIT;
    cJSON *chat = cJSON_CreateObject(), *msgs = NULL;
    const char *model = tr_str(req, "model");
    bool ok = chat && (!model || cJSON_AddStringToObject(chat, "model", model))
              && (msgs = cJSON_AddArrayToObject(chat, "messages")) != NULL;
    qt_err rc = ok ? add_input(req, msgs, err, errlen) : QT_ERR_NOMEM;
    if (rc == QT_OK)
        rc = add_tools(req, chat, err, errlen);
    /* Sampling and limits under their chat names. */
    static const char *const same[] = {"temperature", "top_p", "user"};
    for (size_t k = 0; rc == QT_OK && k < QT_ARRAY_LEN(same); k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, same[k]);
        if ((cJSON_IsNumber(v) || cJSON_IsString(v)) && !tr_add_dup(chat, same[k], v))
            rc = QT_ERR_NOMEM;
    }
    long mot;
    if (rc == QT_OK && tr_count(req, "max_output_tokens", &mot) && mot > 0
        && !cJSON_AddNumberToObject(chat, "max_completion_tokens", (double)mot))
        rc = QT_ERR_NOMEM;
    if (rc == QT_ERR_NOMEM)
        tr_errf(err, errlen, "out of memory translating the request");
    if (rc != QT_OK) {
        cJSON_Delete(chat);
        return rc;
    }
    *out = chat;
    return QT_OK;
}

/* ---- chat answer -> Responses answer --------------------------------------- */

/* "pre" + id, without a prefix id already has ("chatcmpl-", "msg_"). */
static void derived_id(char *dst, size_t n, const char *pre, const char *id)
{
    if (id == NULL || id[0] == '\0')
        id = "quotatop";
    if (!strncmp(id, pre, strlen(pre))) {
        snprintf(dst, n, "%s", id);
        return;
    }
    if (!strncmp(id, "chatcmpl-", 9))
        id += 9;
    snprintf(dst, n, "%s%.100s", pre, id);
}

cJSON *qt_tr_responses_usage(const cJSON *chat_usage)
{
    long pt = 0, ct = 0, cached = 0, reasoning = 0;
    tr_count(chat_usage, "prompt_tokens", &pt);
    tr_count(chat_usage, "completion_tokens", &ct);
    tr_count(cJSON_GetObjectItemCaseSensitive(chat_usage, "prompt_tokens_details"), "cached_tokens", &cached);
    tr_count(cJSON_GetObjectItemCaseSensitive(chat_usage, "completion_tokens_details"), "reasoning_tokens",
             &reasoning);
    cJSON *u = cJSON_CreateObject(), *d = NULL, *od = NULL;
    bool ok = u && cJSON_AddNumberToObject(u, "input_tokens", (double)pt)
              && (d = cJSON_AddObjectToObject(u, "input_tokens_details")) != NULL
              && cJSON_AddNumberToObject(d, "cached_tokens", (double)cached)
              && cJSON_AddNumberToObject(u, "output_tokens", (double)ct)
              && (od = cJSON_AddObjectToObject(u, "output_tokens_details")) != NULL
              && cJSON_AddNumberToObject(od, "reasoning_tokens", (double)reasoning)
              && cJSON_AddNumberToObject(u, "total_tokens", (double)(pt + ct));
    if (!ok) {
        cJSON_Delete(u);
        return NULL;
    }
    return u;
}

cJSON *qt_tr_responses_message_item(const char *id, const char *text, bool done)
{
    cJSON *it = cJSON_CreateObject(), *content = NULL;
    bool ok = it && cJSON_AddStringToObject(it, "type", "message") && cJSON_AddStringToObject(it, "id", id)
              && cJSON_AddStringToObject(it, "status", done ? "completed" : "in_progress")
              && cJSON_AddStringToObject(it, "role", "assistant")
              && (content = cJSON_AddArrayToObject(it, "content")) != NULL;
    if (ok && done) {
        cJSON *part = cJSON_CreateObject();
        ok = tr_push(content, part) && cJSON_AddStringToObject(part, "type", "output_text")
             && cJSON_AddStringToObject(part, "text", text ? text : "") && cJSON_AddArrayToObject(part, "annotations");
    }
    if (!ok) {
        cJSON_Delete(it);
        return NULL;
    }
    return it;
}

cJSON *qt_tr_responses_call_item(const char *call_id, const char *name, const char *args, bool done)
{
    char id[160];
    derived_id(id, sizeof id, "fc_", call_id);
    cJSON *it = cJSON_CreateObject();
    bool ok = it && cJSON_AddStringToObject(it, "type", "function_call") && cJSON_AddStringToObject(it, "id", id)
              && cJSON_AddStringToObject(it, "call_id", call_id ? call_id : "")
              && cJSON_AddStringToObject(it, "name", name ? name : "")
              && cJSON_AddStringToObject(it, "arguments", done && args ? args : "")
              && cJSON_AddStringToObject(it, "status", done ? "completed" : "in_progress");
    if (!ok) {
        cJSON_Delete(it);
        return NULL;
    }
    return it;
}

cJSON *qt_tr_responses_object(const char *upstream_id, const char *model, int64_t created_s,
                              const char *finish_reason, cJSON *output, cJSON *usage)
{
    char id[160];
    derived_id(id, sizeof id, "resp_", upstream_id);
    bool done = usage != NULL;
    const char *why = !done || !finish_reason ? NULL
                      : !strcmp(finish_reason, "length") ? "max_output_tokens"
                      : !strcmp(finish_reason, "content_filter") ? "content_filter" : NULL;
    cJSON *o = cJSON_CreateObject(), *inc = NULL;
    bool ok = o && cJSON_AddStringToObject(o, "id", id) && cJSON_AddStringToObject(o, "object", "response")
              && cJSON_AddNumberToObject(o, "created_at", (double)created_s)
              && cJSON_AddStringToObject(o, "status", !done ? "in_progress" : why ? "incomplete" : "completed")
              && cJSON_AddNullToObject(o, "error");
    if (ok && why)
        ok = (inc = cJSON_AddObjectToObject(o, "incomplete_details")) != NULL
             && cJSON_AddStringToObject(inc, "reason", why);
    else if (ok)
        ok = cJSON_AddNullToObject(o, "incomplete_details") != NULL;
    ok = ok && cJSON_AddStringToObject(o, "model", model ? model : "");
    if (ok && output == NULL)
        ok = (output = cJSON_CreateArray()) != NULL;
    if (ok && (ok = cJSON_AddItemToObject(o, "output", output)))
        output = NULL;
    ok = ok && cJSON_AddTrueToObject(o, "parallel_tool_calls") && cJSON_AddNullToObject(o, "previous_response_id")
         && cJSON_AddFalseToObject(o, "store");
    if (ok && usage) {
        if ((ok = cJSON_AddItemToObject(o, "usage", usage)))
            usage = NULL;
    } else if (ok) {
        ok = cJSON_AddNullToObject(o, "usage") != NULL;
    }
    cJSON_Delete(output);
    cJSON_Delete(usage);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

qt_err qt_tr_resp_chat_to_responses(const cJSON *completion, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(completion, "choices");
    const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
    if (!cJSON_IsObject(msg)) {
        tr_errf(err, errlen, "choices[0].message missing");
        return QT_ERR_INVALID;
    }
    const char *id = tr_str(completion, "id"), *text = tr_str(msg, "content");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    long created = 0;
    tr_count(completion, "created", &created);
    cJSON *output = cJSON_CreateArray();
    bool ok = output != NULL;
    if (ok && ((text && text[0]) || cJSON_GetArraySize(calls) == 0)) {
        char mid[160];
        derived_id(mid, sizeof mid, "msg_", id);
        ok = tr_push(output, qt_tr_responses_message_item(mid, text, true));
    }
    for (const cJSON *c = cJSON_IsArray(calls) ? calls->child : NULL; ok && c; c = c->next) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        ok = tr_push(output, qt_tr_responses_call_item(tr_str(c, "id"), tr_str(fn, "name"),
                                                       tr_str(fn, "arguments"), true));
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(completion, "usage");
    cJSON *usage = ok ? qt_tr_responses_usage(cJSON_IsObject(u) ? u : NULL) : NULL;
    cJSON *o = usage ? qt_tr_responses_object(id, tr_str(completion, "model"), created,
                                              tr_str(c0, "finish_reason"), output, usage)
                     : NULL;
    if (!usage)
        cJSON_Delete(output);
    if (!o) {
        tr_errf(err, errlen, "out of memory translating the answer");
        return QT_ERR_NOMEM;
    }
    *out = o;
    return QT_OK;
}
