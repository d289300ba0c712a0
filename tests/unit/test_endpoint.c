/* Unit tests of the endpoints beyond chat (jobs.h qt_endpoint,
 * provider_endpoint.c): job lines of each kind, what each provider kind
 * sends for them, how their answers are read, and what the client gets. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "quotatop/jobs.h"
#include "quotatop/provider.h"

static qt_config *cfg;

static void setup(void)
{
    const char *json =
        "{\"providers\": {\"oa\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:1/v1\"},"
        "                 \"an\": {\"kind\": \"anthropic\", \"base_url\": \"http://127.0.0.1:2/v1\"}},"
        " \"models\": {\"gpt\": {\"providers\": [\"oa\"]}, \"claude\": {\"providers\": [\"an\"],"
        "             \"upstream_model\": \"claude-x\"}}}";
    qt_diag d = { 0 };
    cfg = qt_config_parse(json, strlen(json), &d);
    qt_diag_free(&d);
    cr_assert_not_null(cfg);
}

static void teardown(void) { qt_config_free(cfg); }

TestSuite(endpoint, .init = setup, .fini = teardown);

static qt_job *parse(const char *line, char *err, size_t errlen)
{
    qt_job *job = NULL;
    err[0] = '\0';
    qt_job_parse(line, strlen(line), 1, cfg, &job, NULL, NULL, err, errlen);
    return job;
}

Test(endpoint, names_round_trip)
{
    for (int i = 0; i < QT_ENDPOINT_COUNT; i++)
        cr_assert_eq(qt_endpoint_parse(qt_endpoint_name((qt_endpoint)i)), i);
    cr_assert_eq(qt_endpoint_parse("chat/completions"), -1);
    cr_assert_eq(qt_endpoint_parse(NULL), -1);
}

Test(endpoint, job_lines_of_each_kind)
{
    char err[256];
    qt_job *j = parse("{\"model\":\"gpt\",\"endpoint\":\"embeddings\",\"input\":[\"abcd\",\"efgh ijkl\"]}",
                      err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    cr_assert_eq(j->endpoint, QT_ENDPOINT_EMBEDDINGS);
    cr_assert_eq(j->prompt_chars, 13);   /* a batch counts each item */
    cr_assert_eq(j->n_messages, 2);
    qt_job_free(j);

    j = parse("{\"model\":\"gpt\",\"endpoint\":\"responses\",\"input\":\"hello\",\"instructions\":\"be kind\","
              "\"max_output_tokens\":77}", err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    cr_assert_eq(j->endpoint, QT_ENDPOINT_RESPONSES);
    cr_assert_eq(j->prompt_chars, 12);
    cr_assert_eq(j->max_tokens, 77);
    qt_job_free(j);

    j = parse("{\"model\":\"claude\",\"endpoint\":\"messages\",\"system\":\"sys\",\"max_tokens\":9,"
              "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", err, sizeof err);
    cr_assert_not_null(j, "%s", err);
    cr_assert_eq(j->endpoint, QT_ENDPOINT_MESSAGES);
    cr_assert_eq(j->prompt_chars, 5);   /* the system prompt counts */
    qt_job_free(j);
}

Test(endpoint, bad_lines_name_the_problem)
{
    char err[256];
    cr_assert_null(parse("{\"model\":\"gpt\",\"endpoint\":\"embed\",\"input\":\"x\"}", err, sizeof err));
    cr_assert(strstr(err, "\"endpoint\" must be"), "%s", err);
    cr_assert_null(parse("{\"model\":\"gpt\",\"endpoint\":\"embeddings\"}", err, sizeof err));
    cr_assert(strstr(err, "no \"input\""), "%s", err);
    cr_assert_null(parse("{\"model\":\"gpt\",\"endpoint\":\"responses\",\"input\":[]}", err, sizeof err));
    cr_assert(strstr(err, "non-empty"), "%s", err);
}

static cJSON *built_body(qt_provider_kind kind, const char *job, const char *model, bool stream,
                         const char **path)
{
    cJSON *j = cJSON_Parse(job);
    qt_provider_request req = { 0 };
    char err[256] = "";
    int mi = qt_config_model_index(cfg, model);
    qt_err rc = qt_provider_ops_for(kind)->build_request(j, &cfg->models[mi], "sk-test", stream, &req,
                                                         err, sizeof err);
    cJSON_Delete(j);
    if (rc != QT_OK)
        return NULL;
    *path = req.path;
    cJSON *b = cJSON_Parse(req.body);
    qt_provider_request_free(&req);
    return b;
}

