/* translate_req.c: chat requests, OpenAI <-> Anthropic (translate.h).
 *
 * DESIGN. OpenAI -> Anthropic walks the messages once, building Anthropic
 * turns as arrays of content blocks: system and developer messages go to the
 * top-level system, user parts become text/image blocks, assistant text and
 * tool_calls become text and tool_use blocks, role tool messages become
 * tool_result blocks of a user turn. Consecutive turns of one role merge
 * (the API wants user and assistant to alternate, and wants every result of
 * a parallel tool call in the one user turn that follows). A turn made only
 * of plain text is sent as a string (parts joined by "\n", merged messages
 * by a blank line), so simple requests stay small and readable. The other
 * direction unfolds the same structures back. Both go field by field from a
 * whitelist; a field that would change the answer's meaning if dropped is
 * refused instead, naming the field (check_carry, also used alone by the
 * router through qt_tr_openai_carries_to_anthropic).
 */
#include "quotatop/translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_int.h"

/* ---- what cannot cross to Anthropic --------------------------------------- */

static bool part_type_ok(const char *type)
{
    return type && (!strcmp(type, "text") || !strcmp(type, "image_url") || !strcmp(type, "refusal"));
}

/* The reason req cannot go to Anthropic, or NULL. Cheap: no copies. */
static bool check_carry(const cJSON *req, char *why, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "n");
    if (cJSON_IsNumber(v) && v->valuedouble > 1) {
        tr_errf(why, n, "\"n\": %.0f cannot be carried to an anthropic-kind model (it answers one choice)",
                v->valuedouble);
        return false;
    }
    v = cJSON_GetObjectItemCaseSensitive(req, "logprobs");
    if (cJSON_IsTrue(v)) {
        tr_errf(why, n, "\"logprobs\" cannot be carried to an anthropic-kind model (it has no log probabilities)");
        return false;
    }
    v = cJSON_GetObjectItemCaseSensitive(req, "top_logprobs");
    if (cJSON_IsNumber(v) && v->valuedouble > 0) {
        tr_errf(why, n, "\"top_logprobs\" cannot be carried to an anthropic-kind model (it has no log probabilities)");
        return false;
    }
    const char *rf = tr_str(cJSON_GetObjectItemCaseSensitive(req, "response_format"), "type");
    if (rf && !strcmp(rf, "json_schema")) {
        tr_errf(why, n, "\"response_format\" json_schema cannot be carried to an anthropic-kind model");
        return false;
    }
    const cJSON *mod = cJSON_GetObjectItemCaseSensitive(req, "modalities");
    for (const cJSON *e = cJSON_IsArray(mod) ? mod->child : NULL; e; e = e->next)
        if (cJSON_IsString(e) && strcmp(e->valuestring, "text") != 0) {
            tr_errf(why, n, "\"modalities\": \"%.20s\" cannot be carried to an anthropic-kind model",
                    e->valuestring);
            return false;
        }
    if (cJSON_GetObjectItemCaseSensitive(req, "audio")) {
        tr_errf(why, n, "\"audio\" cannot be carried to an anthropic-kind model");
        return false;
    }
    int i = 0;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    for (const cJSON *t = cJSON_IsArray(tools) ? tools->child : NULL; t; t = t->next, i++) {
        const char *type = tr_str(t, "type");
        if (type && strcmp(type, "function") != 0) {
            tr_errf(why, n, "tools[%d]: type \"%.30s\" cannot be carried to an anthropic-kind model", i,
                    type);
            return false;
        }
    }
    i = 0;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    for (const cJSON *m = cJSON_IsArray(msgs) ? msgs->child : NULL; m; m = m->next, i++) {
        const char *role = tr_str(m, "role");
        if (role && !strcmp(role, "function")) {
            tr_errf(why, n, "messages[%d]: role \"function\" cannot be carried to an anthropic-kind model "
                    "(use tools)", i);
            return false;
        }
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        int k = 0;
        for (const cJSON *p = cJSON_IsArray(c) ? c->child : NULL; p; p = p->next, k++) {
            const char *type = tr_str(p, "type");
            if (!part_type_ok(type)) {
                tr_errf(why, n, "messages[%d].content[%d]: part type \"%.30s\" cannot be carried to an "
                        "anthropic-kind model", i, k, type ? type : "?");
                return false;
            }
        }
    }
    return true;
}

