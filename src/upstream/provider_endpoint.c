/* provider_endpoint.c: the endpoints beyond chat completions (see the
 * qt_endpoint comment in jobs.h): what each provider kind can carry, how a
 * Responses or embeddings answer is read, and the answer in the shape the
 * client asked for.
 *
 * DESIGN. A job's body keeps its own API's shape and names its endpoint in
 * the field "endpoint" (jobs.c sets it from the job line; the proxy from the
 * path). The provider tables read it:
 *   chat        OpenAI chat request: as is to openai-kind, translated to
 *               anthropic-kind (translate_req.c);
 *   messages    Anthropic messages request: as is to anthropic-kind,
 *               translated to openai-kind (translate_req_anth.c);
 *   responses   OpenAI Responses request: as is to openai-kind
 *               (POST /responses); to anthropic-kind translated to chat,
 *               then to messages (translate_responses.c), text and
 *               function tools; what needs state kept at the OpenAI
 *               upstream (previous_response_id) or OpenAI's built-in tools
 *               cannot cross (the router skips those models with the
 *               reason);
 *   embeddings  OpenAI embeddings request: as is to openai-kind
 *               (POST /embeddings); never to anthropic-kind.
 * Every answer is also read into a qt_provider_result (usage, content, tool
 * calls) so the limiter, the budget and the ledger see one vocabulary; the
 * client gets qt_provider_answer_json: the upstream's own body when the
 * kinds match, else a translation.
 */
#include "quotatop/provider.h"

#include <stdlib.h>
#include <string.h>

#include "provider_int.h"
#include "quotatop/translate.h"

qt_endpoint qt_prov_endpoint(const cJSON *job)
{
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(job, "endpoint");
    int e = cJSON_IsString(ep) ? qt_endpoint_parse(ep->valuestring) : QT_ENDPOINT_CHAT;
    return e < 0 ? QT_ENDPOINT_CHAT : (qt_endpoint)e;
}

bool qt_provider_can_carry(qt_provider_kind kind, const cJSON *job, char *why, size_t whylen)
{
    qt_endpoint ep = qt_prov_endpoint(job);
    if (kind == QT_KIND_ANTHROPIC) {
        if (ep == QT_ENDPOINT_RESPONSES)
            return qt_tr_responses_carries_to_anthropic(job, why, whylen);
        if (ep == QT_ENDPOINT_EMBEDDINGS) {
            qt_prov_errf(why, whylen, "the %s endpoint is carried to openai-kind models only",
                         qt_endpoint_name(ep));
            return false;
        }
        return ep == QT_ENDPOINT_MESSAGES || qt_tr_openai_carries_to_anthropic(job, why, whylen);
    }
    return true;   /* openai-kind: chat, responses and embeddings as they are,
                    * messages translated (a failure names the field) */
}

/* ---- answers -------------------------------------------------------------- */

/* Copies len bytes of raw into a new string (*dst). */
static bool copy_raw(char **dst, const char *raw, size_t len)
{
    *dst = malloc(len + 1);
    if (*dst == NULL)
        return false;
    memcpy(*dst, raw, len);
    (*dst)[len] = '\0';
    return true;
}

/* The text and function calls of a Responses answer's output items. */
static bool read_response_output(const cJSON *output, qt_provider_result *out)
{
    size_t cap = 1, len = 0;
    char *text = calloc(1, 1);
    cJSON *calls = cJSON_CreateArray();
    bool ok = text && calls;
    const cJSON *item;
    cJSON_ArrayForEach(item, output) {
        const char *type = qt_prov_get_str(item, "type");
        if (!ok || type == NULL)
            continue;
        if (!strcmp(type, "function_call")) {
            cJSON *c = cJSON_CreateObject(), *f = NULL;
            const char *id = qt_prov_get_str(item, "call_id"), *name = qt_prov_get_str(item, "name");
            const char *args = qt_prov_get_str(item, "arguments");
            ok = c && cJSON_AddItemToArray(calls, c)
                 && cJSON_AddStringToObject(c, "id", id ? id : "")
                 && cJSON_AddStringToObject(c, "type", "function")
                 && (f = cJSON_AddObjectToObject(c, "function")) != NULL
                 && cJSON_AddStringToObject(f, "name", name ? name : "")
                 && cJSON_AddStringToObject(f, "arguments", args ? args : "");
            continue;
        }
        if (strcmp(type, "message"))
            continue;
        const cJSON *part;
        cJSON_ArrayForEach(part, cJSON_GetObjectItemCaseSensitive(item, "content")) {
            const char *pt = qt_prov_get_str(part, "type"), *t = qt_prov_get_str(part, "text");
            if (!pt || strcmp(pt, "output_text") || !t)
                continue;
            size_t n = strlen(t);
            if (len + n + 1 > cap) {
                while (cap < len + n + 1)
                    cap *= 2;
                char *p = realloc(text, cap);
                if (!(ok = p != NULL))
                    break;
                text = p;
            }
            memcpy(text + len, t, n + 1);
            len += n;
        }
    }
    if (ok && cJSON_GetArraySize(calls) > 0)
        ok = (out->tool_calls = cJSON_PrintUnformatted(calls)) != NULL;
    cJSON_Delete(calls);
    if (!ok) {
        free(text);
        return false;
    }
    out->content = text;
    return true;
}

