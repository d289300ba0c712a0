/* test_translate.c: Criterion suite "translate".
 *
 * Tables of request pairs (OpenAI -> Anthropic: system, text and image parts,
 * tools and every tool_choice, tool calls and tool results with ids kept,
 * stop, sampling, max tokens; and back), answers both ways (text, tool_use,
 * stop reasons, usage with cache tokens), what cannot cross (the field is
 * named), streamed answers both ways reassembled into the whole answer
 * (tool-call argument deltas included), and the fuzz entry on odd inputs.
 */
#include "quotatop/translate.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_expect.h"


/* Parameters hold arrays, not pointers (Criterion runs each case in a fresh
 * process image). */
struct req_case {
    char in[900];
    char want[900];
};

ParameterizedTestParameters(translate, openai_request_to_anthropic)
{
    static struct req_case cases[] = {
        /* system and developer lifted, parts joined, merged user turns */
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
         "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"D\"}]},"
         "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},"
         "{\"role\":\"user\",\"content\":\"c\"}],\"max_tokens\":10,\"max_completion_tokens\":20}",
         "{\"model\":\"up\",\"max_tokens\":20,\"system\":\"S\\n\\nD\","
         "\"messages\":[{\"role\":\"user\",\"content\":\"a\\nb\\n\\nc\"}]}"},
        /* images: data URL and http URL */
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
         "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBOR\"}},"
         "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.jpg\",\"detail\":\"low\"}}]}]}",
         "{\"model\":\"up\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":["
         "{\"type\":\"text\",\"text\":\"look\"},"
         "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBOR\"}},"
         "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.jpg\"}}]}]}"},
        /* tools, named tool_choice, parallel off, stop, sampling, user */
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"w?\"}],\"tools\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"get\",\"description\":\"d\",\"parameters\":{\"type\":\"object\","
         "\"properties\":{\"city\":{\"type\":\"string\"}}}}},{\"type\":\"function\",\"function\":{\"name\":\"x\"}}],"
         "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get\"}},\"parallel_tool_calls\":false,"
         "\"stop\":[\"A\",\"B\"],\"temperature\":1.7,\"top_p\":0.5,\"user\":\"u1\",\"seed\":3}",
         "{\"model\":\"up\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"w?\"}],"
         "\"tools\":[{\"name\":\"get\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\","
         "\"properties\":{\"city\":{\"type\":\"string\"}}}},{\"name\":\"x\",\"input_schema\":{\"type\":\"object\","
         "\"properties\":{}}}],\"tool_choice\":{\"type\":\"tool\",\"name\":\"get\",\"disable_parallel_tool_use\":true},"
         "\"temperature\":1,\"top_p\":0.5,\"stop_sequences\":[\"A\",\"B\"],\"metadata\":{\"user_id\":\"u1\"}}"},
        /* tool_choice required / none / auto */
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"tools\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"required\"}",
         "{\"model\":\"up\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
         "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
         "\"tool_choice\":{\"type\":\"any\"}}"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"tools\":[{\"type\":\"function\","
         "\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"none\"}",
         "{\"model\":\"up\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
         "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
         "\"tool_choice\":{\"type\":\"none\"}}"},
        /* a tool round trip: assistant tool_calls, two tool results merged
         * into one user turn, ids kept, then the user again */
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
         "{\"role\":\"assistant\",\"content\":\"let me\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
         "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}},{\"id\":\"call_2\",\"type\":\"function\","
         "\"function\":{\"name\":\"g\",\"arguments\":\"\"}}]},"
         "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"r1\"},"
         "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":[{\"type\":\"text\",\"text\":\"r2\"}]},"
         "{\"role\":\"user\",\"content\":\"thanks\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
         "\"tool_choice\":\"auto\"}",
         "{\"model\":\"up\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
         "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"let me\"},"
         "{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"f\",\"input\":{\"a\":1}},"
         "{\"type\":\"tool_use\",\"id\":\"call_2\",\"name\":\"g\",\"input\":{}}]},"
         "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"call_1\",\"content\":\"r1\"},"
         "{\"type\":\"tool_result\",\"tool_use_id\":\"call_2\",\"content\":[{\"type\":\"text\",\"text\":\"r2\"}]},"
         "{\"type\":\"text\",\"text\":\"thanks\"}]}],"
         "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
         "\"tool_choice\":{\"type\":\"auto\"}}"},
        /* a tool result after user text still comes first; an empty
         * assistant message is left out */
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"\","
         "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
         "{\"role\":\"user\",\"content\":\"also\"},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"r\"},"
         "{\"role\":\"assistant\",\"content\":\"\"}]}",
         "{\"model\":\"up\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
         "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"c1\",\"name\":\"f\",\"input\":{}}]},"
         "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"c1\",\"content\":\"r\"},"
         "{\"type\":\"text\",\"text\":\"also\"}]}]}"},
        /* cache_control keeps blocks */
        {"{\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"big\","
         "\"cache_control\":{\"type\":\"ephemeral\"}}]},{\"role\":\"user\",\"content\":\"q\"}]}",
         "{\"model\":\"up\",\"max_tokens\":100,\"system\":[{\"type\":\"text\",\"text\":\"big\","
         "\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}"},
    };
    return cr_make_param_array(struct req_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct req_case *c, translate, openai_request_to_anthropic)
{
    cJSON *in = parse(c->in), *out = NULL;
    char err[256] = "";
    cr_assert(qt_tr_openai_carries_to_anthropic(in, err, sizeof err), "%s", err);
    cr_assert_eq(qt_tr_req_openai_to_anthropic(in, "up", 100, false, &out, err, sizeof err), QT_OK, "%s", err);
    expect_json(out, c->want);
    cJSON_Delete(out);
    cJSON_Delete(in);
}