bool qt_tr_openai_carries_to_anthropic(const cJSON *req, char *why, size_t whylen)
{
    if (!cJSON_IsObject(req)) {
        tr_errf(why, whylen, "request is not a JSON object");
        return false;
    }
    return check_carry(req, why, whylen);
}

/* ---- OpenAI -> Anthropic ------------------------------------------------- */

typedef struct {
    const char *role;     /* "user" / "assistant" */
    cJSON *blocks;        /* array of content blocks */
} turn;

typedef struct {
    turn *t;
    size_t n, cap;
    cJSON *system;        /* array of text blocks */
    char *err;
    size_t errlen;
} conv;

/* An image_url part -> an image block. */
static qt_err image_block(const cJSON *part, int mi, int k, cJSON **out, char *err, size_t errlen)
{
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
    const char *url = cJSON_IsString(iu) ? iu->valuestring : tr_str(iu, "url");
    if (url == NULL) {
        tr_errf(err, errlen, "messages[%d].content[%d].image_url.url missing", mi, k);
        return QT_ERR_INVALID;
    }
    cJSON *blk = cJSON_CreateObject(), *src = NULL;
    bool ok = blk && cJSON_AddStringToObject(blk, "type", "image")
              && (src = cJSON_AddObjectToObject(blk, "source")) != NULL;
    if (ok && !strncmp(url, "data:", 5)) {
        /* data:<media type>;base64,<data> */
        const char *semi = strchr(url + 5, ';'), *comma = strchr(url + 5, ',');
        if (semi == NULL || comma == NULL || comma < semi || strncmp(semi, ";base64,", 8) != 0) {
            cJSON_Delete(blk);
            tr_errf(err, errlen, "messages[%d].content[%d]: image data URL is not base64 "
                    "(data:<type>;base64,...)", mi, k);
            return QT_ERR_INVALID;
        }
        char mt[64];
        size_t ml = (size_t)(semi - (url + 5));
        if (ml >= sizeof mt)
            ml = sizeof mt - 1;
        memcpy(mt, url + 5, ml);
        mt[ml] = '\0';
        ok = cJSON_AddStringToObject(src, "type", "base64") && cJSON_AddStringToObject(src, "media_type", mt)
             && cJSON_AddStringToObject(src, "data", comma + 1);
    } else if (ok) {
        ok = cJSON_AddStringToObject(src, "type", "url") && cJSON_AddStringToObject(src, "url", url);
    }
    if (!ok) {
        cJSON_Delete(blk);
        return QT_ERR_NOMEM;
    }
    *out = blk;
    return QT_OK;
}

static cJSON *text_block(const char *text, const cJSON *cache_control)
{
    cJSON *b = cJSON_CreateObject();
    if (b && cJSON_AddStringToObject(b, "type", "text") && cJSON_AddStringToObject(b, "text", text)
        && (!cache_control || tr_add_dup(b, "cache_control", cache_control)))
        return b;
    cJSON_Delete(b);
    return NULL;
}