Test(endpoint, openai_kind_sends_each_endpoint_to_its_path)
{
    const char *path = NULL;
    cJSON *b = built_body(QT_KIND_OPENAI, "{\"endpoint\":\"embeddings\",\"model\":\"gpt\",\"id\":\"x\","
                          "\"input\":[\"a\"],\"dimensions\":8}", "gpt", false, &path);
    cr_assert_not_null(b);
    cr_assert_str_eq(path, "/embeddings");
    cr_assert_null(cJSON_GetObjectItem(b, "endpoint"));   /* quotatop's field stays home */
    cr_assert_null(cJSON_GetObjectItem(b, "id"));
    cr_assert_eq(cJSON_GetObjectItem(b, "dimensions")->valueint, 8);
    cJSON_Delete(b);

    b = built_body(QT_KIND_OPENAI, "{\"endpoint\":\"responses\",\"model\":\"gpt\",\"input\":\"hi\","
                   "\"previous_response_id\":\"resp_1\",\"store\":true}", "gpt", true, &path);
    cr_assert_not_null(b);
    cr_assert_str_eq(path, "/responses");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "previous_response_id")->valuestring, "resp_1");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(b, "store")));
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(b, "stream")));
    cr_assert_null(cJSON_GetObjectItem(b, "stream_options"));   /* chat only */
    cJSON_Delete(b);

    /* A messages job to an openai-kind model: a chat request. */
    b = built_body(QT_KIND_OPENAI, "{\"endpoint\":\"messages\",\"model\":\"gpt\",\"system\":\"sys\","
                   "\"max_tokens\":20,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "gpt",
                   false, &path);
    cr_assert_not_null(b);
    cr_assert_str_eq(path, "/chat/completions");
    cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "messages"), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(m0, "role")->valuestring, "system");
    cJSON_Delete(b);
}

Test(endpoint, anthropic_kind_takes_messages_as_they_are)
{
    const char *path = NULL;
    cJSON *b = built_body(QT_KIND_ANTHROPIC,
                          "{\"endpoint\":\"messages\",\"model\":\"claude\",\"workflow\":\"w\",\"system\":"
                          "[{\"type\":\"text\",\"text\":\"s\",\"cache_control\":{\"type\":\"ephemeral\"}}],"
                          "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"thinking\":"
                          "{\"type\":\"enabled\",\"budget_tokens\":1024}}", "claude", true, &path);
    cr_assert_not_null(b);
    cr_assert_str_eq(path, "/messages");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "model")->valuestring, "claude-x");
    cr_assert_null(cJSON_GetObjectItem(b, "workflow"));
    cr_assert_not_null(cJSON_GetObjectItem(b, "thinking"));   /* unknown to the translation: kept */
    cr_assert_not_null(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "system"), 0),
                                           "cache_control"));
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(b, "max_tokens")));   /* Anthropic requires it */
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(b, "stream")));
    cJSON_Delete(b);
}

Test(endpoint, anthropic_kind_cannot_carry_responses_or_embeddings)
{
    char why[160] = "";
    cJSON *j = cJSON_Parse("{\"endpoint\":\"embeddings\",\"model\":\"claude\",\"input\":\"x\"}");
    cr_assert_not(qt_provider_can_carry(QT_KIND_ANTHROPIC, j, why, sizeof why));
    cr_assert(strstr(why, "embeddings"), "%s", why);
    cr_assert(qt_provider_can_carry(QT_KIND_OPENAI, j, why, sizeof why));
    cJSON_Delete(j);
    j = cJSON_Parse("{\"endpoint\":\"messages\",\"model\":\"claude\",\"messages\":[]}");
    cr_assert(qt_provider_can_carry(QT_KIND_ANTHROPIC, j, why, sizeof why));
    cJSON_Delete(j);
}

