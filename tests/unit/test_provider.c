/* test_provider.c: Criterion suite "provider".
 *
 * Request building for both kinds (exact bodies, upstream_model, passthrough
 * and dropped fields, system/part translation, merged turns, default
 * max_tokens, auth headers, the key absent from everything but its header
 * line), response parsing (good bodies and a table of malformed, truncated
 * and incomplete ones), error bodies (a table), rate-limit headers of both
 * families, the SSE parser over every chunk boundary, and the stream
 * translators (Anthropic -> OpenAI chunks, OpenAI pass-through, errors).
 */
#include "quotatop/provider.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_expect.h"

#define KEY "sk-test-SECRET-1234567890"

static qt_model_cfg model_cfg(const char *name, const char *upstream, int def_max)
{
    qt_model_cfg m;
    memset(&m, 0, sizeof m);
    m.name = (char *)name;
    m.upstream_model = (char *)upstream;
    m.default_max_tokens = def_max;
    return m;
}

/* Builds a request for job text with kind; asserts success. */
static void build(qt_provider_kind kind, const char *job_text, const qt_model_cfg *m,
                  const char *key, bool stream, qt_provider_request *req)
{
    cJSON *job = parse(job_text);
    char err[QT_PROVIDER_ERRLEN] = "";
    qt_err rc = qt_provider_ops_for(kind)->build_request(job, m, key, stream, req, err, sizeof err);
    cJSON_Delete(job);
    cr_assert_eq(rc, QT_OK, "build_request: %s", err);
}

static qt_err build_fail(qt_provider_kind kind, const char *job_text, const char *key,
                         char *err, size_t errlen)
{
    qt_model_cfg m = model_cfg("m", "up-m", 100);
    cJSON *job = parse(job_text);
    qt_provider_request req;
    memset(&req, 0x5a, sizeof req);
    qt_err rc = qt_provider_ops_for(kind)->build_request(job, &m, key, false, &req, err, errlen);
    cJSON_Delete(job);
    cr_assert_null(req.body, "body left NULL on error");
    cr_assert_eq(req.n_headers, 0);
    return rc;
}

/* ---- request building --------------------------------------------------- */

Test(provider, ops_table)
{
    cr_assert_str_eq(qt_provider_ops_for(QT_KIND_OPENAI)->name, "openai");
    cr_assert_str_eq(qt_provider_ops_for(QT_KIND_ANTHROPIC)->name, "anthropic");
    cr_assert_null(qt_provider_ops_for((qt_provider_kind)7));
}

Test(provider, openai_body_exact)
{
    qt_model_cfg m = model_cfg("gpt-4o", "gpt-4o-2024-08-06", 1024);
    qt_provider_request req;
    build(QT_KIND_OPENAI,
          "{\"id\":\"j1\",\"workflow\":\"support\",\"priority\":5,\"model\":\"gpt-4o\","
          "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":256,"
          "\"temperature\":0.2,\"seed\":7,\"response_format\":{\"type\":\"json_object\"},"
          "\"stream\":true,\"quotatop_note\":\"x\"}",
          &m, KEY, false, &req);
    cr_assert_str_eq(req.path, "/chat/completions");
    cr_assert_str_eq(req.body,
                     "{\"model\":\"gpt-4o-2024-08-06\","
                     "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":256,"
                     "\"temperature\":0.2,\"seed\":7,\"response_format\":{\"type\":\"json_object\"}}");
    cr_assert_eq(req.body_len, strlen(req.body));
    qt_provider_request_free(&req);
    cr_assert_null(req.body, "free zeroes the struct");
}

Test(provider, openai_stream_adds_include_usage)
{
    qt_model_cfg m = model_cfg("gpt-4o", "gpt-4o", 1024);
    qt_provider_request req;
    build(QT_KIND_OPENAI,
          "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
          "\"stream_options\":{\"include_usage\":false}}",
          &m, NULL, true, &req);
    cr_assert_str_eq(req.body,
                     "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                     "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    qt_provider_request_free(&req);
}

Test(provider, openai_job_without_model_gets_one_first)
{
    qt_model_cfg m = model_cfg("fast", "gpt-4o-mini", 1024);
    qt_provider_request req;
    build(QT_KIND_OPENAI, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}",
          &m, NULL, false, &req);
    cr_assert_str_eq(req.body,
                     "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}");
    qt_provider_request_free(&req);
}

Test(provider, openai_auth_header_and_key_only_there)
{
    qt_model_cfg m = model_cfg("gpt-4o", "gpt-4o", 1024);
    qt_provider_request req;
    build(QT_KIND_OPENAI, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
          &m, KEY, false, &req);
    cr_assert_eq(req.n_headers, 2);
    cr_assert_str_eq(req.headers[0], "Authorization: Bearer " KEY);
    cr_assert_str_eq(req.headers[1], "Content-Type: application/json");
    cr_assert_null(strstr(req.body, KEY), "key not in body");
    qt_provider_request_free(&req);
}

Test(provider, no_key_no_auth_line)
{
    qt_model_cfg m = model_cfg("gpt-4o", "gpt-4o", 1024);
    qt_provider_request req;
    build(QT_KIND_OPENAI, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &m, NULL, false, &req);
    cr_assert_eq(req.n_headers, 1);
    cr_assert_str_eq(req.headers[0], "Content-Type: application/json");
    qt_provider_request_free(&req);
    build(QT_KIND_ANTHROPIC, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &m, NULL, false, &req);
    cr_assert_eq(req.n_headers, 2);
    cr_assert_str_eq(req.headers[0], "anthropic-version: 2023-06-01");
    qt_provider_request_free(&req);
}

