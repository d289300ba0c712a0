/* translate_req_anth.c: Anthropic messages request -> OpenAI chat request
 * (translate.h, qt_tr_req_anthropic_to_openai).
 *
 * DESIGN. The inverse of translate_req.c's walk: the top-level system
 * becomes the first message; a user turn's tool_result blocks become role
 * tool messages (in order, before what else the turn says, which is how
 * OpenAI wants results to follow the assistant's calls), its text and image
 * blocks one user message of parts; an assistant turn's text blocks become
 * its content and its tool_use blocks its tool_calls (input printed as the
 * arguments). Thinking blocks stay behind (OpenAI cannot take them back).
 */
#include "quotatop/translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_int.h"

/* An image block -> an image_url part. */
static cJSON *image_part(const cJSON *blk)
{
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(blk, "source");
    const char *type = tr_str(src, "type");
    char *url = NULL;
    if (type && !strcmp(type, "base64")) {
        const char *mt = tr_str(src, "media_type"), *data = tr_str(src, "data");
        if (mt == NULL || data == NULL)
            return NULL;
        size_t n = strlen(mt) + strlen(data) + 16;
        if ((url = malloc(n)) != NULL)
            snprintf(url, n, "data:%s;base64,%s", mt, data);
    } else if (type && !strcmp(type, "url") && tr_str(src, "url")) {
        url = strdup(tr_str(src, "url"));
    }
    if (url == NULL)
        return NULL;
    cJSON *p = cJSON_CreateObject(), *iu = NULL;
    bool ok = p && cJSON_AddStringToObject(p, "type", "image_url")
              && (iu = cJSON_AddObjectToObject(p, "image_url")) != NULL && cJSON_AddStringToObject(iu, "url", url);
    free(url);
    if (!ok) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

static cJSON *text_part(const char *text)
{
    cJSON *p = cJSON_CreateObject();
    if (p && cJSON_AddStringToObject(p, "type", "text") && cJSON_AddStringToObject(p, "text", text))
        return p;
    cJSON_Delete(p);
    return NULL;
}

static cJSON *message(const char *role)
{
    cJSON *m = cJSON_CreateObject();
    if (m && cJSON_AddStringToObject(m, "role", role))
        return m;
    cJSON_Delete(m);
    return NULL;
}

/* Text of a tool_result's content (a string or text blocks). */
static qt_err result_text(const cJSON *c, int mi, tr_sbuf *b, char *err, size_t errlen)
{
    if (c == NULL || cJSON_IsNull(c))
        return QT_OK;
    if (cJSON_IsString(c))
        return tr_sb_adds(b, c->valuestring) ? QT_OK : QT_ERR_NOMEM;
    int k = 0;
    for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; p; p = p->next, k++) {
        const char *type = tr_str(p, "type");
        if (!type || strcmp(type, "text") != 0) {
            tr_errf(err, errlen, "messages[%d]: a tool_result with a \"%.30s\" block cannot be carried to an "
                    "openai-kind model", mi, type ? type : "?");
            return QT_ERR_LIMIT;
        }
        if ((k > 0 && !tr_sb_adds(b, "\n")) || !tr_sb_adds(b, tr_str(p, "text")))
            return QT_ERR_NOMEM;
    }
    return QT_OK;
}

static qt_err user_turn(const cJSON *content, int mi, cJSON *out, char *err, size_t errlen)
{
    cJSON *parts = cJSON_CreateArray();
    qt_err rc = parts ? QT_OK : QT_ERR_NOMEM;
    int k = 0;
    for (const cJSON *b = content->child; rc == QT_OK && b; b = b->next, k++) {
        const char *type = tr_str(b, "type");
        if (type && !strcmp(type, "tool_result")) {
            tr_sbuf t = {0};
            rc = result_text(cJSON_GetObjectItemCaseSensitive(b, "content"), mi, &t, err, errlen);
            cJSON *m = rc == QT_OK ? message("tool") : NULL;
            if (rc == QT_OK && (!tr_push(out, m) || !cJSON_AddStringToObject(m, "tool_call_id",
                                                         tr_str(b, "tool_use_id") ? tr_str(b, "tool_use_id") : "")
                                || !cJSON_AddStringToObject(m, "content", sb_str(&t))))
                rc = QT_ERR_NOMEM;
            free(t.s);
        } else if (type && !strcmp(type, "text")) {
            rc = tr_push(parts, text_part(tr_str(b, "text") ? tr_str(b, "text") : "")) ? QT_OK : QT_ERR_NOMEM;
        } else if (type && !strcmp(type, "image")) {
            cJSON *p = image_part(b);
            if (p == NULL) {
                tr_errf(err, errlen, "messages[%d].content[%d]: image source is neither base64 nor url", mi, k);
                rc = QT_ERR_INVALID;
            } else if (!tr_push(parts, p)) {
                rc = QT_ERR_NOMEM;
            }
        } else {
            tr_errf(err, errlen, "messages[%d].content[%d]: block type \"%.30s\" cannot be carried to an "
                    "openai-kind model", mi, k, type ? type : "?");
            rc = QT_ERR_LIMIT;
        }
    }
    if (rc == QT_OK && cJSON_GetArraySize(parts) > 0) {
        cJSON *m = message("user");
        if (!tr_push(out, m) || !cJSON_AddItemToObject(m, "content", parts))
            rc = QT_ERR_NOMEM;
        else
            parts = NULL;
    }
    cJSON_Delete(parts);
    return rc;
}