struct refuse_case {
    char in[300];
    char field[64];
};

ParameterizedTestParameters(translate, cannot_cross_names_the_field)
{
    static struct refuse_case cases[] = {
        {"{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", "\"n\": 2"},
        {"{\"logprobs\":true,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", "\"logprobs\""},
        {"{\"top_logprobs\":3,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", "\"top_logprobs\""},
        {"{\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{}},\"messages\":[{\"role\":\"user\","
         "\"content\":\"q\"}]}", "\"response_format\" json_schema"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}", "part type \"input_audio\""},
        {"{\"messages\":[{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]}", "role \"function\""},
        {"{\"tools\":[{\"type\":\"web_search\"}],\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
         "tools[0]: type \"web_search\""},
    };
    return cr_make_param_array(struct refuse_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct refuse_case *c, translate, cannot_cross_names_the_field)
{
    cJSON *in = parse(c->in), *out = NULL;
    char why[256] = "", err[256] = "";
    cr_assert_not(qt_tr_openai_carries_to_anthropic(in, why, sizeof why));
    cr_assert_not_null(strstr(why, c->field), "'%s' names %s", why, c->field);
    cr_assert_eq(qt_tr_req_openai_to_anthropic(in, "up", 100, false, &out, err, sizeof err), QT_ERR_LIMIT);
    cr_assert_null(out);
    cr_assert_str_eq(err, why);
    cJSON_Delete(in);
}

Test(translate, anthropic_request_to_openai)
{
    cJSON *in = parse(
        "{\"model\":\"claude\",\"max_tokens\":50,\"system\":[{\"type\":\"text\",\"text\":\"S\"}],"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"q\"},"
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AAA\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"s\"},"
        "{\"type\":\"text\",\"text\":\"ok\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{\"a\":1}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"r\"},"
        "{\"type\":\"text\",\"text\":\"more\"}]}],"
        "\"tools\":[{\"name\":\"f\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\"}}],"
        "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
        "\"stop_sequences\":[\"X\"],\"temperature\":0.3,\"top_k\":4,\"metadata\":{\"user_id\":\"u\"}}");
    cJSON *out = NULL;
    char err[256] = "";
    cr_assert_eq(qt_tr_req_anthropic_to_openai(in, NULL, true, &out, err, sizeof err), QT_OK, "%s", err);
    expect_json(out,
        "{\"model\":\"claude\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"q\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAA\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"ok\",\"tool_calls\":[{\"id\":\"toolu_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"r\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"more\"}]}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\","
        "\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":\"required\",\"parallel_tool_calls\":false,"
        "\"max_tokens\":50,\"temperature\":0.3,\"stop\":[\"X\"],\"user\":\"u\",\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true}}");
    cJSON_Delete(out);
    cJSON_Delete(in);
}

