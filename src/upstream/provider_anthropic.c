/* provider_anthropic.c: the Anthropic messages kind.
 *
 * DESIGN. Jobs arrive in OpenAI shape, so the request is a translation, not
 * a copy: a whitelist of fields is carried over (provider.h lists what is
 * kept, renamed and dropped), system and developer messages are lifted into
 * the top-level `system`, content (a string or text parts) is flattened to
 * text, and consecutive messages of one role are merged because the API
 * wants user and assistant to alternate. Anything the translation cannot
 * express faithfully (tool messages, images) is refused with a message
 * naming the message index, so the caller sees why instead of a 400.
 * A 2xx body is read as {id, model, content[] text blocks, stop_reason,
 * usage.input_tokens, usage.output_tokens}.
 */
#include "quotatop/provider.h"

#include <stdlib.h>
#include <string.h>

#include "provider_int.h"

#define ANTHROPIC_VERSION "2023-06-01"

/* Appends the text of one message's content to b (parts joined by "\n").
 * Returns QT_OK, QT_ERR_INVALID (message in err) or QT_ERR_NOMEM. */
static qt_err content_text(const cJSON *content, int idx, sbuf *b, char *err, size_t errlen)
{
    if (cJSON_IsString(content))
        return sb_adds(b, content->valuestring) ? QT_OK : QT_ERR_NOMEM;
    if (!cJSON_IsArray(content)) {
        qt_prov_errf(err, errlen, "messages[%d].content is neither a string nor an array of parts", idx);
        return QT_ERR_INVALID;
    }
    int k = 0;
    for (const cJSON *p = content->child; p; p = p->next, k++) {
        const char *type = qt_prov_get_str(p, "type");
        const char *text = qt_prov_get_str(p, "text");
        if (type == NULL || strcmp(type, "text") != 0 || text == NULL) {
            qt_prov_errf(err, errlen,
                         "messages[%d].content[%d]: part type '%.40s' cannot be sent to anthropic "
                         "(text parts only)", idx, k, type ? type : "?");
            return QT_ERR_INVALID;
        }
        if ((k > 0 && !sb_adds(b, "\n")) || !sb_adds(b, text))
            return QT_ERR_NOMEM;
    }
    return QT_OK;
}

typedef struct {
    const char *role;   /* static "user" / "assistant" */
    sbuf text;
} turn;