static qt_err assistant_turn(const cJSON *content, int mi, cJSON *out, char *err, size_t errlen)
{
    tr_sbuf text = {0};
    cJSON *calls = cJSON_CreateArray();
    qt_err rc = calls ? QT_OK : QT_ERR_NOMEM;
    int k = 0;
    for (const cJSON *b = content->child; rc == QT_OK && b; b = b->next, k++) {
        const char *type = tr_str(b, "type");
        if (type && !strcmp(type, "text")) {
            rc = tr_sb_adds(&text, tr_str(b, "text")) ? QT_OK : QT_ERR_NOMEM;
        } else if (type && !strcmp(type, "tool_use")) {
            const cJSON *input = cJSON_GetObjectItemCaseSensitive(b, "input");
            char *args = input ? cJSON_PrintUnformatted(input) : strdup("{}");
            cJSON *tc = cJSON_CreateObject(), *fn = NULL;
            if (!args || !tr_push(calls, tc) || !cJSON_AddStringToObject(tc, "id", tr_str(b, "id") ? tr_str(b, "id") : "")
                || !cJSON_AddStringToObject(tc, "type", "function") || !(fn = cJSON_AddObjectToObject(tc, "function"))
                || !cJSON_AddStringToObject(fn, "name", tr_str(b, "name") ? tr_str(b, "name") : "")
                || !cJSON_AddStringToObject(fn, "arguments", args))
                rc = QT_ERR_NOMEM;
            free(args);
        } else if (type && (!strcmp(type, "thinking") || !strcmp(type, "redacted_thinking"))) {
            continue;
        } else {
            tr_errf(err, errlen, "messages[%d].content[%d]: block type \"%.30s\" cannot be carried to an "
                    "openai-kind model", mi, k, type ? type : "?");
            rc = QT_ERR_LIMIT;
        }
    }
    cJSON *m = rc == QT_OK ? message("assistant") : NULL;
    if (rc == QT_OK) {
        bool ok = tr_push(out, m)
                  && (text.len || cJSON_GetArraySize(calls) == 0 ? cJSON_AddStringToObject(m, "content", sb_str(&text)) != NULL
                                                               : cJSON_AddNullToObject(m, "content") != NULL);
        if (ok && cJSON_GetArraySize(calls) > 0) {
            ok = cJSON_AddItemToObject(m, "tool_calls", calls);
            if (ok)
                calls = NULL;
        }
        if (!ok)
            rc = QT_ERR_NOMEM;
    }
    cJSON_Delete(calls);
    free(text.s);
    return rc;
}

static qt_err add_system(const cJSON *sys, cJSON *msgs, char *err, size_t errlen)
{
    if (sys == NULL || cJSON_IsNull(sys))
        return QT_OK;
    tr_sbuf t = {0};
    qt_err rc = QT_OK;
    if (cJSON_IsString(sys)) {
        rc = tr_sb_adds(&t, sys->valuestring) ? QT_OK : QT_ERR_NOMEM;
    } else if (cJSON_IsArray(sys)) {
        for (const cJSON *b = sys->child; rc == QT_OK && b; b = b->next)
            if ((b != sys->child && !tr_sb_adds(&t, "\n\n")) || !tr_sb_adds(&t, tr_str(b, "text")))
                rc = QT_ERR_NOMEM;
    } else {
        tr_errf(err, errlen, "system is neither a string nor an array of text blocks");
        rc = QT_ERR_INVALID;
    }
    cJSON *m = rc == QT_OK && t.len ? message("system") : NULL;
    if (m && (!tr_push(msgs, m) || !cJSON_AddStringToObject(m, "content", t.s)))
        rc = QT_ERR_NOMEM;
    free(t.s);
    return rc;
}

