/* provider_anthropic.c: the Anthropic messages kind.
 *
 * DESIGN. Chat jobs arrive in OpenAI shape, so the request is a translation
 * (translate_req.c: system lifted to the top level, parts to blocks, tool
 * calls and results to tool_use and tool_result blocks, tools and
 * tool_choice renamed); a Responses job is first translated to a chat
 * request (translate_responses.c); a messages job goes as it is; an
 * embeddings job cannot be carried. What cannot cross is refused with a message naming
 * the field, and the router skips the model before sending (see
 * qt_provider_can_carry). A 2xx body is translated back into an OpenAI
 * chat.completion (translate_resp.c) and read like an openai-kind answer, so
 * results, the proxy and the ledger see one vocabulary.
 */
#include "quotatop/provider.h"

#include <stdlib.h>
#include <string.h>

#include "provider_int.h"
#include "quotatop/translate.h"

#define ANTHROPIC_VERSION "2023-06-01"

/* A messages job goes as it is: quotatop's fields dropped, the model
 * renamed, max_tokens (which Anthropic requires) defaulted, stream set. */
static qt_err native_body(const cJSON *job, const char *upstream, long default_max_tokens,
                          bool stream, cJSON **out, char *err, size_t errlen)
{
    static const char *const drop[] = {"id", "workflow", "priority", "endpoint", "stream"};
    cJSON *body = cJSON_CreateObject();
    bool ok = body && (!upstream || cJSON_AddStringToObject(body, "model", upstream));
    for (const cJSON *f = job->child; ok && f; f = f->next) {
        bool skip = f->string == NULL || !strncmp(f->string, "quotatop_", 9)
                    || (upstream && !strcmp(f->string, "model"));   /* added renamed above */
        for (size_t i = 0; !skip && i < QT_ARRAY_LEN(drop); i++)
            skip = !strcmp(f->string, drop[i]);
        if (skip)
            continue;
        cJSON *dup = cJSON_Duplicate(f, 1);
        ok = dup && cJSON_AddItemToObject(body, f->string, dup);
        if (!ok)
            cJSON_Delete(dup);
    }
    if (ok && !cJSON_HasObjectItem(body, "max_tokens"))
        ok = cJSON_AddNumberToObject(body, "max_tokens", (double)(default_max_tokens > 0 ? default_max_tokens : 1024)) != NULL;
    if (ok && stream)
        ok = cJSON_AddTrueToObject(body, "stream") != NULL;
    if (!ok) {
        cJSON_Delete(body);
        qt_prov_errf(err, errlen, "out of memory building the request");
        return QT_ERR_NOMEM;
    }
    *out = body;
    return QT_OK;
}