/* Appends the blocks of one message's content (string or parts) to arr. */
static qt_err content_blocks(const cJSON *content, int mi, bool images_ok, cJSON *arr, char *err,
                             size_t errlen)
{
    if (cJSON_IsNull(content) || content == NULL)
        return QT_OK;
    if (cJSON_IsString(content)) {
        if (content->valuestring[0] == '\0')
            return QT_OK;   /* Anthropic refuses empty text blocks */
        return tr_push(arr, text_block(content->valuestring, NULL)) ? QT_OK : QT_ERR_NOMEM;
    }
    if (!cJSON_IsArray(content)) {
        tr_errf(err, errlen, "messages[%d].content is neither a string nor an array of parts", mi);
        return QT_ERR_INVALID;
    }
    int k = 0;
    for (const cJSON *p = content->child; p; p = p->next, k++) {
        const char *type = tr_str(p, "type");
        const char *text = tr_str(p, type && !strcmp(type, "refusal") ? "refusal" : "text");
        if (type && (!strcmp(type, "text") || !strcmp(type, "refusal"))) {
            if (text == NULL) {
                tr_errf(err, errlen, "messages[%d].content[%d].text missing", mi, k);
                return QT_ERR_INVALID;
            }
            if (text[0] && !tr_push(arr, text_block(text, cJSON_GetObjectItemCaseSensitive(p, "cache_control"))))
                return QT_ERR_NOMEM;
        } else if (type && !strcmp(type, "image_url") && images_ok) {
            cJSON *blk;
            qt_err rc = image_block(p, mi, k, &blk, err, errlen);
            if (rc != QT_OK)
                return rc;
            if (!tr_push(arr, blk))
                return QT_ERR_NOMEM;
        } else {
            tr_errf(err, errlen, "messages[%d].content[%d]: part type \"%.30s\" cannot be carried to an "
                    "anthropic-kind model", mi, k, type ? type : "?");
            return QT_ERR_LIMIT;
        }
    }
    return QT_OK;
}

/* The turn to append role's blocks to: the last one when it has the same
 * role, else a new one. */
static turn *turn_for(conv *c, const char *role)
{
    if (c->n > 0 && !strcmp(c->t[c->n - 1].role, role)) {
        return &c->t[c->n - 1];
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        turn *t = realloc(c->t, cap * sizeof *t);
        if (t == NULL)
            return NULL;
        c->t = t;
        c->cap = cap;
    }
    turn *t = &c->t[c->n];
    t->role = role;
    t->blocks = cJSON_CreateArray();
    if (t->blocks == NULL)
        return NULL;
    c->n++;
    return t;
}

/* assistant tool_calls -> tool_use blocks. */
static qt_err tool_use_blocks(const cJSON *calls, int mi, cJSON *arr, char *err, size_t errlen)
{
    if (!cJSON_IsArray(calls)) {
        tr_errf(err, errlen, "messages[%d].tool_calls is not an array", mi);
        return QT_ERR_INVALID;
    }
    int k = 0;
    for (const cJSON *tc = calls->child; tc; tc = tc->next, k++) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const char *id = tr_str(tc, "id"), *name = tr_str(fn, "name");
        const char *args = tr_str(fn, "arguments");
        if (id == NULL || name == NULL) {
            tr_errf(err, errlen, "messages[%d].tool_calls[%d]: id and function.name are needed", mi, k);
            return QT_ERR_INVALID;
        }
        cJSON *input = (args && args[0]) ? cJSON_Parse(args) : cJSON_CreateObject();
        if (!cJSON_IsObject(input)) {
            cJSON_Delete(input);
            tr_errf(err, errlen, "messages[%d].tool_calls[%d].function.arguments is not a JSON object", mi, k);
            return QT_ERR_INVALID;
        }
        cJSON *b = cJSON_CreateObject();
        bool ok = b && cJSON_AddStringToObject(b, "type", "tool_use") && cJSON_AddStringToObject(b, "id", id)
                  && cJSON_AddStringToObject(b, "name", name) && cJSON_AddItemToObject(b, "input", input);
        if (!ok) {
            if (b == NULL || !cJSON_GetObjectItemCaseSensitive(b, "input"))
                cJSON_Delete(input);
            cJSON_Delete(b);
            return QT_ERR_NOMEM;
        }
        if (!tr_push(arr, b))
            return QT_ERR_NOMEM;
    }
    return QT_OK;
}