Test(provider, anthropic_body_exact)
{
    qt_model_cfg m = model_cfg("claude", "claude-3-5-sonnet-20241022", 1024);
    qt_provider_request req;
    build(QT_KIND_ANTHROPIC,
          "{\"id\":\"j2\",\"workflow\":\"w\",\"priority\":1,\"model\":\"claude\","
          "\"messages\":["
          "{\"role\":\"system\",\"content\":\"Be brief.\"},"
          "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"No emoji.\"}]},"
          "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},"
          "{\"role\":\"user\",\"content\":\"c\"},"
          "{\"role\":\"assistant\",\"content\":\"ok\"},"
          "{\"role\":\"user\",\"content\":\"d\"}],"
          "\"max_tokens\":300,\"temperature\":1.5,\"top_p\":0.9,\"stop\":\"END\","
          "\"seed\":1,\"n\":1,\"presence_penalty\":0.5,\"tools\":[],\"response_format\":{},"
          "\"user\":\"u-42\",\"logit_bias\":{}}",
          &m, KEY, false, &req);
    cr_assert_str_eq(req.path, "/messages");
    cr_assert_str_eq(req.body,
                     "{\"model\":\"claude-3-5-sonnet-20241022\",\"max_tokens\":300,"
                     "\"system\":\"Be brief.\\n\\nNo emoji.\","
                     "\"messages\":[{\"role\":\"user\",\"content\":\"a\\nb\\n\\nc\"},"
                     "{\"role\":\"assistant\",\"content\":\"ok\"},"
                     "{\"role\":\"user\",\"content\":\"d\"}],"
                     "\"temperature\":1,\"top_p\":0.9,\"stop_sequences\":[\"END\"],"
                     "\"metadata\":{\"user_id\":\"u-42\"}}");
    qt_provider_request_free(&req);
}

