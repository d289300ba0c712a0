/* fuzz_proxy_request.c: what the proxy parses from a client: the request
 * body (JSON, then the job built from it, as px_chat does), the OpenAI
 * shapes it answers with the client's text in them (error JSON, a cached
 * completion, its SSE events: all must be JSON again), chunk and error-text
 * scanners (px_chunk_is_usage_only, px_upstream_status_of) and the
 * Prometheus label escape. The first byte selects nothing: all run. */
#include <cJSON.h>

#include "fuzz_common.h"
#include "quotatop/jobs.h"
#include "quotatop/proxy.h"
#include "../../src/proxy/proxy_int.h"

static void must_be_json(char *s)
{
    if (!s)
        return;
    cJSON *o = cJSON_Parse(s);
    if (!o)
        abort();
    cJSON_Delete(o);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const qt_config *cfg = fuzz_config();
    char *text = fuzz_cstr(data, size);
    const char *end = NULL;
    cJSON *body = size ? cJSON_ParseWithLengthOpts((const char *)data, size, &end, 0) : NULL;
    if (cJSON_IsObject(body)) {
        cJSON_DeleteItemFromObjectCaseSensitive(body, "id");
        cJSON_DeleteItemFromObjectCaseSensitive(body, "workflow");
        cJSON_DeleteItemFromObjectCaseSensitive(body, "priority");
        cJSON_AddStringToObject(body, "id", "px-1");
        qt_job *job = NULL;
        char err[300];
        if (qt_job_from_json(body, 0, cfg, &job, NULL, NULL, err, sizeof err) == QT_OK) {
            must_be_json(px_completion_json(job->id, job->model, 1, text, 1, 2));
            px_buf b = { 0 };
            px_sse_from_content(&b, job->id, job->model, 1, text, 1, 2, 1);
            px_buf_free(&b);
            qt_job_free(job);
        }
    } else {
        cJSON_Delete(body);
    }
    must_be_json(px_error_json(text, "invalid_request_error", text, NULL));
    (void)px_chunk_is_usage_only((const char *)data, size);
    int st = px_upstream_status_of(text);
    if (st < 0 || st > 999)
        abort();
    char esc[256];
    size_t need = qt_proxy_label_escape(text, esc, sizeof esc);
    if (need < strlen(esc))
        abort();
    (void)qt_proxy_token_equal(text, size, "secret-token");
    free(text);
    return 0;
}