static qt_err add_tools(const cJSON *req, cJSON *body, char *err, size_t errlen)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    int i = 0;
    cJSON *arr = cJSON_IsArray(tools) && tools->child ? cJSON_AddArrayToObject(body, "tools") : NULL;
    for (const cJSON *t = arr ? tools->child : NULL; t; t = t->next, i++) {
        const char *type = tr_str(t, "type"), *name = tr_str(t, "name"), *desc = tr_str(t, "description");
        if (type && strcmp(type, "custom") != 0) {
            tr_errf(err, errlen, "tools[%d]: server tool \"%.30s\" cannot be carried to an openai-kind model", i, type);
            return QT_ERR_LIMIT;
        }
        if (name == NULL) {
            tr_errf(err, errlen, "tools[%d].name missing", i);
            return QT_ERR_INVALID;
        }
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(t, "input_schema");
        cJSON *o = cJSON_CreateObject(), *fn = NULL;
        if (!tr_push(arr, o) || !cJSON_AddStringToObject(o, "type", "function")
            || !(fn = cJSON_AddObjectToObject(o, "function")) || !cJSON_AddStringToObject(fn, "name", name)
            || (desc && !cJSON_AddStringToObject(fn, "description", desc))
            || (schema && !tr_add_dup(fn, "parameters", schema)))
            return QT_ERR_NOMEM;
    }
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    const char *type = tr_str(tc, "type");
    if (arr == NULL || type == NULL)
        return QT_OK;
    bool ok;
    if (!strcmp(type, "tool")) {
        cJSON *o = cJSON_AddObjectToObject(body, "tool_choice"), *fn = NULL;
        ok = o && cJSON_AddStringToObject(o, "type", "function") && (fn = cJSON_AddObjectToObject(o, "function"))
             && cJSON_AddStringToObject(fn, "name", tr_str(tc, "name") ? tr_str(tc, "name") : "");
    } else {
        ok = cJSON_AddStringToObject(body, "tool_choice", !strcmp(type, "any") ? "required"
                                                          : !strcmp(type, "none") ? "none" : "auto") != NULL;
    }
    if (ok && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tc, "disable_parallel_tool_use")))
        ok = cJSON_AddFalseToObject(body, "parallel_tool_calls") != NULL;
    return ok ? QT_OK : QT_ERR_NOMEM;
}

static bool add_sampling(const cJSON *req, cJSON *body, bool stream)
{
    bool ok = true;
    const char *const nums[] = {"max_tokens", "temperature", "top_p"};
    for (size_t k = 0; ok && k < 3; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, nums[k]);
        if (cJSON_IsNumber(v))
            ok = cJSON_AddNumberToObject(body, nums[k], v->valuedouble) != NULL;
    }
    const cJSON *ss = cJSON_GetObjectItemCaseSensitive(req, "stop_sequences");
    if (ok && cJSON_IsArray(ss) && ss->child)
        ok = tr_add_dup(body, "stop", ss);
    const char *user = tr_str(cJSON_GetObjectItemCaseSensitive(req, "metadata"), "user_id");
    if (ok && user)
        ok = cJSON_AddStringToObject(body, "user", user) != NULL;
    if (ok && stream) {
        cJSON *so = NULL;
        ok = cJSON_AddTrueToObject(body, "stream") && (so = cJSON_AddObjectToObject(body, "stream_options"))
             && cJSON_AddTrueToObject(so, "include_usage");
    }
    return ok;
}

qt_err qt_tr_req_anthropic_to_openai(const cJSON *req, const char *model, bool stream, cJSON **out,
                                     char *err, size_t errlen)
{
    *out = NULL;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    if (!cJSON_IsObject(req) || !cJSON_IsArray(msgs) || !msgs->child) {
        tr_errf(err, errlen, cJSON_IsObject(req) ? "request has no messages" : "request is not a JSON object");
        return QT_ERR_INVALID;
    }
    if (model == NULL)
        model = tr_str(req, "model");
    cJSON *body = cJSON_CreateObject(), *arr = NULL;
    qt_err rc = body && (!model || cJSON_AddStringToObject(body, "model", model))
                        && (arr = cJSON_AddArrayToObject(body, "messages"))
                    ? QT_OK : QT_ERR_NOMEM;
    if (rc == QT_OK)
        rc = add_system(cJSON_GetObjectItemCaseSensitive(req, "system"), arr, err, errlen);
    int mi = 0;
    for (const cJSON *m = msgs->child; rc == QT_OK && m; m = m->next, mi++) {
        const char *role = tr_str(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
            tr_errf(err, errlen, "messages[%d]: role must be user or assistant", mi);
            rc = QT_ERR_INVALID;
        } else if (cJSON_IsString(content)) {
            cJSON *o = message(role);
            if (!tr_push(arr, o) || !cJSON_AddStringToObject(o, "content", content->valuestring))
                rc = QT_ERR_NOMEM;
        } else if (!cJSON_IsArray(content)) {
            tr_errf(err, errlen, "messages[%d].content is neither a string nor an array of blocks", mi);
            rc = QT_ERR_INVALID;
        } else {
            rc = role[0] == 'u' ? user_turn(content, mi, arr, err, errlen)
                                : assistant_turn(content, mi, arr, err, errlen);
        }
    }
    if (rc == QT_OK)
        rc = add_tools(req, body, err, errlen);
    if (rc == QT_OK && !add_sampling(req, body, stream))
        rc = QT_ERR_NOMEM;
    if (rc != QT_OK) {
        if (rc == QT_ERR_NOMEM)
            tr_errf(err, errlen, "out of memory translating the request");
        cJSON_Delete(body);
        return rc;
    }
    *out = body;
    return QT_OK;
}