Test(provider, anthropic_default_max_tokens_stream_and_stop_array)
{
    qt_model_cfg m = model_cfg("claude", "claude-x", 777);
    qt_provider_request req;
    build(QT_KIND_ANTHROPIC,
          "{\"system\":\"S\",\"messages\":[{\"role\":\"system\",\"content\":\"T\"},"
          "{\"role\":\"user\",\"content\":\"q\"}],\"stop\":[\"a\",\"b\"],\"top_k\":5}",
          &m, KEY, true, &req);
    cr_assert_str_eq(req.body,
                     "{\"model\":\"claude-x\",\"max_tokens\":777,\"system\":\"S\\n\\nT\","
                     "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
                     "\"top_k\":5,\"stop_sequences\":[\"a\",\"b\"],\"stream\":true}");
    qt_provider_request_free(&req);
    /* max_completion_tokens stands in for max_tokens. */
    build(QT_KIND_ANTHROPIC,
          "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"max_completion_tokens\":55}",
          &m, NULL, false, &req);
    cr_assert_str_eq(req.body,
                     "{\"model\":\"claude-x\",\"max_tokens\":55,"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    qt_provider_request_free(&req);
}

Test(provider, anthropic_headers_and_key_only_there)
{
    qt_model_cfg m = model_cfg("claude", "claude-x", 100);
    qt_provider_request req;
    build(QT_KIND_ANTHROPIC, "{\"messages\":[{\"role\":\"user\",\"content\":\"" KEY "x\"}]}",
          &m, KEY, false, &req);
    cr_assert_eq(req.n_headers, 3);
    cr_assert_str_eq(req.headers[0], "x-api-key: " KEY);
    cr_assert_str_eq(req.headers[1], "anthropic-version: 2023-06-01");
    cr_assert_str_eq(req.headers[2], "Content-Type: application/json");
    for (size_t i = 1; i < req.n_headers; i++)
        cr_assert_null(strstr(req.headers[i], KEY));
    qt_provider_request_free(&req);
}

/* Parameters hold arrays, not pointers: Criterion runs each parameterized
 * test in a fresh process image where pointers into the parent's data (even
 * to string literals, under PIE/ASLR) are not valid. */
struct bad_job {
    int kind;
    char job[320];
    char want[96];      /* substring of the error */
};

ParameterizedTestParameters(provider, build_refuses_bad_jobs)
{
    static struct bad_job cases[] = {
        {QT_KIND_OPENAI, "[1,2]", "not a JSON object"},
        {QT_KIND_OPENAI, "{\"model\":\"m\"}", "no messages"},
        {QT_KIND_OPENAI, "{\"messages\":[]}", "no messages"},
        {QT_KIND_ANTHROPIC, "{\"messages\":\"hi\"}", "no messages"},
        {QT_KIND_ANTHROPIC, "{\"messages\":[{\"role\":\"tool\",\"content\":\"r\"}]}",
         "messages[0]: a tool message needs tool_call_id"},
        {QT_KIND_ANTHROPIC,
         "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":"
         "[{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"x\"}}]}]}",
         "messages[1].content[0]: part type \"input_audio\" cannot be carried"},
        {QT_KIND_ANTHROPIC,
         "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"data:image/png,xyz\"}}]}]}", "not base64"},
        {QT_KIND_ANTHROPIC, "{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", "\"n\": 2 cannot"},
        {QT_KIND_ANTHROPIC,
         "{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\","
         "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{x\"}}]}]}",
         "tool_calls[0].function.arguments is not a JSON object"},
        {QT_KIND_ANTHROPIC, "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}", "no user or assistant"},
        {QT_KIND_ANTHROPIC, "{\"messages\":[{\"role\":\"user\",\"content\":null}]}", "messages[0].content"},
        {QT_KIND_ANTHROPIC, "{\"messages\":[{\"content\":\"x\"}]}", "messages[0]: role missing"},
        {QT_KIND_ANTHROPIC,
         "{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]}]}", "content missing"},
    };
    return cr_make_param_array(struct bad_job, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_job *bj, provider, build_refuses_bad_jobs)
{
    char err[QT_PROVIDER_ERRLEN] = "";
    qt_err rc = build_fail((qt_provider_kind)bj->kind, bj->job, KEY, err, sizeof err);
    cr_assert_eq(rc, QT_ERR_INVALID, "%s", bj->job);
    cr_assert_not_null(strstr(err, bj->want), "error '%s' should contain '%s'", err, bj->want);
    cr_assert_null(strstr(err, KEY), "key never in an error");
}

Test(provider, key_with_newline_refused_without_echo)
{
    char err[QT_PROVIDER_ERRLEN] = "";
    const char *evil = "sk-abc\r\nX-Evil: 1";
    for (int k = 0; k < 2; k++) {
        qt_err rc = build_fail((qt_provider_kind)k,
                               "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", evil,
                               err, sizeof err);
        cr_assert_eq(rc, QT_ERR_INVALID);
        cr_assert_null(strstr(err, "sk-abc"), "no key in '%s'", err);
    }
}

/* ---- responses --------------------------------------------------------- */

static void parse_ok(qt_provider_kind kind, const char *body, qt_provider_result *r)
{
    char err[QT_PROVIDER_ERRLEN] = "";
    qt_err rc = qt_provider_ops_for(kind)->parse_response(body, strlen(body), r, err, sizeof err);
    cr_assert_eq(rc, QT_OK, "parse_response: %s", err);
}

Test(provider, openai_response)
{
    qt_provider_result r;
    parse_ok(QT_KIND_OPENAI,
             "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-2024\","
             "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},"
             "\"finish_reason\":\"stop\"}],"
             "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":40,\"total_tokens\":52}}\n",
             &r);
    cr_assert_str_eq(r.content, "Hello");
    cr_assert_eq(r.prompt_tokens, 12);
    cr_assert_eq(r.completion_tokens, 40);
    cr_assert_str_eq(r.finish_reason, "stop");
    cr_assert_str_eq(r.id, "chatcmpl-1");
    cr_assert_str_eq(r.model, "gpt-4o-2024");
    qt_provider_result_free(&r);
}

Test(provider, openai_response_null_content_is_empty)
{
    qt_provider_result r;
    parse_ok(QT_KIND_OPENAI,
             "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[]},\"finish_reason\":\"tool_calls\"}],"
             "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}",
             &r);
    cr_assert_str_eq(r.content, "");
    cr_assert_str_eq(r.id, "");
    cr_assert_str_eq(r.finish_reason, "tool_calls");
    qt_provider_result_free(&r);
}

Test(provider, anthropic_response)
{
    qt_provider_result r;
    parse_ok(QT_KIND_ANTHROPIC,
             "{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
             "\"content\":[{\"type\":\"text\",\"text\":\"Hel\"},{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}},"
             "{\"type\":\"text\",\"text\":\"lo\"}],"
             "\"stop_reason\":\"max_tokens\",\"stop_sequence\":null,"
             "\"usage\":{\"input_tokens\":10,\"output_tokens\":5,\"cache_read_input_tokens\":3}}",
             &r);
    cr_assert_str_eq(r.content, "Hello");
    cr_assert_eq(r.prompt_tokens, 13, "input + cache reads");
    cr_assert_eq(r.completion_tokens, 5);
    cr_assert_str_eq(r.finish_reason, "length");
    cr_assert_str_eq(r.id, "msg_01");
    cr_assert_str_eq(r.model, "claude-x");
    qt_provider_result_free(&r);
}

struct bad_body {
    int kind;
    char body[256];
    char want[96];
};

ParameterizedTestParameters(provider, malformed_responses)
{
    static struct bad_body cases[] = {
        {QT_KIND_OPENAI, "", "empty"},
        {QT_KIND_OPENAI, "   \n", "empty"},
        {QT_KIND_OPENAI, "<html>502 Bad Gateway</html>", "not JSON at byte 0"},
        {QT_KIND_OPENAI, "{\"choices\": [1, 2], \"x\": tru }", "not JSON at byte"},
        {QT_KIND_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"hi", "truncated"},
        {QT_KIND_OPENAI, "{\"a\":1} trailing", "not JSON at byte 8"},
        {QT_KIND_OPENAI, "[]", "not a JSON object"},
        {QT_KIND_OPENAI, "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}", "choices missing"},
        {QT_KIND_OPENAI, "{\"choices\":[],\"usage\":{}}", "choices[0] missing"},
        {QT_KIND_OPENAI, "{\"choices\":[{}]}", "choices[0].message missing"},
        {QT_KIND_OPENAI, "{\"choices\":[{\"message\":{}}]}", "choices[0].message.content missing"},
        {QT_KIND_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"x\"}}]}", "usage missing"},
        {QT_KIND_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"completion_tokens\":1}}",
         "usage.prompt_tokens missing"},
        {QT_KIND_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":\"1\"}}",
         "usage.prompt_tokens is not a number"},
        /* issue 12, defect 2: absurd usage is a malformed answer, not a bill */
        {QT_KIND_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":1e300,\"completion_tokens\":1}}",
         "malformed usage: usage.prompt_tokens is 1e+300"},
        {QT_KIND_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1e15}}",
         "malformed usage: usage.completion_tokens is 1e+15"},
        {QT_KIND_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":1}}",
         "malformed usage: usage.prompt_tokens is -5"},
        {QT_KIND_ANTHROPIC, "{\"content\":[],\"usage\":{\"input_tokens\":3e9,\"output_tokens\":1}}",
         "malformed usage: usage.input_tokens is 3e+09"},
        /* defect 12: a 200 whose body is an error object quotes the error */
        {QT_KIND_OPENAI, "{\"error\":{\"message\":\"The server had an error while processing\",\"type\":\"server_error\"}}",
         "upstream answered 2xx with an error: server_error: The server had an error while processing"},
        {QT_KIND_OPENAI, "{\"error\":\"quota exceeded\"}", "with an error: error: quota exceeded"},
        {QT_KIND_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":1}}",
         "usage.completion_tokens missing"},
        {QT_KIND_ANTHROPIC, "not json", "not JSON at byte 0"},
        {QT_KIND_ANTHROPIC, "{\"content\":[{\"type\":\"text\",\"text\":\"a\"}],\"usage\":{\"input_tok", "truncated"},
        {QT_KIND_ANTHROPIC, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}",
         "upstream answered 2xx with an error: overloaded_error"},
        {QT_KIND_ANTHROPIC, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal\"}}",
         "with an error: api_error: Internal"},
        {QT_KIND_ANTHROPIC, "{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}", "content missing"},
        {QT_KIND_ANTHROPIC, "{\"content\":[]}", "usage missing"},
        {QT_KIND_ANTHROPIC, "{\"content\":[],\"usage\":{\"output_tokens\":1}}", "usage.input_tokens missing"},
        {QT_KIND_ANTHROPIC, "{\"content\":[],\"usage\":{\"input_tokens\":1}}", "usage.output_tokens missing"},
    };
    return cr_make_param_array(struct bad_body, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_body *bb, provider, malformed_responses)
{
    char err[QT_PROVIDER_ERRLEN] = "";
    qt_provider_result r;
    memset(&r, 0x5a, sizeof r);
    qt_err rc = qt_provider_ops_for((qt_provider_kind)bb->kind)
                    ->parse_response(bb->body, strlen(bb->body), &r, err, sizeof err);
    cr_assert_eq(rc, QT_ERR_INVALID, "body %s", bb->body);
    cr_assert_not_null(strstr(err, bb->want), "error '%s' should contain '%s'", err, bb->want);
    cr_assert_null(r.content, "result zeroed on error");
    qt_provider_result_free(&r);
}