Test(translate, request_round_trip_keeps_tool_ids)
{
    const char *oai =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_9\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"k\\\":\\\"v\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_9\",\"content\":\"done\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},\"max_tokens\":7}";
    cJSON *in = parse(oai), *anth = NULL, *back = NULL;
    char err[256] = "";
    cr_assert_eq(qt_tr_req_openai_to_anthropic(in, NULL, 1, false, &anth, err, sizeof err), QT_OK, "%s", err);
    cr_assert_eq(qt_tr_req_anthropic_to_openai(anth, NULL, false, &back, err, sizeof err), QT_OK, "%s", err);
    expect_json(back,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_9\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"k\\\":\\\"v\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_9\",\"content\":\"done\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},\"max_tokens\":7}");
    cJSON_Delete(back);
    cJSON_Delete(anth);
    cJSON_Delete(in);
}

/* ---- answers -------------------------------------------------------------- */

struct resp_case {
    char anth[700];
    char oai[700];
};

ParameterizedTestParameters(translate, anthropic_answer_to_openai)
{
    static struct resp_case cases[] = {
        {"{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
         "\"content\":[{\"type\":\"text\",\"text\":\"Hel\"},{\"type\":\"text\",\"text\":\"lo\"}],"
         "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"X\","
         "\"usage\":{\"input_tokens\":10,\"output_tokens\":5,\"cache_read_input_tokens\":3,"
         "\"cache_creation_input_tokens\":2}}",
         "{\"id\":\"msg_1\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"claude-x\","
         "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},"
         "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":15,"
         "\"completion_tokens\":5,\"total_tokens\":20,\"prompt_tokens_details\":{\"cached_tokens\":3},"
         "\"cache_creation_input_tokens\":2}}"},
        {"{\"id\":\"msg_2\",\"model\":\"c\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\","
         "\"name\":\"get\",\"input\":{\"city\":\"Paris\"}}],\"stop_reason\":\"tool_use\","
         "\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}",
         "{\"id\":\"msg_2\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"c\","
         "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
         "\"tool_calls\":[{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"get\","
         "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],"
         "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3,"
         "\"prompt_tokens_details\":{\"cached_tokens\":0}}}"},
        {"{\"id\":\"m\",\"model\":\"c\",\"content\":[],\"stop_reason\":\"max_tokens\","
         "\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}",
         "{\"id\":\"m\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"c\","
         "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
         "\"logprobs\":null,\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,"
         "\"completion_tokens\":0,\"total_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":0}}}"},
    };
    return cr_make_param_array(struct resp_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct resp_case *c, translate, anthropic_answer_to_openai)
{
    cJSON *in = parse(c->anth), *out = NULL;
    char err[256] = "";
    cr_assert_eq(qt_tr_resp_anthropic_to_openai(in, 5, &out, err, sizeof err), QT_OK, "%s", err);
    expect_json(out, c->oai);
    cJSON_Delete(out);
    cJSON_Delete(in);
}

Test(translate, openai_answer_to_anthropic)
{
    cJSON *in = parse(
        "{\"id\":\"chatcmpl-1\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":\"hi\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{\\\"x\\\":[1]}\"}}]},\"finish_reason\":\"tool_calls\"}],"
        "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":9,\"prompt_tokens_details\":{\"cached_tokens\":64}}}");
    cJSON *out = NULL;
    char err[256] = "";
    cr_assert_eq(qt_tr_resp_openai_to_anthropic(in, &out, err, sizeof err), QT_OK, "%s", err);
    expect_json(out,
        "{\"id\":\"chatcmpl-1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"gpt\",\"content\":["
        "{\"type\":\"text\",\"text\":\"hi\"},{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"f\","
        "\"input\":{\"x\":[1]}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{"
        "\"input_tokens\":36,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":64,\"output_tokens\":9}}");
    cJSON_Delete(out);
    cJSON_Delete(in);
}