Test(endpoint, responses_answer_is_read_and_forwarded_as_sent)
{
    const char *body = "{\"id\":\"resp_9\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"gpt-x\","
                       "\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hel\"},"
                       "{\"type\":\"output_text\",\"text\":\"lo\"}]},{\"type\":\"function_call\",\"call_id\":\"c1\","
                       "\"name\":\"f\",\"arguments\":\"{}\"}],\"usage\":{\"input_tokens\":11,\"output_tokens\":7,"
                       "\"input_tokens_details\":{\"cached_tokens\":4},\"total_tokens\":18},\"extra\":1}";
    qt_provider_result r;
    char err[256] = "";
    cr_assert_eq(qt_provider_ops_for(QT_KIND_OPENAI)->parse_response(body, strlen(body), &r, err, sizeof err),
                 QT_OK, "%s", err);
    cr_assert_eq(r.prompt_tokens, 11);
    cr_assert_eq(r.completion_tokens, 7);
    cr_assert_eq(r.cached_tokens, 4);
    cr_assert_str_eq(r.content, "Hello");
    cr_assert_str_eq(r.id, "resp_9");
    cr_assert_str_eq(r.finish_reason, "tool_calls");
    cr_assert(strstr(r.tool_calls, "\"name\":\"f\""), "%s", r.tool_calls);
    char *ans = qt_provider_answer_json(QT_ENDPOINT_RESPONSES, &r);
    cr_assert_str_eq(ans, body);   /* byte for byte */
    free(ans);
    qt_provider_result_free(&r);
}

Test(endpoint, embeddings_answer_counts_input_only)
{
    const char *body = "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.5,-1]}],"
                       "\"model\":\"emb\",\"usage\":{\"prompt_tokens\":6,\"total_tokens\":6}}";
    qt_provider_result r;
    char err[256] = "";
    cr_assert_eq(qt_provider_ops_for(QT_KIND_OPENAI)->parse_response(body, strlen(body), &r, err, sizeof err),
                 QT_OK, "%s", err);
    cr_assert_eq(r.prompt_tokens, 6);
    cr_assert_eq(r.completion_tokens, 0);
    cr_assert_str_eq(r.embeddings, "[[0.5,-1]]");
    qt_provider_result_free(&r);
    const char *bad = "{\"object\":\"list\",\"data\":[],\"usage\":{\"prompt_tokens\":1e300}}";
    cr_assert_neq(qt_provider_ops_for(QT_KIND_OPENAI)->parse_response(bad, strlen(bad), &r, err, sizeof err),
                  QT_OK);
}

Test(endpoint, messages_client_gets_the_anthropic_message)
{
    /* From an anthropic-kind upstream: its own bytes. */
    const char *msg = "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
                      "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"stop_reason\":\"end_turn\","
                      "\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}";
    qt_provider_result r;
    char err[256] = "";
    cr_assert_eq(qt_provider_ops_for(QT_KIND_ANTHROPIC)->parse_response(msg, strlen(msg), &r, err, sizeof err),
                 QT_OK, "%s", err);
    char *ans = qt_provider_answer_json(QT_ENDPOINT_MESSAGES, &r);
    cr_assert_str_eq(ans, msg);
    free(ans);
    qt_provider_result_free(&r);
    /* From an openai-kind upstream: translated, tool calls as tool_use. */
    const char *cc = "{\"id\":\"c\",\"object\":\"chat.completion\",\"model\":\"gpt-x\",\"choices\":[{\"index\":0,"
                     "\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
                     "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
                     "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}";
    cr_assert_eq(qt_provider_ops_for(QT_KIND_OPENAI)->parse_response(cc, strlen(cc), &r, err, sizeof err),
                 QT_OK, "%s", err);
    ans = qt_provider_answer_json(QT_ENDPOINT_MESSAGES, &r);
    cJSON *a = cJSON_Parse(ans);
    cr_assert_str_eq(cJSON_GetObjectItem(a, "type")->valuestring, "message");
    cr_assert_str_eq(cJSON_GetObjectItem(a, "stop_reason")->valuestring, "tool_use");
    cJSON *b0 = cJSON_GetArrayItem(cJSON_GetObjectItem(a, "content"), 0);
    cr_assert_str_eq(cJSON_GetObjectItem(b0, "type")->valuestring, "tool_use");
    cr_assert_str_eq(cJSON_GetObjectItem(b0, "id")->valuestring, "call_1");
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(b0, "input"), "a")->valueint, 1);
    cJSON_Delete(a);
    free(ans);
    qt_provider_result_free(&r);
}