static qt_err translate_messages(const cJSON *msgs, sbuf *system, turn **turns_out,
                                 size_t *n_out, char *err, size_t errlen)
{
    size_t cap = (size_t)cJSON_GetArraySize(msgs), n = 0;
    turn *turns = calloc(cap ? cap : 1, sizeof *turns);
    if (turns == NULL)
        return QT_ERR_NOMEM;
    qt_err rc = QT_OK;
    int idx = 0;
    for (const cJSON *m = msgs->child; m && rc == QT_OK; m = m->next, idx++) {
        const char *role = qt_prov_get_str(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (role == NULL) {
            qt_prov_errf(err, errlen, "messages[%d]: role missing", idx);
            rc = QT_ERR_INVALID;
        } else if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            if (system->len > 0 && !sb_adds(system, "\n\n"))
                rc = QT_ERR_NOMEM;
            else
                rc = content_text(content, idx, system, err, errlen);
        } else if (!strcmp(role, "user") || !strcmp(role, "assistant")) {
            const char *r = role[0] == 'u' ? "user" : "assistant";
            if (cJSON_GetObjectItemCaseSensitive(m, "tool_calls") != NULL) {
                qt_prov_errf(err, errlen, "messages[%d]: tool_calls cannot be sent to anthropic", idx);
                rc = QT_ERR_INVALID;
            } else if (n > 0 && turns[n - 1].role == r) {
                /* Same role twice in a row: merge, the API wants alternation. */
                if (!sb_adds(&turns[n - 1].text, "\n\n"))
                    rc = QT_ERR_NOMEM;
                else
                    rc = content_text(content, idx, &turns[n - 1].text, err, errlen);
            } else {
                turns[n].role = r;
                rc = content_text(content, idx, &turns[n].text, err, errlen);
                n++;
            }
        } else {
            qt_prov_errf(err, errlen, "messages[%d]: role '%.40s' cannot be sent to anthropic", idx, role);
            rc = QT_ERR_INVALID;
        }
    }
    if (rc == QT_OK && n == 0) {
        qt_prov_errf(err, errlen, "job has no user or assistant message");
        rc = QT_ERR_INVALID;
    }
    *turns_out = turns;
    *n_out = n;
    return rc;
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
    if (upstream == NULL)
        upstream = qt_prov_get_str(job, "model");
    if (upstream == NULL) {
        qt_prov_errf(err, errlen, "no model to send upstream");
        return QT_ERR_INVALID;
    }

    long max_tokens = 0;
    if (!qt_prov_get_count(job, "max_tokens", &max_tokens) || max_tokens <= 0)
        if (!qt_prov_get_count(job, "max_completion_tokens", &max_tokens) || max_tokens <= 0)
            max_tokens = (model && model->default_max_tokens > 0) ? model->default_max_tokens : 1024;

    sbuf system = {0};
    turn *turns = NULL;
    size_t n_turns = 0;
    const char *job_system = qt_prov_get_str(job, "system");
    if (job_system && !sb_adds(&system, job_system))
        rc = QT_ERR_NOMEM;
    if (rc == QT_OK)
        rc = translate_messages(cJSON_GetObjectItemCaseSensitive(job, "messages"), &system,
                                &turns, &n_turns, err, errlen);

    cJSON *body = NULL;
    if (rc == QT_OK) {
        body = cJSON_CreateObject();
        cJSON *msgs = NULL;
        bool ok = body
            && cJSON_AddStringToObject(body, "model", upstream)
            && cJSON_AddNumberToObject(body, "max_tokens", (double)max_tokens)
            && (system.len == 0 || cJSON_AddStringToObject(body, "system", system.s))
            && (msgs = cJSON_AddArrayToObject(body, "messages")) != NULL;
        for (size_t i = 0; ok && i < n_turns; i++) {
            cJSON *m = cJSON_CreateObject();
            ok = m && cJSON_AddItemToArray(msgs, m)
                && cJSON_AddStringToObject(m, "role", turns[i].role)
                && cJSON_AddStringToObject(m, "content", turns[i].text.s ? turns[i].text.s : "");
        }
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(job, "temperature");
        if (ok && cJSON_IsNumber(v)) {
            double t = v->valuedouble < 0 ? 0 : v->valuedouble > 1 ? 1 : v->valuedouble;
            ok = cJSON_AddNumberToObject(body, "temperature", t) != NULL;
        }
        v = cJSON_GetObjectItemCaseSensitive(job, "top_p");
        if (ok && cJSON_IsNumber(v))
            ok = cJSON_AddNumberToObject(body, "top_p", v->valuedouble) != NULL;
        v = cJSON_GetObjectItemCaseSensitive(job, "top_k");
        if (ok && cJSON_IsNumber(v))
            ok = cJSON_AddNumberToObject(body, "top_k", v->valuedouble) != NULL;
        /* stop (string or array) and stop_sequences both become stop_sequences. */
        cJSON *seqs = NULL;
        const char *const stop_keys[] = {"stop", "stop_sequences"};
        for (size_t k = 0; ok && k < QT_ARRAY_LEN(stop_keys); k++) {
            v = cJSON_GetObjectItemCaseSensitive(job, stop_keys[k]);
            if (!cJSON_IsString(v) && !cJSON_IsArray(v))
                continue;
            if (seqs == NULL)
                ok = (seqs = cJSON_AddArrayToObject(body, "stop_sequences")) != NULL;
            if (cJSON_IsString(v)) {
                ok = ok && cJSON_AddItemToArray(seqs, cJSON_CreateString(v->valuestring));
            } else {
                for (const cJSON *e = v->child; ok && e; e = e->next)
                    if (cJSON_IsString(e))
                        ok = cJSON_AddItemToArray(seqs, cJSON_CreateString(e->valuestring));
            }
        }
        const char *user = qt_prov_get_str(job, "user");
        if (ok && user) {
            cJSON *md = cJSON_AddObjectToObject(body, "metadata");
            ok = md && cJSON_AddStringToObject(md, "user_id", user);
        }
        if (ok && stream)
            ok = cJSON_AddTrueToObject(body, "stream") != NULL;
        if (ok)
            ok = (out->body = cJSON_PrintUnformatted(body)) != NULL;
        if (ok && api_key)
            ok = qt_prov_add_header(out, "x-api-key", api_key) == QT_OK;
        ok = ok && qt_prov_add_header(out, "anthropic-version", ANTHROPIC_VERSION) == QT_OK
                && qt_prov_add_header(out, "Content-Type", "application/json") == QT_OK;
        if (!ok) {
            qt_prov_errf(err, errlen, "out of memory building the request");
            rc = QT_ERR_NOMEM;
        }
    }
    cJSON_Delete(body);
    free(system.s);
    for (size_t i = 0; i < n_turns; i++)
        free(turns[i].text.s);
    free(turns);
    if (rc != QT_OK) {
        qt_provider_request_free(out);
        return rc;
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
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(root, "content");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    long in = 0, out_tok = 0, cache = 0;
    if (!cJSON_IsObject(root)) {
        qt_prov_errf(err, errlen, "upstream response is not a JSON object");
    } else if (qt_prov_error_in_2xx(root, err, errlen)) {
        /* err quotes the upstream's error */
    } else if (!cJSON_IsArray(content)) {
        qt_prov_errf(err, errlen, "content missing");
    } else if (!cJSON_IsObject(usage)) {
        qt_prov_errf(err, errlen, "usage missing");
    } else if (!qt_prov_usage_count(usage, "input_tokens", &in, err, errlen)
               || !qt_prov_usage_count(usage, "output_tokens", &out_tok, err, errlen)) {
        /* err says which figure is missing or absurd */
    } else {
        sbuf text = {0};
        bool ok = sb_adds(&text, "");
        for (const cJSON *blk = content->child; ok && blk; blk = blk->next) {
            const char *bt = qt_prov_get_str(blk, "type");
            const char *t = qt_prov_get_str(blk, "text");
            if (bt && !strcmp(bt, "text") && t)
                ok = sb_adds(&text, t);
        }
        if (qt_prov_get_count(usage, "cache_creation_input_tokens", &cache))
            in += cache;
        if (qt_prov_get_count(usage, "cache_read_input_tokens", &cache))
            in += cache;
        const char *id = qt_prov_get_str(root, "id"), *m = qt_prov_get_str(root, "model");
        out->prompt_tokens = in;
        out->completion_tokens = out_tok;
        out->content = text.s;
        out->id = strdup(id ? id : "");
        out->model = strdup(m ? m : "");
        out->finish_reason = strdup(qt_prov_finish_from_anthropic(qt_prov_get_str(root, "stop_reason")));
        rc = (ok && out->id && out->model && out->finish_reason) ? QT_OK : QT_ERR_NOMEM;
        if (rc == QT_ERR_NOMEM)
            qt_prov_errf(err, errlen, "out of memory parsing the response");
    }
    cJSON_Delete(root);
    if (rc != QT_OK)
        qt_provider_result_free(out);
    return rc;
}

const qt_provider_ops qt_provider_anthropic_ops = {
    .name = "anthropic",
    .build_request = anthropic_build_request,
    .parse_response = anthropic_parse_response,
    .parse_error = qt_prov_parse_error,
    .parse_limit_headers = qt_prov_parse_limit_headers,
};
