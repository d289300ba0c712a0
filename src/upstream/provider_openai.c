/* provider_openai.c: the OpenAI chat-completions kind.
 *
 * DESIGN. Chat completions, and the Responses and embeddings endpoints
 * (provider_endpoint.c); a messages job is translated to a chat request
 * first. The upstream body is the job object itself, copied field by field
 * in the job's order, minus quotatop's own fields (provider.h lists them),
 * with `model` swapped for the upstream name and the stream fields set from
 * the build flag. Unknown fields are the caller's business and pass through.
 * A 2xx body is read as {id, model, choices[0].message.content,
 * choices[0].finish_reason, usage.prompt_tokens, usage.completion_tokens};
 * anything missing is an error on that attempt, with the field named.
 */
#include "quotatop/provider.h"

#include <stdlib.h>
#include <string.h>

#include "provider_int.h"
#include "quotatop/translate.h"

/* Job keys that never go upstream (see provider.h). "model" is replaced,
 * "stream"/"stream_options" are re-added from the build flag. */
static bool dropped_key(const char *k)
{
    static const char *const drop[] = {"id", "workflow", "priority", "endpoint", "stream",
                                       "stream_options"};
    for (size_t i = 0; i < QT_ARRAY_LEN(drop); i++)
        if (!strcmp(k, drop[i]))
            return true;
    return strncmp(k, "quotatop_", 9) == 0;
}

static const char *const endpoint_paths[QT_ENDPOINT_COUNT] = {
    [QT_ENDPOINT_CHAT] = "/chat/completions",
    [QT_ENDPOINT_MESSAGES] = "/chat/completions",   /* translated first */
    [QT_ENDPOINT_RESPONSES] = "/responses",
    [QT_ENDPOINT_EMBEDDINGS] = "/embeddings",
};

static qt_err build_body(const cJSON *job, qt_endpoint ep, const qt_model_cfg *model,
                         const char *api_key, bool stream, qt_provider_request *out,
                         char *err, size_t errlen);

static qt_err openai_build_request(const cJSON *job, const qt_model_cfg *model,
                                   const char *api_key, bool stream,
                                   qt_provider_request *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    qt_err rc = qt_prov_check_job(job, api_key, err, errlen);
    if (rc != QT_OK)
        return rc;
    qt_endpoint ep = qt_prov_endpoint(job);
    if (ep != QT_ENDPOINT_MESSAGES)
        return build_body(job, ep, model, api_key, stream, out, err, errlen);
    /* An Anthropic-shaped job to an openai-kind model: translated. */
    cJSON *chat = NULL;
    rc = qt_tr_req_anthropic_to_openai(job, NULL, false, &chat, err, errlen);
    if (rc == QT_ERR_LIMIT)
        rc = QT_ERR_INVALID;   /* the ops contract: the request cannot be built */
    if (rc == QT_OK)
        rc = build_body(chat, QT_ENDPOINT_CHAT, model, api_key, stream, out, err, errlen);
    cJSON_Delete(chat);
    return rc;
}

/* The upstream body: the job's fields minus quotatop's, model renamed. */
static qt_err build_body(const cJSON *job, qt_endpoint ep, const qt_model_cfg *model,
                         const char *api_key, bool stream, qt_provider_request *out,
                         char *err, size_t errlen)
{
    const char *upstream = model ? (model->upstream_model ? model->upstream_model : model->name) : NULL;
    const cJSON *job_model = cJSON_GetObjectItemCaseSensitive(job, "model");
    if (upstream == NULL)
        upstream = cJSON_IsString(job_model) ? job_model->valuestring : NULL;
    if (upstream == NULL) {
        qt_prov_errf(err, errlen, "no model to send upstream");
        return QT_ERR_INVALID;
    }

    cJSON *body = cJSON_CreateObject();
    bool ok = body != NULL;
    if (ok && job_model == NULL)
        ok = cJSON_AddStringToObject(body, "model", upstream) != NULL;
    for (const cJSON *f = job->child; ok && f; f = f->next) {
        if (f->string == NULL || dropped_key(f->string))
            continue;
        if (!strcmp(f->string, "model")) {
            ok = cJSON_AddStringToObject(body, "model", upstream) != NULL;
        } else {
            cJSON *dup = cJSON_Duplicate(f, 1);
            ok = dup && cJSON_AddItemToObject(body, f->string, dup);
            if (!ok)
                cJSON_Delete(dup);
        }
    }
    if (ok && stream && ep == QT_ENDPOINT_RESPONSES) {
        ok = cJSON_AddTrueToObject(body, "stream") != NULL;   /* usage comes in response.completed */
    } else if (ok && stream && ep == QT_ENDPOINT_CHAT) {
        cJSON *so;
        ok = cJSON_AddTrueToObject(body, "stream")
            && (so = cJSON_AddObjectToObject(body, "stream_options")) != NULL
            && cJSON_AddTrueToObject(so, "include_usage");
    }
    if (ok)
        ok = (out->body = cJSON_PrintUnformatted(body)) != NULL;
    cJSON_Delete(body);
    if (ok && api_key) {
        size_t n = strlen(api_key) + 8;
        char *bearer = malloc(n);
        ok = bearer != NULL;
        if (ok) {
            snprintf(bearer, n, "Bearer %s", api_key);
            ok = qt_prov_add_header(out, "Authorization", bearer) == QT_OK;
            memset(bearer, 0, n);
            free(bearer);
        }
    }
    if (ok)
        ok = qt_prov_add_header(out, "Content-Type", "application/json") == QT_OK;
    if (!ok) {
        qt_provider_request_free(out);
        qt_prov_errf(err, errlen, "out of memory building the request");
        return QT_ERR_NOMEM;
    }
    out->path = endpoint_paths[ep];
    out->body_len = strlen(out->body);
    return QT_OK;
}