Test(provider, truncation_at_every_length_never_crashes)
{
    const char *full =
        "{\"id\":\"msg_01\",\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}],"
        "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":10,\"output_tokens\":5}}";
    size_t n = strlen(full);
    for (int k = 0; k < 2; k++) {
        const qt_provider_ops *ops = qt_provider_ops_for((qt_provider_kind)k);
        for (size_t len = 0; len < n; len++) {
            char *copy = malloc(len ? len : 1);   /* exact size: reading past would be a bug */
            memcpy(copy, full, len);
            char err[QT_PROVIDER_ERRLEN] = "";
            qt_provider_result r;
            cr_assert_eq(ops->parse_response(copy, len, &r, err, sizeof err), QT_ERR_INVALID,
                         "%s, %zu bytes", ops->name, len);
            cr_assert(err[0] != '\0');
            free(copy);
        }
    }
    qt_provider_result r;
    char err[QT_PROVIDER_ERRLEN];
    cr_assert_eq(qt_provider_ops_for(QT_KIND_ANTHROPIC)->parse_response(full, n, &r, err, sizeof err), QT_OK);
    qt_provider_result_free(&r);
}

Test(provider, to_openai_json_exact)
{
    qt_provider_result r = {.id = "msg_01", .model = "claude-x", .content = "Hi \"there\"",
                            .finish_reason = "stop", .prompt_tokens = 10, .completion_tokens = 5};
    char *s = qt_provider_to_openai_json(&r, "claude", 1700000000);
    cr_assert_str_eq(s,
                     "{\"id\":\"msg_01\",\"object\":\"chat.completion\",\"created\":1700000000,"
                     "\"model\":\"claude\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                     "\"content\":\"Hi \\\"there\\\"\"},\"finish_reason\":\"stop\"}],"
                     "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15}}");
    free(s);
    r.finish_reason = "";
    s = qt_provider_to_openai_json(&r, NULL, 1);
    cr_assert_not_null(strstr(s, "\"model\":\"claude-x\""));
    cr_assert_not_null(strstr(s, "\"finish_reason\":null"));
    free(s);
}

/* ---- error bodies -------------------------------------------------------- */

struct err_case {
    int kind;
    int status;
    char body[320];
    char type[64], code[64], message[256];
};