/* A role tool message -> a tool_result block. */
static qt_err tool_result_block(const cJSON *m, int mi, cJSON *arr, char *err, size_t errlen)
{
    const char *id = tr_str(m, "tool_call_id");
    if (id == NULL) {
        tr_errf(err, errlen, "messages[%d]: a tool message needs tool_call_id", mi);
        return QT_ERR_INVALID;
    }
    cJSON *b = cJSON_CreateObject();
    if (!b || !cJSON_AddStringToObject(b, "type", "tool_result") || !cJSON_AddStringToObject(b, "tool_use_id", id)) {
        cJSON_Delete(b);
        return QT_ERR_NOMEM;
    }
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    qt_err rc = QT_OK;
    if (cJSON_IsString(content)) {
        if (!cJSON_AddStringToObject(b, "content", content->valuestring))
            rc = QT_ERR_NOMEM;
    } else if (cJSON_IsArray(content)) {
        cJSON *inner = cJSON_AddArrayToObject(b, "content");
        rc = inner ? content_blocks(content, mi, true, inner, err, errlen) : QT_ERR_NOMEM;
    } else if (content && !cJSON_IsNull(content)) {
        tr_errf(err, errlen, "messages[%d].content is neither a string nor an array of parts", mi);
        rc = QT_ERR_INVALID;
    }
    if (rc != QT_OK || !tr_push(arr, b)) {
        cJSON_Delete(rc == QT_OK ? NULL : b);
        return rc != QT_OK ? rc : QT_ERR_NOMEM;
    }
    return QT_OK;
}

static qt_err one_message(conv *c, const cJSON *m, int mi)
{
    const char *role = tr_str(m, "role");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (role == NULL) {
        tr_errf(c->err, c->errlen, "messages[%d]: role missing", mi);
        return QT_ERR_INVALID;
    }
    if (!strcmp(role, "system") || !strcmp(role, "developer"))
        return content_blocks(content, mi, false, c->system, c->err, c->errlen);
    if (!strcmp(role, "tool")) {
        turn *t = turn_for(c, "user");
        return t ? tool_result_block(m, mi, t->blocks, c->err, c->errlen) : QT_ERR_NOMEM;
    }
    if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0) {
        tr_errf(c->err, c->errlen, "messages[%d]: role \"%.40s\" cannot be carried to an anthropic-kind model",
                mi, role);
        return QT_ERR_LIMIT;
    }
    if (content && !cJSON_IsString(content) && !cJSON_IsArray(content) && !cJSON_IsNull(content)) {
        tr_errf(c->err, c->errlen, "messages[%d].content is neither a string nor an array of parts", mi);
        return QT_ERR_INVALID;
    }
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    bool is_user = role[0] == 'u';
    if (!is_user && cJSON_IsArray(calls) && cJSON_GetArraySize(calls) == 0)
        calls = NULL;
    if (content == NULL || cJSON_IsNull(content)) {
        if (is_user || calls == NULL) {
            tr_errf(c->err, c->errlen, "messages[%d].content missing", mi);
            return QT_ERR_INVALID;
        }
    }
    turn *t = turn_for(c, is_user ? "user" : "assistant");
    if (t == NULL)
        return QT_ERR_NOMEM;
    qt_err rc = content_blocks(content, mi, is_user, t->blocks, c->err, c->errlen);
    if (rc == QT_OK && !is_user && calls)
        rc = tool_use_blocks(calls, mi, t->blocks, c->err, c->errlen);
    return rc;
}

/* A turn of plain text blocks only (no cache_control) as one string:
 * parts of one message joined by "\n", merged messages by a blank line
 * (the first block of each later message carries the _qt_new_msg mark);
 * any other turn keeps its blocks. */
/* A copy of a turn's blocks with its tool_result blocks first (Anthropic
 * wants the results of a call before anything else the user turn says). */
static cJSON *results_first(const cJSON *blocks)
{
    cJSON *out = cJSON_CreateArray();
    for (int pass = 0; out && pass < 2; pass++)
        for (const cJSON *b = blocks->child; b; b = b->next) {
            const char *type = tr_str(b, "type");
            bool is_result = type && !strcmp(type, "tool_result");
            if (is_result == (pass == 0) && !tr_push(out, cJSON_Duplicate(b, 1))) {
                cJSON_Delete(out);
                return NULL;
            }
        }
    return out;
}