qt_err qt_prov_result_from_responses(const cJSON *root, const char *raw, size_t raw_len,
                                     qt_provider_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    const cJSON *rerr = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsObject(rerr) || (cJSON_IsString(status) && !strcmp(status->valuestring, "failed"))) {
        const char *m = qt_prov_get_str(rerr, "message");
        qt_prov_errf(err, errlen, "upstream response failed: %.200s", m ? m : "no message");
        return QT_ERR_INVALID;
    }
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "output"))) {
        qt_prov_errf(err, errlen, "output missing");
        return QT_ERR_INVALID;
    }
    if (!cJSON_IsObject(usage)) {
        qt_prov_errf(err, errlen, "usage missing");
        return QT_ERR_INVALID;
    }
    if (!qt_prov_usage_count(usage, "input_tokens", &out->prompt_tokens, err, errlen)
        || !qt_prov_usage_count(usage, "output_tokens", &out->completion_tokens, err, errlen))
        return QT_ERR_INVALID;
    long v;
    if (qt_prov_get_count(cJSON_GetObjectItemCaseSensitive(usage, "input_tokens_details"), "cached_tokens", &v))
        out->cached_tokens = v;
    if (qt_prov_get_count(cJSON_GetObjectItemCaseSensitive(usage, "output_tokens_details"), "reasoning_tokens", &v))
        out->reasoning_tokens = v;
    const char *id = qt_prov_get_str(root, "id"), *m = qt_prov_get_str(root, "model");
    const char *st = cJSON_IsString(status) ? status->valuestring : "completed";
    bool ok = read_response_output(cJSON_GetObjectItemCaseSensitive(root, "output"), out)
              && (out->id = strdup(id ? id : "")) != NULL
              && (out->model = strdup(m ? m : "")) != NULL
              && (out->finish_reason = strdup(out->tool_calls ? "tool_calls"
                                              : !strcmp(st, "incomplete") ? "length" : "stop")) != NULL
              && (raw ? copy_raw(&out->openai_json, raw, raw_len)
                      : (out->openai_json = cJSON_PrintUnformatted(root)) != NULL);
    if (ok)
        return QT_OK;
    qt_provider_result_free(out);
    qt_prov_errf(err, errlen, "out of memory parsing the response");
    return QT_ERR_NOMEM;
}

qt_err qt_prov_result_from_embeddings(const cJSON *root, const char *raw, size_t raw_len,
                                      qt_provider_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (!cJSON_IsArray(data)) {
        qt_prov_errf(err, errlen, "data missing");
        return QT_ERR_INVALID;
    }
    if (!cJSON_IsObject(usage)) {
        qt_prov_errf(err, errlen, "usage missing");
        return QT_ERR_INVALID;
    }
    if (!qt_prov_usage_count(usage, "prompt_tokens", &out->prompt_tokens, err, errlen))
        return QT_ERR_INVALID;
    const char *m = qt_prov_get_str(root, "model");
    cJSON *vectors = cJSON_CreateArray();
    const cJSON *d;
    cJSON_ArrayForEach(d, data) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "embedding");
        if (vectors && v)
            cJSON_AddItemToArray(vectors, cJSON_Duplicate(v, 1));
    }
    out->embeddings = vectors ? cJSON_PrintUnformatted(vectors) : NULL;
    cJSON_Delete(vectors);
    bool ok = out->embeddings && (out->id = strdup("")) != NULL && (out->model = strdup(m ? m : "")) != NULL
              && (out->content = strdup("")) != NULL && (out->finish_reason = strdup("stop")) != NULL
              && copy_raw(&out->openai_json, raw, raw_len);
    if (ok)
        return QT_OK;
    qt_provider_result_free(out);
    qt_prov_errf(err, errlen, "out of memory parsing the response");
    return QT_ERR_NOMEM;
}

char *qt_provider_answer_json(qt_endpoint ep, const qt_provider_result *r)
{
    /* A Responses job that an anthropic-kind model answered: openai_json is
     * the message translated to a chat completion; the client wants a
     * response object. */
    bool to_responses = ep == QT_ENDPOINT_RESPONSES && r->native_json;
    if (ep != QT_ENDPOINT_MESSAGES && !to_responses)
        return r->openai_json ? strdup(r->openai_json) : NULL;
    if (!to_responses && r->native_json)   /* an anthropic-kind upstream: its own message */
        return strdup(r->native_json);
    cJSON *c = r->openai_json ? cJSON_Parse(r->openai_json) : NULL, *msg = NULL;
    char *text = NULL;
    if (c && (to_responses ? qt_tr_resp_chat_to_responses(c, &msg, NULL, 0)
                           : qt_tr_resp_openai_to_anthropic(c, &msg, NULL, 0)) == QT_OK)
        text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    cJSON_Delete(c);
    return text;
}
