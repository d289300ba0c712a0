/* test_translate_responses.c: Criterion suite "translate_responses": the
 * OpenAI Responses API to an Anthropic-kind model and back (translate.h):
 * a Responses request through chat into an Anthropic request (instructions,
 * text and image parts, function tools and tool_choice, function calls
 * merged into the assistant turn, outputs as tool results with ids kept,
 * max_output_tokens), what cannot cross (the field named), a chat answer as
 * a response object (text, function calls, incomplete, usage), and a
 * stream of chunks as Responses events whose deltas add up to the whole.
 */
#include "quotatop/translate.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_expect.h"


Test(translate_responses, request_through_chat_to_anthropic)
{
    cJSON *req = parse(
        "{\"model\":\"claude\",\"instructions\":\"be brief\",\"max_output_tokens\":64,\"temperature\":0.5,"
        "\"store\":true,\"tool_choice\":{\"type\":\"function\",\"name\":\"get_weather\"},"
        "\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"W\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}],"
        "\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"weather?\"},"
        "{\"type\":\"input_image\",\"image_url\":\"https://x.test/a.png\"}]},"
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},"
        "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"checking\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"call_2\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"sunny\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_2\",\"output\":[{\"type\":\"input_text\",\"text\":\"rain\"}]}]}");
    cJSON *chat = NULL, *anth = NULL;
    char err[256] = "";
    cr_assert_eq(qt_tr_req_responses_to_chat(req, &chat, err, sizeof err), QT_OK, "%s", err);
    expect_json(chat,
        "{\"model\":\"claude\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.png\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"checking\",\"tool_calls\":["
        "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}},"
        "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"rain\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"W\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
        "\"temperature\":0.5,\"max_completion_tokens\":64}");
    cr_assert_eq(qt_tr_req_openai_to_anthropic(chat, "claude-up", 0, true, &anth, err, sizeof err), QT_OK, "%s",
                 err);
    expect_json(anth,
        "{\"model\":\"claude-up\",\"max_tokens\":64,\"system\":\"be brief\",\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather?\"},"
        "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.png\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"checking\"},"
        "{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Rome\"}},"
        "{\"type\":\"tool_use\",\"id\":\"call_2\",\"name\":\"get_weather\",\"input\":{\"city\":\"Oslo\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"call_1\",\"content\":\"sunny\"},"
        "{\"type\":\"tool_result\",\"tool_use_id\":\"call_2\",\"content\":\"rain\"}]}],"
        "\"tools\":[{\"name\":\"get_weather\",\"description\":\"W\","
        "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}],"
        "\"tool_choice\":{\"type\":\"tool\",\"name\":\"get_weather\"},\"temperature\":0.5,\"stream\":true}");
    cJSON_Delete(anth);
    cJSON_Delete(chat);
    cJSON_Delete(req);

    req = parse("{\"model\":\"m\",\"input\":\"hi\",\"tool_choice\":\"required\"}");
    cr_assert_eq(qt_tr_req_responses_to_chat(req, &chat, err, sizeof err), QT_OK, "%s", err);
    expect_json(chat, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"required\"}");
    cJSON_Delete(chat);
    cJSON_Delete(req);
}

