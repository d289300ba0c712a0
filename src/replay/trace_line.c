/* trace_line.c: one job's trace line (docs/ARCHITECTURE.md, "Trace").
 *
 * Only sizes, times, names and outcomes are written: the prompt is reduced
 * to its character and message counts (the estimator's input), the answer
 * to its token counts, errors to their HTTP status. Never text, never a
 * key. The arrival is dated from extra->enqueued_wall_ms when the engine
 * gives it, else from the job's monotonic enqueue time.
 */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "quotatop/trace.h"

/* Providers add a few tokens of framing per message: the engine's first
 * estimate (before it calibrates per model) is chars/4 + 4/message + 3. */
static double est_prompt(const qt_job *job)
{
    double chars = (double)job->prompt_chars;
    long t = job->prompt_chars ? (long)((chars + 3) / 4) : 0;
    return (double)(t + 4L * job->n_messages + 3);
}

static const char *endpoint_of(const qt_job *job)
{
    const cJSON *ep = job->body ? cJSON_GetObjectItemCaseSensitive(job->body, "endpoint") : NULL;
    if (cJSON_IsString(ep) && (!strcmp(ep->valuestring, "messages") || !strcmp(ep->valuestring, "responses")
                               || !strcmp(ep->valuestring, "embeddings")))
        return ep->valuestring;
    return "chat";
}

static void add_attempts(cJSON *o, const qt_result_extra *x)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "attempts");
    if (!x || !x->attempts)
        return;
    for (int i = 0; i < x->n_attempts; i++) {
        const qt_attempt_view *a = &x->attempts[i];
        cJSON *at = cJSON_CreateObject();
        if (!at)
            return;
        cJSON_AddStringToObject(at, "model", a->model);
        cJSON_AddStringToObject(at, "provider", a->provider);
        cJSON_AddNumberToObject(at, "status", a->status);
        cJSON_AddNumberToObject(at, "ttfb_ms", (double)a->ttfb_ms);
        cJSON_AddNumberToObject(at, "total_ms", (double)a->total_ms);
        cJSON_AddNumberToObject(at, "prompt", a->prompt_tokens);
        cJSON_AddNumberToObject(at, "completion", a->completion_tokens);
        cJSON_AddNumberToObject(at, "retry_after_ms", (double)a->retry_after_ms);
        cJSON_AddNumberToObject(at, "at_ms", (double)a->at_ms);
        if (a->limit_requests > 0)
            cJSON_AddNumberToObject(at, "limit_rpm", (double)a->limit_requests);
        if (a->limit_tokens > 0)
            cJSON_AddNumberToObject(at, "limit_tpm", (double)a->limit_tokens);
        cJSON_AddItemToArray(arr, at);
    }
}

char *qt_trace_format(const qt_job *job, const qt_result *res, const qt_result_extra *x,
                      uint64_t wall_now_ms, uint64_t mono_now_ms)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    uint64_t age = mono_now_ms > job->enqueued_ms ? mono_now_ms - job->enqueued_ms : 0;
    uint64_t arrival = wall_now_ms > age ? wall_now_ms - age : 0;
    if (x && x->enqueued_wall_ms)
        arrival = x->enqueued_wall_ms;
    cJSON_AddNumberToObject(o, "t", (double)arrival);
    cJSON_AddStringToObject(o, "id", job->id ? job->id : "");
    cJSON_AddStringToObject(o, "wf", job->workflow ? job->workflow : "default");
    cJSON_AddNumberToObject(o, "prio", job->priority);
    cJSON_AddStringToObject(o, "model", job->model ? job->model : "");
    cJSON_AddStringToObject(o, "endpoint", endpoint_of(job));
    cJSON_AddNumberToObject(o, "chars", (double)job->prompt_chars);
    cJSON_AddNumberToObject(o, "msgs", job->n_messages);
    cJSON_AddNumberToObject(o, "est_prompt", est_prompt(job));
    cJSON_AddNumberToObject(o, "max_tokens", job->max_tokens);
    cJSON_AddBoolToObject(o, "stream", job->stream != NULL);
    cJSON_AddStringToObject(o, "status", qt_status_name(res->status));
    cJSON_AddStringToObject(o, "model_used", res->model_used ? res->model_used : "");
    cJSON_AddStringToObject(o, "provider", res->provider ? res->provider : "");
    cJSON_AddNumberToObject(o, "n_attempts", res->attempts);
    cJSON_AddNumberToObject(o, "prompt", (double)res->prompt_tokens);
    cJSON_AddNumberToObject(o, "completion", (double)res->completion_tokens);
    cJSON_AddNumberToObject(o, "cost_usd", res->cost_usd);
    uint64_t wait = (uint64_t)(res->queued_ms > 0 ? res->queued_ms : 0);
    if (x && x->queue_wait_ms)
        wait = x->queue_wait_ms;
    cJSON_AddNumberToObject(o, "wait_ms", (double)wait);
    cJSON_AddNumberToObject(o, "latency_ms", (double)res->latency_ms);
    cJSON_AddNumberToObject(o, "done_ms", (double)wall_now_ms);
    cJSON_AddBoolToObject(o, "cached", res->cached != 0);
    cJSON_AddNumberToObject(o, "http_status", x ? x->http_status : 0);
    add_attempts(o, x);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);   /* room for the writer's newline */
    if (!line) {
        free(s);
        return NULL;
    }
    line[n + 1] = '\0';
    return line;
}