static cJSON *turn_content(const turn *t)
{
    bool plain = cJSON_GetArraySize(t->blocks) > 0;
    for (const cJSON *b = t->blocks->child; b && plain; b = b->next) {
        const char *type = tr_str(b, "type");
        plain = type && !strcmp(type, "text") && !cJSON_GetObjectItemCaseSensitive(b, "cache_control");
    }
    if (!plain)
        return results_first(t->blocks);
    tr_sbuf s = {0};
    bool ok = true;
    for (const cJSON *b = t->blocks->child; b && ok; b = b->next) {
        const char *sep = b == t->blocks->child ? ""
                          : cJSON_GetObjectItemCaseSensitive(b, "_qt_new_msg") ? "\n\n" : "\n";
        ok = tr_sb_adds(&s, sep) && tr_sb_adds(&s, tr_str(b, "text"));
    }
    cJSON *r = ok ? cJSON_CreateString(s.s ? s.s : "") : NULL;
    free(s.s);
    return r;
}

/* Marks the first block each message added to a turn, so a merged plain
 * turn can be joined with blank lines between messages (see turn_content);
 * the mark is removed before sending. */
static void mark_new_msg(turn *t, int before)
{
    cJSON *b = cJSON_GetArrayItem(t->blocks, before);
    if (b && before > 0)
        cJSON_AddTrueToObject(b, "_qt_new_msg");
}

static void unmark(cJSON *arr)
{
    for (cJSON *b = arr ? arr->child : NULL; b; b = b->next)
        cJSON_DeleteItemFromObjectCaseSensitive(b, "_qt_new_msg");
}

static qt_err add_messages(conv *c, const cJSON *msgs, cJSON *body)
{
    int mi = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, mi++) {
        size_t n_before = c->n;
        const char *role = tr_str(m, "role");
        bool sys = role && (!strcmp(role, "system") || !strcmp(role, "developer"));
        int blocks_before = (!sys && c->n > 0) ? cJSON_GetArraySize(c->t[c->n - 1].blocks) : 0;
        qt_err rc = one_message(c, m, mi);
        if (rc != QT_OK)
            return rc;
        if (!sys && c->n == n_before && c->n > 0)
            mark_new_msg(&c->t[c->n - 1], blocks_before);
    }
    if (c->n == 0) {
        tr_errf(c->err, c->errlen, "job has no user or assistant message");
        return QT_ERR_INVALID;
    }
    cJSON *arr = cJSON_AddArrayToObject(body, "messages");
    for (size_t i = 0; arr && i < c->n; i++) {
        if (cJSON_GetArraySize(c->t[i].blocks) == 0)
            continue;   /* only empty text: Anthropic refuses empty content */
        cJSON *m = cJSON_CreateObject(), *content = NULL;
        if (!tr_push(arr, m) || !cJSON_AddStringToObject(m, "role", c->t[i].role)
            || (content = turn_content(&c->t[i])) == NULL || !cJSON_AddItemToObject(m, "content", content)) {
            cJSON_Delete(content);
            return QT_ERR_NOMEM;
        }
        unmark(content);
    }
    if (arr && cJSON_GetArraySize(arr) == 0) {
        tr_errf(c->err, c->errlen, "job has no user or assistant message with content");
        return QT_ERR_INVALID;
    }
    return arr ? QT_OK : QT_ERR_NOMEM;
}

/* system blocks -> a string (no cache_control anywhere) or the blocks. */
static bool add_system(cJSON *body, const char *job_system, cJSON *blocks)
{
    bool plain = true;
    for (const cJSON *b = blocks->child; b; b = b->next)
        if (cJSON_GetObjectItemCaseSensitive(b, "cache_control"))
            plain = false;
    if (job_system && job_system[0]) {
        cJSON *b = text_block(job_system, NULL);
        if (!b)
            return false;
        cJSON_InsertItemInArray(blocks, 0, b);
    }
    if (cJSON_GetArraySize(blocks) == 0)
        return true;
    if (!plain)
        return tr_add_dup(body, "system", blocks);
    tr_sbuf s = {0};
    bool ok = true;
    for (const cJSON *b = blocks->child; b && ok; b = b->next)
        ok = (b == blocks->child || tr_sb_adds(&s, "\n\n")) && tr_sb_adds(&s, tr_str(b, "text"));
    ok = ok && cJSON_AddStringToObject(body, "system", s.s ? s.s : "");
    free(s.s);
    return ok;
}

