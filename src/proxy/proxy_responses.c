/* proxy_responses.c: what a POST /v1/responses client gets when its
 * answer did not come from an OpenAI Responses endpoint.
 *
 * DESIGN. An openai-kind upstream streams Responses events, which go on as
 * they are (the event name is their type). An anthropic-kind upstream's
 * stream reaches the proxy as chat.completion.chunk objects (the provider
 * translates Anthropic events into chunks: provider_stream.c), and so does
 * a cache hit (proxy_chat.c builds its chunks); both are turned into
 * Responses events by a qt_tr_rstream (translate_rstream.c), made on the
 * first chunk, whose end sends response.completed. A whole answer from the
 * cache is a chat.completion turned into a response object
 * (qt_tr_resp_chat_to_responses). Everything here runs under r->mu.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "proxy_int.h"
#include "quotatop/clock.h"
#include "quotatop/translate.h"

/* qt_tr_emit of a Responses stream: one event, named by its type. */
static int emit_event(void *ud, const char *event, const cJSON *data)
{
    px_req *r = ud;
    char *json = cJSON_PrintUnformatted(data);
    int bad = !json || px_put_event(r, event, json, strlen(json));
    free(json);
    return bad;
}

int px_responses_chunk(px_req *r, const char *json, size_t len)
{
    cJSON *ev = cJSON_ParseWithLength(json, len);
    const char *type = cJSON_IsObject(ev) ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type")) : NULL;
    const char *object = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "object"));
    int bad = 0;
    if (object && !strcmp(object, "chat.completion.chunk")) {
        if (!r->rtr)
            r->rtr = qt_tr_rstream_new((int64_t)(qt_wall_ms() / 1000));
        bad = !r->rtr || qt_tr_rstream_chunk(r->rtr, ev, emit_event, r) == QT_ERR_NOMEM;
    } else {
        char name[80] = "";
        if (type)
            snprintf(name, sizeof name, "%s", type);
        bad = px_put_event(r, name[0] ? name : NULL, json, len);
    }
    cJSON_Delete(ev);
    return bad ? -1 : 0;
}

void px_responses_end(px_req *r)
{
    if (r->rtr)
        qt_tr_rstream_end(r->rtr, emit_event, r);
}

char *px_responses_from_completion(char *completion_json)
{
    cJSON *c = cJSON_Parse(completion_json), *resp = NULL;
    free(completion_json);
    char *out = c && qt_tr_resp_chat_to_responses(c, &resp, NULL, 0) == QT_OK ? cJSON_PrintUnformatted(resp) : NULL;
    cJSON_Delete(resp);
    cJSON_Delete(c);
    return out;
}