Test(translate_responses, what_cannot_cross_is_named)
{
    static const char *const cases[][2] = {
        {"{\"input\":\"x\",\"previous_response_id\":\"resp_1\"}", "\"previous_response_id\""},
        {"{\"input\":\"x\",\"conversation\":\"conv_1\"}", "\"conversation\""},
        {"{\"input\":\"x\",\"tools\":[{\"type\":\"web_search_preview\"}]}", "tools[0]: type \"web_search_preview\""},
        {"{\"input\":\"x\",\"tool_choice\":{\"type\":\"file_search\"}}", "\"tool_choice\" type \"file_search\""},
        {"{\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\",\"schema\":{}}}}",
         "\"text.format\" json_schema"},
        {"{\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_1\"}]}", "input[0]: item type \"item_reference\""},
        {"{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_file\",\"file_id\":\"f\"}]}]}",
         "input[0].content[0]: part type \"input_file\""},
        {"{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\",\"file_id\":\"f\"}]}]}",
         "input_image given by file_id"},
        {"{\"input\":\"x\",\"background\":true}", "\"background\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *req = parse(cases[i][0]), *chat = NULL;
        char why[256] = "", err[256] = "";
        cr_expect_not(qt_tr_responses_carries_to_anthropic(req, why, sizeof why), "case %zu", i);
        cr_expect(strstr(why, cases[i][1]) != NULL, "case %zu: %s", i, why);
        cr_expect(strstr(why, "cannot be carried") != NULL, "case %zu: %s", i, why);
        cr_expect_eq(qt_tr_req_responses_to_chat(req, &chat, err, sizeof err), QT_ERR_LIMIT, "case %zu", i);
        cr_expect_null(chat);
        cJSON_Delete(req);
    }
    cJSON *ok = parse("{\"input\":[{\"role\":\"user\",\"content\":\"x\"}],\"store\":true,\"previous_response_id\":null,"
                      "\"text\":{\"format\":{\"type\":\"text\"}},\"tools\":[{\"type\":\"function\",\"name\":\"f\"}]}");
    cr_expect(qt_tr_responses_carries_to_anthropic(ok, NULL, 0));
    cJSON_Delete(ok);
}

Test(translate_responses, chat_answer_as_a_response)
{
    cJSON *c = parse(
        "{\"id\":\"msg_01\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"claude-x\","
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Let me check.\","
        "\"tool_calls\":[{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}],"
        "\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":20}}}");
    cJSON *r = NULL;
    cr_assert_eq(qt_tr_resp_chat_to_responses(c, &r, NULL, 0), QT_OK);
    expect_json(r,
        "{\"id\":\"resp_msg_01\",\"object\":\"response\",\"created_at\":1700000000,\"status\":\"completed\","
        "\"error\":null,\"incomplete_details\":null,\"model\":\"claude-x\",\"output\":["
        "{\"type\":\"message\",\"id\":\"msg_01\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":["
        "{\"type\":\"output_text\",\"text\":\"Let me check.\",\"annotations\":[]}]},"
        "{\"type\":\"function_call\",\"id\":\"fc_toolu_1\",\"call_id\":\"toolu_1\",\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\",\"status\":\"completed\"}],"
        "\"parallel_tool_calls\":true,\"previous_response_id\":null,\"store\":false,"
        "\"usage\":{\"input_tokens\":30,\"input_tokens_details\":{\"cached_tokens\":20},\"output_tokens\":7,"
        "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":37}}");
    cJSON_Delete(r);
    cJSON_Delete(c);

    c = parse("{\"id\":\"chatcmpl-9\",\"model\":\"m\",\"choices\":[{\"message\":{\"content\":\"cut\"},"
              "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}");
    cr_assert_eq(qt_tr_resp_chat_to_responses(c, &r, NULL, 0), QT_OK);
    cr_expect_str_eq(cJSON_GetObjectItem(r, "id")->valuestring, "resp_9");
    cr_expect_str_eq(cJSON_GetObjectItem(r, "status")->valuestring, "incomplete");
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "incomplete_details"), "reason")->valuestring,
                     "max_output_tokens");
    cJSON_Delete(r);
    cJSON_Delete(c);
    c = parse("{\"choices\":[]}");
    cr_expect_eq(qt_tr_resp_chat_to_responses(c, &r, NULL, 0), QT_ERR_INVALID);
    cJSON_Delete(c);
}

typedef struct {
    char types[64][48];
    int n;
    long last_seq;
    int seq_ok;
    char text[256], args[256];
    cJSON *final;
} rsink;

static int collect(void *ud, const char *event, const cJSON *data)
{
    rsink *s = ud;
    const char *type = cJSON_GetObjectItem(data, "type")->valuestring;
    cr_expect_str_eq(event, type);
    long seq = (long)cJSON_GetObjectItem(data, "sequence_number")->valuedouble;
    if (seq != s->last_seq + 1)
        s->seq_ok = 0;
    s->last_seq = seq;
    if (s->n < 64)
        snprintf(s->types[s->n++], sizeof s->types[0], "%s", type);
    const cJSON *d = cJSON_GetObjectItem(data, "delta");
    if (!strcmp(type, "response.output_text.delta"))
        strncat(s->text, d->valuestring, sizeof s->text - strlen(s->text) - 1);
    if (!strcmp(type, "response.function_call_arguments.delta"))
        strncat(s->args, d->valuestring, sizeof s->args - strlen(s->args) - 1);
    if (!strcmp(type, "response.completed") || !strcmp(type, "response.incomplete")) {
        cJSON_Delete(s->final);
        s->final = cJSON_Duplicate(cJSON_GetObjectItem(data, "response"), 1);
    }
    return 0;
}