/* tools and tool_choice (+ parallel_tool_calls). */
static qt_err add_tools(const cJSON *req, cJSON *body, char *err, size_t errlen)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    if (!cJSON_IsArray(tools) || cJSON_GetArraySize(tools) == 0)
        return QT_OK;   /* tool_choice without tools means nothing to Anthropic */
    cJSON *arr = cJSON_AddArrayToObject(body, "tools");
    if (!arr)
        return QT_ERR_NOMEM;
    int i = 0;
    for (const cJSON *t = tools->child; t; t = t->next, i++) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const char *name = tr_str(fn, "name"), *desc = tr_str(fn, "description");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        if (name == NULL) {
            tr_errf(err, errlen, "tools[%d].function.name missing", i);
            return QT_ERR_INVALID;
        }
        cJSON *o = cJSON_CreateObject();
        bool ok = o && tr_push(arr, o) && cJSON_AddStringToObject(o, "name", name)
                  && (!desc || cJSON_AddStringToObject(o, "description", desc));
        if (ok && cJSON_IsObject(params)) {
            ok = tr_add_dup(o, "input_schema", params);
        } else if (ok) {
            cJSON *s = cJSON_AddObjectToObject(o, "input_schema");
            ok = s && cJSON_AddStringToObject(s, "type", "object") && cJSON_AddObjectToObject(s, "properties");
        }
        const cJSON *cc = cJSON_GetObjectItemCaseSensitive(t, "cache_control");
        if (ok && cc)
            ok = tr_add_dup(o, "cache_control", cc);
        if (!ok)
            return QT_ERR_NOMEM;
    }
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    bool no_parallel = cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(req, "parallel_tool_calls"));
    const char *type = NULL, *name = NULL;
    if (cJSON_IsString(tc)) {
        const char *s = tc->valuestring;
        type = !strcmp(s, "required") ? "any" : !strcmp(s, "none") ? "none" : !strcmp(s, "auto") ? "auto" : NULL;
        if (type == NULL) {
            tr_errf(err, errlen, "tool_choice \"%.30s\" is not auto, none, required or a function", s);
            return QT_ERR_INVALID;
        }
    } else if (cJSON_IsObject(tc)) {
        name = tr_str(cJSON_GetObjectItemCaseSensitive(tc, "function"), "name");
        if (name == NULL) {
            tr_errf(err, errlen, "tool_choice.function.name missing");
            return QT_ERR_INVALID;
        }
        type = "tool";
    } else if (no_parallel) {
        type = "auto";
    }
    if (type == NULL)
        return QT_OK;
    cJSON *o = cJSON_AddObjectToObject(body, "tool_choice");
    bool ok = o && cJSON_AddStringToObject(o, "type", type) && (!name || cJSON_AddStringToObject(o, "name", name))
              && (!no_parallel || strcmp(type, "none") == 0 || cJSON_AddTrueToObject(o, "disable_parallel_tool_use"));
    return ok ? QT_OK : QT_ERR_NOMEM;
}