ParameterizedTestParameters(provider, error_bodies)
{
    static struct err_case cases[] = {
        {QT_KIND_OPENAI, 429,
         "{\"error\":{\"message\":\"Rate limit reached for gpt-4o\",\"type\":\"requests\","
         "\"param\":null,\"code\":\"rate_limit_exceeded\"}}",
         "requests", "rate_limit_exceeded", "Rate limit reached for gpt-4o"},
        {QT_KIND_OPENAI, 429,
         "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
         "\"param\":null,\"code\":\"insufficient_quota\"}}",
         "insufficient_quota", "insufficient_quota", "You exceeded your current quota"},
        {QT_KIND_OPENAI, 400,
         "{\"error\":{\"message\":\"This model's maximum context length is 8192 tokens\","
         "\"type\":\"invalid_request_error\",\"param\":\"messages\",\"code\":\"context_length_exceeded\"}}",
         "invalid_request_error", "context_length_exceeded", "This model's maximum context length is 8192 tokens"},
        {QT_KIND_OPENAI, 401,
         "{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":\"invalid_request_error\","
         "\"code\":\"invalid_api_key\"}}",
         "invalid_request_error", "invalid_api_key", "Incorrect API key provided"},
        {QT_KIND_ANTHROPIC, 529,
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
         "overloaded_error", "", "Overloaded"},
        {QT_KIND_ANTHROPIC, 429,
         "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Number of request tokens has exceeded your per-minute rate limit\"}}",
         "rate_limit_error", "", "Number of request tokens has exceeded your per-minute rate limit"},
        {QT_KIND_ANTHROPIC, 401,
         "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key\"}}",
         "authentication_error", "", "invalid x-api-key"},
        {QT_KIND_OPENAI, 500, "{\"error\":{\"message\":\"boom\",\"code\":503}}", "", "503", "boom"},
        {QT_KIND_OPENAI, 502, "{\"error\":\"upstream connect error\"}", "", "", "upstream connect error"},
        {QT_KIND_OPENAI, 502, "<html>\r\n<h1>502  Bad\tGateway</h1>\n</html>", "", "",
         "<html> <h1>502 Bad Gateway</h1> </html>"},
        {QT_KIND_ANTHROPIC, 503, "{\"error\":{\"type\":\"overloaded_error\",\"mess", "", "",
         "{\"error\":{\"type\":\"overloaded_error\",\"mess"},
        {QT_KIND_ANTHROPIC, 500, "", "", "", ""},
    };
    return cr_make_param_array(struct err_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct err_case *ec, provider, error_bodies)
{
    qt_provider_error e;
    memset(&e, 0x5a, sizeof e);
    qt_provider_ops_for((qt_provider_kind)ec->kind)->parse_error(ec->status, ec->body, strlen(ec->body), &e);
    cr_assert_eq(e.status, ec->status);
    cr_assert_str_eq(e.type, ec->type);
    cr_assert_str_eq(e.code, ec->code);
    cr_assert_str_eq(e.message, ec->message);
}

Test(provider, error_garbage_is_capped_at_200_printable)
{
    char body[1000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (i % 7 == 3) ? '\x01' : (char)('a' + i % 26);
    qt_provider_error e;
    qt_provider_ops_for(QT_KIND_OPENAI)->parse_error(503, body, sizeof body, &e);
    cr_assert_eq(strlen(e.message), 200);
    for (size_t i = 0; i < 200; i++)
        cr_assert(e.message[i] >= 0x20 && e.message[i] < 0x7f, "printable at %zu", i);
    qt_provider_ops_for(QT_KIND_OPENAI)->parse_error(503, NULL, 0, &e);
    cr_assert_str_eq(e.message, "");
}

/* ---- rate-limit headers ---------------------------------------------------- */

#define NOW 1704067200000LL   /* 2024-01-01T00:00:00Z */

Test(provider, limit_headers_openai)
{
    qt_http_header h[] = {
        {"X-RateLimit-Limit-Requests", "500"},
        {"x-ratelimit-remaining-requests", "499"},
        {"x-ratelimit-reset-requests", "120ms"},
        {"x-ratelimit-limit-tokens", "30000"},
        {"X-RATELIMIT-REMAINING-TOKENS", "29000"},
        {"x-ratelimit-reset-tokens", "6m0s"},
        {"content-type", "application/json"},
    };
    qt_provider_limits l;
    qt_provider_ops_for(QT_KIND_OPENAI)->parse_limit_headers(h, QT_ARRAY_LEN(h), NOW, &l);
    cr_assert_eq(l.requests.limit, 500);
    cr_assert_eq(l.requests.remaining, 499);
    cr_assert_eq(l.requests.reset_ms, 120);
    cr_assert_eq(l.tokens.limit, 30000);
    cr_assert_eq(l.tokens.remaining, 29000);
    cr_assert_eq(l.tokens.reset_ms, 360000);
    cr_assert_eq(l.input_tokens.limit, -1);
    cr_assert_eq(l.output_tokens.reset_ms, -1);
    cr_assert_eq(l.retry_after_ms, -1);
}

Test(provider, limit_headers_openai_fractional_and_retry_after_ms)
{
    qt_http_header h[] = {
        {"x-ratelimit-reset-requests", "1.5s"},
        {"x-ratelimit-reset-tokens", "2"},          /* bare number: seconds */
        {"retry-after", "20"},
        {"retry-after-ms", "1234.2"},               /* more precise: wins */
    };
    qt_provider_limits l;
    qt_provider_ops_for(QT_KIND_OPENAI)->parse_limit_headers(h, QT_ARRAY_LEN(h), NOW, &l);
    cr_assert_eq(l.requests.reset_ms, 1500);
    cr_assert_eq(l.tokens.reset_ms, 2000);
    cr_assert_eq(l.retry_after_ms, 1235);
}

Test(provider, limit_headers_anthropic)
{
    qt_http_header h[] = {
        {"anthropic-ratelimit-requests-limit", "50"},
        {"anthropic-ratelimit-requests-remaining", "0"},
        {"anthropic-ratelimit-requests-reset", "2024-01-01T00:00:30Z"},
        {"anthropic-ratelimit-tokens-limit", "80000"},
        {"anthropic-ratelimit-tokens-remaining", "79000"},
        {"anthropic-ratelimit-tokens-reset", "2024-01-01T00:00:01.5Z"},
        {"Anthropic-RateLimit-Input-Tokens-Limit", "40000"},
        {"anthropic-ratelimit-input-tokens-remaining", "39500"},
        {"anthropic-ratelimit-input-tokens-reset", "2024-01-01T02:00:02+02:00"},
        {"anthropic-ratelimit-output-tokens-limit", "8000"},
        {"anthropic-ratelimit-output-tokens-remaining", "7900"},
        {"anthropic-ratelimit-output-tokens-reset", "2023-12-31T23:59:00Z"},  /* past: 0 */
        {"retry-after", "Mon, 01 Jan 2024 00:00:07 GMT"},
    };
    qt_provider_limits l;
    qt_provider_ops_for(QT_KIND_ANTHROPIC)->parse_limit_headers(h, QT_ARRAY_LEN(h), NOW, &l);
    cr_assert_eq(l.requests.limit, 50);
    cr_assert_eq(l.requests.remaining, 0);
    cr_assert_eq(l.requests.reset_ms, 30000);
    cr_assert_eq(l.tokens.limit, 80000);
    cr_assert_eq(l.tokens.remaining, 79000);
    cr_assert_eq(l.tokens.reset_ms, 1500);
    cr_assert_eq(l.input_tokens.limit, 40000);
    cr_assert_eq(l.input_tokens.remaining, 39500);
    cr_assert_eq(l.input_tokens.reset_ms, 2000);
    cr_assert_eq(l.output_tokens.limit, 8000);
    cr_assert_eq(l.output_tokens.remaining, 7900);
    cr_assert_eq(l.output_tokens.reset_ms, 0);
    cr_assert_eq(l.retry_after_ms, 7000);
}

Test(provider, limit_headers_malformed_stay_unknown)
{
    qt_http_header h[] = {
        {"x-ratelimit-limit-requests", "lots"},
        {"x-ratelimit-remaining-requests", "-3"},
        {"x-ratelimit-reset-requests", "soon"},
        {"x-ratelimit-limit-tokens", ""},
        {"anthropic-ratelimit-tokens-reset", "2024-13-45T99:00:00Z"},
        {"retry-after", "whenever"},
        {"retry-after-ms", "1e"},
        {NULL, "x"},
        {"x-ratelimit-limit-tokens", NULL},
    };
    qt_provider_limits l;
    memset(&l, 0, sizeof l);
    qt_provider_ops_for(QT_KIND_OPENAI)->parse_limit_headers(h, QT_ARRAY_LEN(h), NOW, &l);
    cr_assert_eq(l.requests.limit, -1);
    cr_assert_eq(l.requests.remaining, -1);
    cr_assert_eq(l.requests.reset_ms, -1);
    cr_assert_eq(l.tokens.limit, -1);
    cr_assert_eq(l.tokens.reset_ms, -1);
    cr_assert_eq(l.retry_after_ms, -1);
}

/* ---- SSE ------------------------------------------------------------------- */

typedef struct {
    char log[4096];   /* "event|data|id\n" per event */
    int n;
    int stop_after;   /* stop when n reaches it; 0 = never */
} sse_log;

static int log_event(void *ud, const qt_sse_event *ev)
{
    sse_log *l = ud;
    size_t len = strlen(l->log);
    snprintf(l->log + len, sizeof l->log - len, "%s|%s|%s\n", ev->event, ev->data, ev->id);
    cr_assert_eq(strlen(ev->data), ev->data_len);
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static const char SSE_STREAM[] =
    ": comment\r\n"
    "event: first\r\n"
    "data: one\r\n"
    "\r\n"
    "data:two-a\n"
    "data: two-b\n"
    "id: 7\n"
    "\n"
    "event: ignored-no-data\r"
    "\r"
    "data\r"
    "\r"
    "retry: 10\n"
    "unknown: x\n"
    "data:  spaced\n"
    "\n"
    "data: incomplete at end";

static const char SSE_EXPECTED[] =
    "first|one|\n"
    "|two-a\ntwo-b|7\n"
    "||7\n"
    "| spaced|7\n";

Test(provider, sse_whole)
{
    qt_sse *p = qt_sse_new();
    sse_log l = {0};
    cr_assert_eq(qt_sse_feed(p, SSE_STREAM, strlen(SSE_STREAM), log_event, &l), QT_OK);
    cr_assert_str_eq(l.log, SSE_EXPECTED);
    /* The unfinished event completes when its blank line arrives. */
    cr_assert_eq(qt_sse_feed(p, "\n\n", 2, log_event, &l), QT_OK);
    cr_assert_eq(l.n, 5);
    cr_assert_not_null(strstr(l.log, "|incomplete at end|7\n"));
    qt_sse_free(p);
}

Test(provider, sse_every_split_point)
{
    size_t n = strlen(SSE_STREAM);
    for (size_t cut = 0; cut <= n; cut++) {
        for (size_t cut2 = cut; cut2 <= n; cut2 += 7) {
            qt_sse *p = qt_sse_new();
            sse_log l = {0};
            cr_assert_eq(qt_sse_feed(p, SSE_STREAM, cut, log_event, &l), QT_OK);
            cr_assert_eq(qt_sse_feed(p, SSE_STREAM + cut, cut2 - cut, log_event, &l), QT_OK);
            cr_assert_eq(qt_sse_feed(p, SSE_STREAM + cut2, n - cut2, log_event, &l), QT_OK);
            cr_assert_str_eq(l.log, SSE_EXPECTED, "cut at %zu and %zu", cut, cut2);
            qt_sse_free(p);
        }
    }
    /* byte by byte */
    qt_sse *p = qt_sse_new();
    sse_log l = {0};
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(qt_sse_feed(p, SSE_STREAM + i, 1, log_event, &l), QT_OK);
    cr_assert_str_eq(l.log, SSE_EXPECTED);
    qt_sse_free(p);
}

Test(provider, sse_crlf_split_is_one_line_end)
{
    /* "data: a\r" | "\ndata: b\r\n\r\n": the LF after a CR in the next feed
     * must not end an (empty) line and dispatch early. */
    qt_sse *p = qt_sse_new();
    sse_log l = {0};
    qt_sse_feed(p, "data: a\r", 8, log_event, &l);
    qt_sse_feed(p, "\ndata: b\r\n\r\n", 12, log_event, &l);
    cr_assert_str_eq(l.log, "|a\nb|\n");
    qt_sse_free(p);
}

Test(provider, sse_callback_stops)
{
    qt_sse *p = qt_sse_new();
    sse_log l = {.stop_after = 1};
    cr_assert_eq(qt_sse_feed(p, "data: 1\n\ndata: 2\n\n", 18, log_event, &l), QT_ERR_CLOSED);
    cr_assert_eq(l.n, 1);
    qt_sse_free(p);
}

/* ---- stream translation ----------------------------------------------------- */

typedef struct {
    char out[8192];   /* chunks, one per line */
    int n;
} chunk_log;

static int log_chunk(void *ud, const char *json, size_t len)
{
    chunk_log *c = ud;
    cr_assert_eq(strlen(json), len);
    size_t o = strlen(c->out);
    snprintf(c->out + o, sizeof c->out - o, "%s\n", json);
    c->n++;
    return 0;
}

static const char ANTHROPIC_SSE[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
    "\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" world\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
    "\"usage\":{\"output_tokens\":15}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

#define CHUNK_HEAD "{\"id\":\"msg_1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"claude\","
static const char ANTHROPIC_CHUNKS[] =
    CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n"
    CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n"
    CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},\"finish_reason\":null}]}\n"
    CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n"
    CHUNK_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":25,\"completion_tokens\":15,\"total_tokens\":40,"
               "\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n";

Test(provider, stream_anthropic_to_openai_any_split)
{
    size_t n = strlen(ANTHROPIC_SSE);
    for (size_t step = 1; step <= n; step = step < 8 ? step + 1 : step * 3) {
        qt_provider_stream *s = qt_provider_stream_new(QT_KIND_ANTHROPIC, "claude", 1700000000);
        chunk_log c = {0};
        for (size_t i = 0; i < n; i += step) {
            size_t k = (n - i < step) ? n - i : step;
            cr_assert_eq(qt_provider_stream_feed(s, ANTHROPIC_SSE + i, k, log_chunk, &c), QT_OK);
        }
        cr_assert_str_eq(c.out, ANTHROPIC_CHUNKS, "step %zu", step);
        cr_assert(qt_provider_stream_done(s));
        cr_assert_null(qt_provider_stream_error(s));
        qt_provider_result r;
        char err[QT_PROVIDER_ERRLEN] = "";
        cr_assert_eq(qt_provider_stream_result(s, &r, err, sizeof err), QT_OK, "%s", err);
        cr_assert_str_eq(r.content, "Hello world");
        cr_assert_eq(r.prompt_tokens, 25);
        cr_assert_eq(r.completion_tokens, 15);
        cr_assert_str_eq(r.finish_reason, "stop");
        cr_assert_str_eq(r.id, "msg_1");
        cr_assert_str_eq(r.model, "claude-x");
        qt_provider_result_free(&r);
        qt_provider_stream_free(s);
    }
}

Test(provider, stream_openai_passthrough_with_usage)
{
    const char *up =
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024\","
        "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024\","
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024\","
        "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024\","
        "\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\"total_tokens\":10}}\n\n"
        "data: [DONE]\n\n";
    qt_provider_stream *s = qt_provider_stream_new(QT_KIND_OPENAI, "gpt-4o", 0);
    chunk_log c = {0};
    cr_assert_eq(qt_provider_stream_feed(s, up, strlen(up), log_chunk, &c), QT_OK);
    cr_assert_eq(c.n, 4, "[DONE] is not a chunk");
    cr_assert_null(strstr(c.out, "gpt-4o-2024"), "model renamed in every chunk");
    cr_assert_not_null(strstr(c.out, "\"usage\":{\"prompt_tokens\":9"));
    cr_assert(qt_provider_stream_done(s));
    qt_provider_result r;
    cr_assert_eq(qt_provider_stream_result(s, &r, NULL, 0), QT_OK);
    cr_assert_str_eq(r.content, "Hi");
    cr_assert_eq(r.prompt_tokens, 9);
    cr_assert_eq(r.completion_tokens, 1);
    cr_assert_str_eq(r.finish_reason, "length");
    cr_assert_str_eq(r.model, "gpt-4o-2024");
    qt_provider_result_free(&r);
    qt_provider_stream_free(s);
}

Test(provider, stream_without_usage_is_an_error)
{
    const char *up =
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
        "data: [DONE]\n\n";
    qt_provider_stream *s = qt_provider_stream_new(QT_KIND_OPENAI, NULL, 0);
    chunk_log c = {0};
    cr_assert_eq(qt_provider_stream_feed(s, up, strlen(up), log_chunk, &c), QT_OK);
    qt_provider_result r;
    char err[QT_PROVIDER_ERRLEN] = "";
    cr_assert_eq(qt_provider_stream_result(s, &r, err, sizeof err), QT_ERR_INVALID);
    cr_assert_str_eq(err, "stream ended without usage");
    cr_assert_str_eq(r.content, "Hi");
    cr_assert_eq(r.prompt_tokens, -1);
    qt_provider_result_free(&r);
    qt_provider_stream_free(s);
}

Test(provider, stream_error_events)
{
    const char *up =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n"
        "event: error\n"
        "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    qt_provider_stream *s = qt_provider_stream_new(QT_KIND_ANTHROPIC, NULL, 0);
    chunk_log c = {0};
    cr_assert_eq(qt_provider_stream_feed(s, up, strlen(up), log_chunk, &c), QT_ERR_IO);
    const qt_provider_error *e = qt_provider_stream_error(s);
    cr_assert_not_null(e);
    cr_assert_str_eq(e->type, "overloaded_error");
    cr_assert_str_eq(e->message, "Overloaded");
    cr_assert_not(qt_provider_stream_done(s));
    qt_provider_stream_free(s);

    s = qt_provider_stream_new(QT_KIND_OPENAI, NULL, 0);
    const char *bad = "data: {\"error\":{\"message\":\"quota\",\"code\":\"insufficient_quota\"}}\n\n";
    cr_assert_eq(qt_provider_stream_feed(s, bad, strlen(bad), log_chunk, &c), QT_ERR_IO);
    cr_assert_str_eq(qt_provider_stream_error(s)->code, "insufficient_quota");
    qt_provider_stream_free(s);

    s = qt_provider_stream_new(QT_KIND_OPENAI, NULL, 0);
    const char *garbage = "data: {not json\n\n";
    cr_assert_eq(qt_provider_stream_feed(s, garbage, strlen(garbage), log_chunk, &c), QT_ERR_INVALID);
    qt_provider_stream_free(s);
}

/* ---- agents' answers ----------------------------------------------------- */

Test(provider, openai_answer_kept_as_sent_with_every_detail)
{
    const char *body =
        "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-2024-08-06\","
        "\"system_fingerprint\":\"fp_x\",\"x_unknown\":{\"a\":[1,2.50]},\"choices\":["
        "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"k\\\":1}\"}}]},"
        "\"logprobs\":{\"content\":[]},\"finish_reason\":\"tool_calls\"},"
        "{\"index\":1,\"message\":{\"role\":\"assistant\",\"content\":\"second\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":2000,\"completion_tokens\":300,\"total_tokens\":2300,"
        "\"prompt_tokens_details\":{\"cached_tokens\":1536},\"completion_tokens_details\":{\"reasoning_tokens\":256}}}\n";
    qt_provider_result r;
    parse_ok(QT_KIND_OPENAI, body, &r);
    cr_expect_str_eq(r.openai_json, body, "forwarded byte for byte");
    cr_expect_str_eq(r.model, "gpt-4o-2024-08-06");
    cr_expect_str_eq(r.finish_reason, "tool_calls");
    cr_expect_str_eq(r.content, "");
    cr_expect_str_eq(r.tool_calls, "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                                   "\"arguments\":\"{\\\"k\\\":1}\"}}]");
    cr_assert_not_null(r.choices);
    cJSON *ch = cJSON_Parse(r.choices);
    cr_expect_eq(cJSON_GetArraySize(ch), 2);
    cJSON_Delete(ch);
    cr_expect_eq(r.prompt_tokens, 2000);
    cr_expect_eq(r.cached_tokens, 1536);
    cr_expect_eq(r.completion_tokens, 300, "reasoning tokens are part of the completion");
    cr_expect_eq(r.reasoning_tokens, 256);
    qt_provider_result_free(&r);
}

Test(provider, anthropic_tool_use_answer_translated)
{
    qt_provider_result r;
    parse_ok(QT_KIND_ANTHROPIC,
             "{\"id\":\"msg_t\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4\","
             "\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\","
             "\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}],\"stop_reason\":\"tool_use\","
             "\"usage\":{\"input_tokens\":10,\"output_tokens\":20,\"cache_read_input_tokens\":100,"
             "\"cache_creation_input_tokens\":50}}",
             &r);
    cr_expect_str_eq(r.content, "Checking.");
    cr_expect_str_eq(r.finish_reason, "tool_calls");
    cr_expect_str_eq(r.tool_calls, "[{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":"
                                   "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]");
    cr_expect_eq(r.prompt_tokens, 160);
    cr_expect_eq(r.cached_tokens, 100);
    cr_expect_eq(r.cache_write_tokens, 50);
    cr_expect_null(r.choices);
    cJSON *o = cJSON_Parse(r.openai_json);
    cr_assert_not_null(o);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "object")->valuestring, "chat.completion");
    cr_expect_str_eq(cJSON_GetObjectItem(o, "model")->valuestring, "claude-sonnet-4", "the model that answered");
    cJSON_Delete(o);
    qt_provider_result_free(&r);
}

Test(provider, stream_anthropic_tool_use_reassembled)
{
    const char *up =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"model\":\"claude-x\",\"usage\":"
        "{\"input_tokens\":5,\"cache_read_input_tokens\":20,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"toolu_9\",\"name\":\"f\",\"input\":{}}}\n\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"{\\\"a\\\":\"}}\n\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"[1,2]}\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    size_t n = strlen(up);
    for (size_t step = 1; step <= n; step = step < 4 ? step + 1 : step * 5) {
        qt_provider_stream *s = qt_provider_stream_new(QT_KIND_ANTHROPIC, NULL, 7);
        chunk_log c = {0};
        for (size_t i = 0; i < n; i += step)
            cr_assert_eq(qt_provider_stream_feed(s, up + i, n - i < step ? n - i : step, log_chunk, &c), QT_OK);
        cr_expect_not_null(strstr(c.out, "\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"[1,2]}\"}}]"),
                           "%s", c.out);
        qt_provider_result r;
        cr_assert_eq(qt_provider_stream_result(s, &r, NULL, 0), QT_OK);
        cr_expect_str_eq(r.tool_calls, "[{\"id\":\"toolu_9\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                                       "\"arguments\":\"{\\\"a\\\":[1,2]}\"}}]");
        cr_expect_str_eq(r.finish_reason, "tool_calls");
        cr_expect_eq(r.prompt_tokens, 25);
        cr_expect_eq(r.cached_tokens, 20);
        cr_expect_eq(r.completion_tokens, 9);
        cr_expect_null(r.openai_json);
        qt_provider_result_free(&r);
        qt_provider_stream_free(s);
    }
}

Test(provider, can_carry)
{
    cJSON *plain = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    cJSON *n2 = parse("{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
    char why[200] = "";
    cr_expect(qt_provider_can_carry(QT_KIND_OPENAI, n2, why, sizeof why));
    cr_expect(qt_provider_can_carry(QT_KIND_ANTHROPIC, plain, why, sizeof why));
    cr_expect_not(qt_provider_can_carry(QT_KIND_ANTHROPIC, n2, why, sizeof why));
    cr_expect_not_null(strstr(why, "\"n\": 2"), "%s", why);
    cJSON_Delete(plain);
    cJSON_Delete(n2);
}