Test(translate_responses, chunks_become_responses_events)
{
    static const char *const chunks[] = {
        "{\"id\":\"msg_7\",\"object\":\"chat.completion.chunk\",\"model\":\"claude\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
        "{\"id\":\"msg_7\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}",
        "{\"id\":\"msg_7\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}",
        "{\"id\":\"msg_7\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
        "[{\"index\":0,\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
        "{\"id\":\"msg_7\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
        "[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]}}]}",
        "{\"id\":\"msg_7\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
        "[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]}}]}",
        "{\"id\":\"msg_7\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},"
        "\"finish_reason\":\"tool_calls\"}]}",
        "{\"id\":\"msg_7\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
        "\"completion_tokens\":4,\"prompt_tokens_details\":{\"cached_tokens\":3}}}",
    };
    qt_tr_rstream *st = qt_tr_rstream_new(1700000000);
    cr_assert_not_null(st);
    rsink s = { .last_seq = -1, .seq_ok = 1 };
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        cJSON *c = parse(chunks[i]);
        cr_assert_eq(qt_tr_rstream_chunk(st, c, collect, &s), QT_OK);
        cJSON_Delete(c);
    }
    cr_assert_eq(qt_tr_rstream_end(st, collect, &s), QT_OK);
    cr_expect_eq(qt_tr_rstream_end(st, collect, &s), QT_OK, "a second end sends nothing");
    static const char *const want[] = {
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed",
    };
    cr_assert_eq(s.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < s.n; i++)
        cr_expect_str_eq(s.types[i], want[i], "event %d", i);
    cr_expect(s.seq_ok, "sequence numbers 0, 1, 2, ...");
    cr_expect_str_eq(s.text, "Hello");
    cr_expect_str_eq(s.args, "{\"a\":1}");
    cr_assert_not_null(s.final);
    expect_json(s.final,
        "{\"id\":\"resp_msg_7\",\"object\":\"response\",\"created_at\":1700000000,\"status\":\"completed\","
        "\"error\":null,\"incomplete_details\":null,\"model\":\"claude\",\"output\":["
        "{\"type\":\"message\",\"id\":\"msg_7\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":["
        "{\"type\":\"output_text\",\"text\":\"Hello\",\"annotations\":[]}]},"
        "{\"type\":\"function_call\",\"id\":\"fc_toolu_1\",\"call_id\":\"toolu_1\",\"name\":\"f\","
        "\"arguments\":\"{\\\"a\\\":1}\",\"status\":\"completed\"}],"
        "\"parallel_tool_calls\":true,\"previous_response_id\":null,\"store\":false,"
        "\"usage\":{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":3},\"output_tokens\":4,"
        "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":13}}");
    cJSON_Delete(s.final);
    qt_tr_rstream_free(st);

    /* Nothing at all still makes a well-formed stream, and a cut one is
     * incomplete. */
    st = qt_tr_rstream_new(1);
    rsink e = { .last_seq = -1, .seq_ok = 1 };
    cJSON *cut = parse("{\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
                       "\"delta\":{\"content\":\"ab\"},\"finish_reason\":\"length\"}]}");
    cr_assert_eq(qt_tr_rstream_chunk(st, cut, collect, &e), QT_OK);
    cr_assert_eq(qt_tr_rstream_end(st, collect, &e), QT_OK);
    cr_expect_str_eq(e.types[e.n - 1], "response.incomplete");
    cJSON_Delete(cut);
    cJSON_Delete(e.final);
    qt_tr_rstream_free(st);
    st = qt_tr_rstream_new(1);
    rsink z = { .last_seq = -1, .seq_ok = 1 };
    cr_assert_eq(qt_tr_rstream_end(st, collect, &z), QT_OK);
    cr_expect_str_eq(z.types[0], "response.created");
    cr_expect_str_eq(z.types[z.n - 1], "response.completed");
    cJSON_Delete(z.final);
    qt_tr_rstream_free(st);
}