/* temperature, top_p, top_k, stop, user, stream. */
static bool add_sampling(const cJSON *req, cJSON *body, bool stream)
{
    bool ok = true;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "temperature");
    if (cJSON_IsNumber(v)) {
        double t = v->valuedouble < 0 ? 0 : v->valuedouble > 1 ? 1 : v->valuedouble;
        ok = cJSON_AddNumberToObject(body, "temperature", t) != NULL;
    }
    const char *const nums[] = {"top_p", "top_k"};
    for (size_t k = 0; ok && k < 2; k++) {
        v = cJSON_GetObjectItemCaseSensitive(req, nums[k]);
        if (cJSON_IsNumber(v))
            ok = cJSON_AddNumberToObject(body, nums[k], v->valuedouble) != NULL;
    }
    cJSON *seqs = NULL;
    const char *const stop_keys[] = {"stop", "stop_sequences"};
    for (size_t k = 0; ok && k < 2; k++) {
        v = cJSON_GetObjectItemCaseSensitive(req, stop_keys[k]);
        if (!cJSON_IsString(v) && !cJSON_IsArray(v))
            continue;
        if (seqs == NULL)
            ok = (seqs = cJSON_AddArrayToObject(body, "stop_sequences")) != NULL;
        if (ok && cJSON_IsString(v))
            ok = tr_push(seqs, cJSON_CreateString(v->valuestring));
        for (const cJSON *e = cJSON_IsArray(v) ? v->child : NULL; ok && e; e = e->next)
            if (cJSON_IsString(e))
                ok = tr_push(seqs, cJSON_CreateString(e->valuestring));
    }
    const char *user = tr_str(req, "user");
    if (ok && user) {
        cJSON *md = cJSON_AddObjectToObject(body, "metadata");
        ok = md && cJSON_AddStringToObject(md, "user_id", user);
    }
    if (ok && stream)
        ok = cJSON_AddTrueToObject(body, "stream") != NULL;
    return ok;
}

qt_err qt_tr_req_openai_to_anthropic(const cJSON *req, const char *model, long default_max_tokens,
                                     bool stream, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    if (!cJSON_IsObject(req) || !cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        tr_errf(err, errlen, cJSON_IsObject(req) ? "job has no messages" : "job is not a JSON object");
        return QT_ERR_INVALID;
    }
    if (!check_carry(req, err, errlen))
        return QT_ERR_LIMIT;
    if (model == NULL)
        model = tr_str(req, "model");
    if (model == NULL) {
        tr_errf(err, errlen, "no model to send upstream");
        return QT_ERR_INVALID;
    }
    long mt = 0, mct = 0;
    tr_count(req, "max_tokens", &mt);
    tr_count(req, "max_completion_tokens", &mct);
    long max_tokens = mt > mct ? mt : mct;
    if (max_tokens <= 0)
        max_tokens = default_max_tokens > 0 ? default_max_tokens : 1024;

    conv c = {.err = err, .errlen = errlen};
    c.system = cJSON_CreateArray();
    cJSON *body = cJSON_CreateObject();
    qt_err rc = (body && c.system && cJSON_AddStringToObject(body, "model", model)
                 && cJSON_AddNumberToObject(body, "max_tokens", (double)max_tokens))
                    ? QT_OK : QT_ERR_NOMEM;
    /* The system goes before messages in the body: build messages into a
     * scratch object, then move them. */
    cJSON *scratch = cJSON_CreateObject();
    if (rc == QT_OK)
        rc = scratch ? add_messages(&c, msgs, scratch) : QT_ERR_NOMEM;
    if (rc == QT_OK && !add_system(body, tr_str(req, "system"), c.system))
        rc = QT_ERR_NOMEM;
    if (rc == QT_OK) {
        cJSON *m = cJSON_DetachItemFromObjectCaseSensitive(scratch, "messages");
        if (!cJSON_AddItemToObject(body, "messages", m)) {
            cJSON_Delete(m);
            rc = QT_ERR_NOMEM;
        }
    }
    if (rc == QT_OK)
        rc = add_tools(req, body, err, errlen);
    if (rc == QT_OK && !add_sampling(req, body, stream))
        rc = QT_ERR_NOMEM;
    if (rc == QT_ERR_NOMEM)
        tr_errf(err, errlen, "out of memory translating the request");
    cJSON_Delete(scratch);
    cJSON_Delete(c.system);
    for (size_t i = 0; i < c.n; i++)
        cJSON_Delete(c.t[i].blocks);
    free(c.t);
    if (rc != QT_OK) {
        cJSON_Delete(body);
        return rc;
    }
    *out = body;
    return QT_OK;
}
