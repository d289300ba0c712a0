/* fuzz_translate_responses.c: the Responses API translation (translate.h):
 * data[0] even: the rest is a Responses request, checked for what can cross,
 * translated to chat and on to Anthropic, and read as a chat answer turned
 * into a response object; odd: one chat.completion.chunk per line through
 * a qt_tr_rstream. Every event emitted must be a JSON object with a type
 * and a sequence number one above the last. */
#include "fuzz_common.h"
#include "quotatop/translate.h"

#include <stdio.h>

static long last_seq;

static int check_event(void *ud, const char *event, const cJSON *data)
{
    (void)ud;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(data, "type");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(data, "sequence_number");
    if (!cJSON_IsString(t) || strcmp(t->valuestring, event) || !cJSON_IsNumber(n)
        || (long)n->valuedouble != last_seq + 1)
        abort();
    last_seq = (long)n->valuedouble;
    char *s = cJSON_PrintUnformatted(data);
    if (!s)
        abort();
    free(s);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char err[256];
    if (data[0] % 2 == 0) {
        cJSON *in = cJSON_Parse(text), *chat = NULL, *anth = NULL, *resp = NULL;
        qt_tr_responses_carries_to_anthropic(in, err, sizeof err);
        if (qt_tr_req_responses_to_chat(in, &chat, err, sizeof err) == QT_OK)
            qt_tr_req_openai_to_anthropic(chat, "m", 0, data[0] & 2, &anth, err, sizeof err);
        qt_tr_resp_chat_to_responses(in, &resp, err, sizeof err);
        cJSON_Delete(resp);
        cJSON_Delete(anth);
        cJSON_Delete(chat);
        cJSON_Delete(in);
    } else {
        qt_tr_rstream *s = qt_tr_rstream_new(1);
        last_seq = -1;
        for (char *line = text, *nl; s && line; line = nl) {
            nl = strchr(line, '\n');
            if (nl)
                *nl++ = '\0';
            cJSON *c = cJSON_Parse(line);
            qt_tr_rstream_chunk(s, c, check_event, NULL);
            cJSON_Delete(c);
        }
        if (s)
            qt_tr_rstream_end(s, check_event, NULL);
        qt_tr_rstream_free(s);
    }
    free(text);
    return 0;
}