/* Reads one count of usage (or of a details object inside it) into *out. */
static void usage_count(const cJSON *usage, const char *details, const char *key, long *out)
{
    const cJSON *o = details ? cJSON_GetObjectItemCaseSensitive(usage, details) : usage;
    long v;
    if (qt_prov_get_count(o, key, &v))
        *out = v;
}

/* Prints v (may be NULL) into *dst; false when out of memory. */
static bool print_into(char **dst, const cJSON *v)
{
    *dst = NULL;
    if (v == NULL)
        return true;
    *dst = cJSON_PrintUnformatted(v);
    return *dst != NULL;
}

qt_err qt_prov_result_from_openai(const cJSON *root, const char *raw, size_t raw_len,
                                  qt_provider_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (!cJSON_IsObject(root)) {
        qt_prov_errf(err, errlen, "upstream response is not a JSON object");
    } else if (qt_prov_error_in_2xx(root, err, errlen)) {
        /* err quotes the upstream's error */
    } else if (!cJSON_IsArray(choices)) {
        qt_prov_errf(err, errlen, "choices missing");
    } else if (!cJSON_IsObject(c0)) {
        qt_prov_errf(err, errlen, "choices[0] missing");
    } else if (!cJSON_IsObject(msg)) {
        qt_prov_errf(err, errlen, "choices[0].message missing");
    } else if (!cJSON_IsString(content) && !cJSON_IsNull(content)) {
        /* null is legal (tool calls, refusals): it reads as "". */
        qt_prov_errf(err, errlen, "choices[0].message.content missing");
    } else if (!cJSON_IsObject(usage)) {
        qt_prov_errf(err, errlen, "usage missing");
    } else if (!qt_prov_usage_count(usage, "prompt_tokens", &out->prompt_tokens, err, errlen)
               || !qt_prov_usage_count(usage, "completion_tokens", &out->completion_tokens, err, errlen)) {
        /* err says which figure is missing or absurd */
    } else {
        usage_count(usage, "prompt_tokens_details", "cached_tokens", &out->cached_tokens);
        usage_count(usage, NULL, "cache_creation_input_tokens", &out->cache_write_tokens);
        usage_count(usage, "completion_tokens_details", "reasoning_tokens", &out->reasoning_tokens);
        const char *id = qt_prov_get_str(root, "id"), *m = qt_prov_get_str(root, "model");
        const char *fr = qt_prov_get_str(c0, "finish_reason");
        const cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
        if (!cJSON_IsArray(calls) || cJSON_GetArraySize(calls) == 0)
            calls = NULL;
        out->id = strdup(id ? id : "");
        out->model = strdup(m ? m : "");
        out->content = strdup(cJSON_IsString(content) ? content->valuestring : "");
        out->finish_reason = strdup(fr ? fr : "");
        bool ok = out->id && out->model && out->content && out->finish_reason
                  && print_into(&out->tool_calls, calls)
                  && print_into(&out->choices, cJSON_GetArraySize(choices) > 1 ? choices : NULL);
        if (ok && raw) {
            ok = (out->openai_json = malloc(raw_len + 1)) != NULL;
            if (ok) {
                memcpy(out->openai_json, raw, raw_len);
                out->openai_json[raw_len] = '\0';
            }
        } else if (ok) {
            ok = print_into(&out->openai_json, root);
        }
        if (ok)
            return QT_OK;
        qt_prov_errf(err, errlen, "out of memory parsing the response");
        qt_provider_result_free(out);
        return QT_ERR_NOMEM;
    }
    qt_provider_result_free(out);
    return QT_ERR_INVALID;
}

static qt_err openai_parse_response(const char *body, size_t len, qt_provider_result *out,
                                    char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    cJSON *root = qt_prov_parse_json(body, len, err, errlen);
    if (root == NULL)
        return QT_ERR_INVALID;
    /* The answer is forwarded exactly as the upstream sent it. Its object
     * says which endpoint answered. */
    const char *object = qt_prov_get_str(root, "object");
    qt_err rc;
    if (object && !strcmp(object, "response"))
        rc = qt_prov_result_from_responses(root, body, len, out, err, errlen);
    else if (object && !strcmp(object, "list"))
        rc = qt_prov_result_from_embeddings(root, body, len, out, err, errlen);
    else
        rc = qt_prov_result_from_openai(root, body, len, out, err, errlen);
    cJSON_Delete(root);
    return rc;
}

const qt_provider_ops qt_provider_openai_ops = {
    .name = "openai",
    .build_request = openai_build_request,
    .parse_response = openai_parse_response,
    .parse_error = qt_prov_parse_error,
    .parse_limit_headers = qt_prov_parse_limit_headers,
};