Test(translate, stop_reasons_both_ways)
{
    const char *pairs[][2] = {{"end_turn", "stop"}, {"max_tokens", "length"}, {"tool_use", "tool_calls"},
                              {"refusal", "content_filter"}};
    for (size_t i = 0; i < 4; i++) {
        cr_expect_str_eq(qt_tr_finish_from_stop_reason(pairs[i][0]), pairs[i][1]);
        cr_expect_str_eq(qt_tr_stop_reason_from_finish(pairs[i][1]), pairs[i][0]);
    }
    cr_expect_str_eq(qt_tr_finish_from_stop_reason("stop_sequence"), "stop");
    cr_expect_null(qt_tr_finish_from_stop_reason(NULL));
}

/* ---- streams ---------------------------------------------------------------- */

typedef struct {
    qt_tr_acc *acc;
    char log[8192];
} sink;

static int collect(void *ud, const char *event, const cJSON *data)
{
    sink *s = ud;
    if (s->acc)
        qt_tr_acc_add(s->acc, data);
    char *t = cJSON_PrintUnformatted(data);
    size_t o = strlen(s->log);
    snprintf(s->log + o, sizeof s->log - o, "%s%s%s\n", event, event[0] ? " " : "", t);
    free(t);
    return 0;
}

static void feed(qt_tr_stream *st, const char *const *events, size_t n, sink *s)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *d = parse(events[i]);
        cr_assert_eq(qt_tr_stream_event(st, NULL, d, collect, s), QT_OK, "event %zu", i);
        cJSON_Delete(d);
    }
}

Test(translate, anthropic_stream_with_tool_use_reassembles)
{
    const char *ev[] = {
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_s\",\"model\":\"claude-x\",\"usage\":"
        "{\"input_tokens\":20,\"cache_read_input_tokens\":80,\"output_tokens\":1}}}",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me check.\"}}",
        "{\"type\":\"content_block_stop\",\"index\":0}",
        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_7\","
        "\"name\":\"get_weather\",\"input\":{}}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"ci\"}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ty\\\": \\\"Paris\\\"}\"}}",
        "{\"type\":\"content_block_stop\",\"index\":1}",
        "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_8\","
        "\"name\":\"f\",\"input\":{}}}",
        "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":33}}",
        "{\"type\":\"message_stop\"}",
    };
    qt_tr_stream *st = qt_tr_stream_new(QT_TR_ANTHROPIC_TO_OPENAI, 9);
    sink s = {.acc = qt_tr_acc_new()};
    feed(st, ev, sizeof ev / sizeof ev[0], &s);
    cr_assert(qt_tr_stream_done(st));
    cr_assert_not_null(strstr(s.log, "\"tool_calls\":[{\"index\":0,\"id\":\"toolu_7\",\"type\":\"function\","
                                     "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]"), "%s", s.log);
    cJSON *c = qt_tr_acc_completion(s.acc);
    expect_json(c,
        "{\"id\":\"msg_s\",\"object\":\"chat.completion\",\"created\":9,\"model\":\"claude-x\",\"choices\":["
        "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Let me check.\",\"tool_calls\":["
        "{\"id\":\"toolu_7\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
        "{\"id\":\"toolu_8\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
        "\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],"
        "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":33,\"total_tokens\":133,"
        "\"prompt_tokens_details\":{\"cached_tokens\":80}}}");
    cJSON_Delete(c);
    qt_tr_acc_free(s.acc);
    qt_tr_stream_free(st);
}