static qt_err anthropic_build_request(const cJSON *job, const qt_model_cfg *model,
                                      const char *api_key, bool stream,
                                      qt_provider_request *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    qt_err rc = qt_prov_check_job(job, api_key, err, errlen);
    if (rc != QT_OK)
        return rc;
    const char *upstream = model ? (model->upstream_model ? model->upstream_model : model->name) : NULL;
    long max_default = model ? model->default_max_tokens : 0;
    cJSON *body = NULL;
    char why[160];
    if (qt_prov_endpoint(job) == QT_ENDPOINT_MESSAGES)
        rc = native_body(job, upstream, max_default, stream, &body, err, errlen);
    else if (qt_prov_endpoint(job) == QT_ENDPOINT_RESPONSES) {
        /* Responses -> chat -> messages (translate_responses.c). */
        cJSON *chat = NULL;
        rc = qt_tr_req_responses_to_chat(job, &chat, err, errlen);
        if (rc == QT_OK)
            rc = qt_tr_req_openai_to_anthropic(chat, upstream, max_default, stream, &body, err, errlen);
        cJSON_Delete(chat);
    } else if (qt_prov_endpoint(job) != QT_ENDPOINT_CHAT) {   /* embeddings */
        qt_provider_can_carry(QT_KIND_ANTHROPIC, job, why, sizeof why);
        qt_prov_errf(err, errlen, "%s", why);
        return QT_ERR_INVALID;
    } else
        rc = qt_tr_req_openai_to_anthropic(job, upstream, max_default, stream, &body, err, errlen);
    if (rc == QT_ERR_LIMIT)
        rc = QT_ERR_INVALID;   /* the ops contract: the request cannot be built */
    if (rc != QT_OK)
        return rc;
    bool ok = (out->body = cJSON_PrintUnformatted(body)) != NULL;
    cJSON_Delete(body);
    if (ok && api_key)
        ok = qt_prov_add_header(out, "x-api-key", api_key) == QT_OK;
    /* A messages client's own version (serve passes it on), else ours. */
    const char *version = qt_prov_get_str(job, "quotatop_anthropic_version");
    for (int i = 0; version && i < 11; i++)   /* only a date (YYYY-MM-DD) goes in a header */
        if (i == 10 ? version[i] != '\0' : i == 4 || i == 7 ? version[i] != '-'
                                          : (version[i] < '0' || version[i] > '9'))
            version = NULL;
    ok = ok && qt_prov_add_header(out, "anthropic-version", version ? version : ANTHROPIC_VERSION) == QT_OK
         && qt_prov_add_header(out, "Content-Type", "application/json") == QT_OK;
    if (!ok) {
        qt_prov_errf(err, errlen, "out of memory building the request");
        qt_provider_request_free(out);
        return QT_ERR_NOMEM;
    }
    out->path = "/messages";
    out->body_len = strlen(out->body);
    return QT_OK;
}

static qt_err anthropic_parse_response(const char *body, size_t len, qt_provider_result *out,
                                       char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    cJSON *root = qt_prov_parse_json(body, len, err, errlen);
    if (root == NULL)
        return QT_ERR_INVALID;
    qt_err rc = QT_ERR_INVALID;
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    long n;
    cJSON *oai = NULL;
    if (!cJSON_IsObject(root)) {
        qt_prov_errf(err, errlen, "upstream response is not a JSON object");
    } else if (qt_prov_error_in_2xx(root, err, errlen)) {
        /* err quotes the upstream's error */
    } else if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "content"))) {
        qt_prov_errf(err, errlen, "content missing");
    } else if (!cJSON_IsObject(usage)) {
        qt_prov_errf(err, errlen, "usage missing");
    } else if (!qt_prov_usage_count(usage, "input_tokens", &n, err, errlen)
               || !qt_prov_usage_count(usage, "output_tokens", &n, err, errlen)) {
        /* err says which figure is missing or absurd */
    } else {
        rc = qt_tr_resp_anthropic_to_openai(root, 0, &oai, err, errlen);
        /* "created" stays 0: Anthropic gives no time and this module reads
         * no clock; the engine stamps it (engine_send.c). */
        if (rc == QT_OK)
            rc = qt_prov_result_from_openai(oai, NULL, 0, out, err, errlen);
        /* A messages job's client gets the message as the upstream sent it. */
        if (rc == QT_OK && (out->native_json = malloc(len + 1)) != NULL) {
            memcpy(out->native_json, body, len);
            out->native_json[len] = '\0';
        } else if (rc == QT_OK) {
            qt_provider_result_free(out);
            qt_prov_errf(err, errlen, "out of memory parsing the response");
            rc = QT_ERR_NOMEM;
        }
    }
    cJSON_Delete(oai);
    cJSON_Delete(root);
    return rc;
}

const qt_provider_ops qt_provider_anthropic_ops = {
    .name = "anthropic",
    .build_request = anthropic_build_request,
    .parse_response = anthropic_parse_response,
    .parse_error = qt_prov_parse_error,
    .parse_limit_headers = qt_prov_parse_limit_headers,
};