Test(translate, openai_stream_to_anthropic_events)
{
    const char *ev[] = {
        "{\"id\":\"c1\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
        "{\"id\":\"c1\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}",
        "{\"id\":\"c1\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
        "{\"id\":\"c1\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]}}]}",
        "{\"id\":\"c1\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"1}\"}}]}}]}",
        "{\"id\":\"c1\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
        "{\"id\":\"c1\",\"model\":\"gpt\",\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":7,"
        "\"prompt_tokens_details\":{\"cached_tokens\":10}}}",
    };
    qt_tr_stream *st = qt_tr_stream_new(QT_TR_OPENAI_TO_ANTHROPIC, 0);
    sink s = {0};
    feed(st, ev, sizeof ev / sizeof ev[0], &s);
    cr_assert_eq(qt_tr_stream_end(st, collect, &s), QT_OK);
    cr_assert(qt_tr_stream_done(st));
    cr_expect_str_eq(s.log,
        "message_start {\"type\":\"message_start\",\"message\":{\"id\":\"c1\",\"type\":\"message\",\"role\":\"assistant\","
        "\"model\":\"gpt\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,"
        "\"output_tokens\":0}}}\n"
        "content_block_start {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n"
        "content_block_delta {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n"
        "content_block_stop {\"type\":\"content_block_stop\",\"index\":0}\n"
        "content_block_start {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"call_1\",\"name\":\"f\",\"input\":{}}}\n"
        "content_block_delta {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"{\\\"a\\\":\"}}\n"
        "content_block_delta {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"1}\"}}\n"
        "content_block_stop {\"type\":\"content_block_stop\",\"index\":1}\n"
        "message_delta {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
        "\"usage\":{\"input_tokens\":40,\"cache_read_input_tokens\":10,\"output_tokens\":7}}\n"
        "message_stop {\"type\":\"message_stop\"}\n");
    qt_tr_stream_free(st);
}

Test(translate, chunks_reassemble_every_choice_and_field)
{
    const char *ev[] = {
        "{\"id\":\"c\",\"created\":3,\"model\":\"gpt-4o-2024\",\"system_fingerprint\":\"fp_1\",\"choices\":["
        "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"A\"},\"logprobs\":{\"content\":[{\"token\":\"A\","
        "\"logprob\":-0.5}]}},{\"index\":1,\"delta\":{\"role\":\"assistant\",\"content\":\"B\"}}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"},"
        "{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"length\"}]}",
        "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":4}}",
    };
    qt_tr_acc *a = qt_tr_acc_new();
    for (size_t i = 0; i < 3; i++) {
        cJSON *d = parse(ev[i]);
        cr_assert_eq(qt_tr_acc_add(a, d), QT_OK);
        cJSON_Delete(d);
    }
    cJSON *c = qt_tr_acc_completion(a);
    expect_json(c,
        "{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":3,\"model\":\"gpt-4o-2024\",\"choices\":["
        "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Aa\"},\"logprobs\":{\"content\":"
        "[{\"token\":\"A\",\"logprob\":-0.5}]},\"finish_reason\":\"length\"},"
        "{\"index\":1,\"message\":{\"role\":\"assistant\",\"content\":\"Bb\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":4},\"system_fingerprint\":\"fp_1\"}");
    cJSON_Delete(c);
    qt_tr_acc_free(a);
}

Test(translate, stream_error_event)
{
    qt_tr_stream *st = qt_tr_stream_new(QT_TR_ANTHROPIC_TO_OPENAI, 0);
    cJSON *d = parse("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}");
    cr_assert_eq(qt_tr_stream_event(st, "error", d, collect, &(sink){0}), QT_ERR_IO);
    cr_assert_not_null(qt_tr_stream_error(st));
    cJSON_Delete(d);
    qt_tr_stream_free(st);
}

Test(translate, fuzz_entry_survives_odd_inputs)
{
    const char *inputs[] = {
        "", "{", "null", "[]", "{\"messages\":[{}]}", "{\"messages\":[{\"role\":\"tool\"}]}",
        "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{}}]}]}",
        "{\"content\":[{\"type\":\"tool_use\"}],\"usage\":{}}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{}]}}]}",
        "message_start\t{\"type\":\"message_start\"}\n\t{\"type\":\"content_block_start\",\"index\":99999,"
        "\"content_block\":{\"type\":\"tool_use\"}}\n\t{\"type\":\"content_block_delta\",\"index\":-1,"
        "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"x\"}}",
        "{\"choices\":[{\"index\":100000,\"delta\":{\"tool_calls\":[{\"index\":5000}]}}]}\n{\"usage\":{}}",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        for (uint8_t sel = 0; sel < 12; sel++) {
            size_t n = strlen(inputs[i]);
            uint8_t *buf = malloc(n + 1);
            buf[0] = sel;
            memcpy(buf + 1, inputs[i], n);
            cr_assert_eq(qt_tr_fuzz(buf, n + 1), 0);
            free(buf);
        }
    }
    cr_assert_eq(qt_tr_fuzz(NULL, 0), 0);
}
