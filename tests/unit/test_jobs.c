/* test_jobs.c: job lines become jobs or clear reasons; result lines carry
 * every field of the contract; --resume finds the ok ids. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "quotatop/jobs.h"

static qt_config *cfg;

static void setup(void)
{
    const char *json = "{\"providers\": {\"oa\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:1/v1\"}},"
                       "\"models\": {\"gpt-4o\": {\"providers\": [\"oa\"]}}}";
    qt_diag d = { 0 };
    cfg = qt_config_parse(json, strlen(json), &d);
    cr_assert_not_null(cfg);
    qt_diag_free(&d);
}

static void teardown(void) { qt_config_free(cfg); }

TestSuite(jobs, .init = setup, .fini = teardown);

Test(jobs, full_job_line)
{
    const char *line = "{\"id\": \"j1\", \"workflow\": \"support\", \"priority\": 2, \"model\": \"gpt-4o\","
                       " \"messages\": [{\"role\": \"user\", \"content\": \"hello\"},"
                       " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"abc\"}]}],"
                       " \"max_tokens\": 64, \"temperature\": 0.2}";
    qt_job *j = NULL;
    char *id = NULL, *wf = NULL, err[256];
    cr_assert_eq(qt_job_parse(line, strlen(line), 3, cfg, &j, &id, &wf, err, sizeof err), QT_OK, "%s", err);
    cr_expect_str_eq(j->id, "j1");
    cr_expect_str_eq(j->workflow, "support");
    cr_expect_eq(j->priority, 2);
    cr_expect_str_eq(j->model, "gpt-4o");
    cr_expect_eq(j->model_idx, 0);
    cr_expect_eq(j->max_tokens, 64);
    cr_expect_eq(j->prompt_chars, 8);
    cr_expect_eq(j->line_no, 3);
    cr_expect_not_null(cJSON_GetObjectItem(j->body, "temperature"), "passthrough field lost");
    free(id);
    free(wf);
    qt_job_free(j);
}

Test(jobs, defaults_id_is_line_number)
{
    const char *line = "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}";
    qt_job *j = NULL;
    char err[256];
    cr_assert_eq(qt_job_parse(line, strlen(line), 17, cfg, &j, NULL, NULL, err, sizeof err), QT_OK);
    cr_expect_str_eq(j->id, "17");
    cr_expect_str_eq(j->workflow, "default");
    cr_expect_eq(j->priority, 5);
    cr_expect_eq(j->max_tokens, 0);
    qt_job_free(j);
}

struct bad_line {
    char line[200];
    char expect[120];
    char id[16];
};

static struct bad_line bad_lines[] = {
    { "{\"id\": \"a\", \"model\": ", "line 9: malformed JSON near column", "9" },
    { "[1,2]", "line 9: a job must be a JSON object", "9" },
    { "{\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", "line 9: missing \"model\"", "a" },
    { "{\"id\": \"b\", \"model\": \"gpt4o\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}",
      "line 9: unknown model \"gpt4o\"", "b" },
    { "{\"id\": \"c\", \"model\": \"gpt-4o\"}", "line 9: no \"messages\"", "c" },
    { "{\"id\": \"d\", \"model\": \"gpt-4o\", \"messages\": []}", "line 9: \"messages\" must be a non-empty array", "d" },
    { "{\"id\": 7, \"model\": \"gpt-4o\", \"messages\": [{\"content\": \"x\"}]}", "line 9: messages[0] needs a \"role\"", "7" },
    { "{\"model\": \"gpt-4o\", \"priority\": 11, \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}",
      "line 9: \"priority\" must be a whole number from 1", "9" },
    { "{\"model\": \"gpt-4o\", \"max_tokens\": -4, \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}",
      "line 9: \"max_tokens\" must be a positive number", "9" },
    { "{\"model\": 5, \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", "line 9: \"model\" must be a string", "9" },
};

ParameterizedTestParameters(jobs, bad_lines_are_named)
{
    return cr_make_param_array(struct bad_line, bad_lines, sizeof bad_lines / sizeof bad_lines[0]);
}

ParameterizedTest(struct bad_line *bl, jobs, bad_lines_are_named)
{
    qt_job *j = NULL;
    char *id = NULL, *wf = NULL, err[256] = "";
    cr_expect_eq(qt_job_parse(bl->line, strlen(bl->line), 9, cfg, &j, &id, &wf, err, sizeof err),
                 QT_ERR_INVALID, "accepted: %s", bl->line);
    cr_expect_null(j);
    cr_expect(strstr(err, bl->expect), "error [%s] lacks [%s]", err, bl->expect);
    cr_expect_str_eq(id, bl->id);
    cr_expect_str_eq(wf, "default");
    free(id);
    free(wf);
}

Test(jobs, result_line_has_every_field)
{
    qt_result r = { .id = "j1", .workflow = "support", .status = QT_STATUS_OK, .model = "gpt-4o",
                    .model_used = "gpt-4o-mini", .provider = "openai", .attempts = 2,
                    .prompt_tokens = 12, .completion_tokens = 40, .cost_usd = 0.000026,
                    .queued_ms = 310, .latency_ms = 820, .cached = 0, .error = NULL, .content = "hi \"there\"" };
    char *s = qt_result_to_json(&r);
    cJSON *o = cJSON_Parse(s);
    cr_assert_not_null(o, "not JSON: %s", s);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "status")->valuestring, "ok");
    cr_expect_str_eq(cJSON_GetObjectItem(o, "model_used")->valuestring, "gpt-4o-mini");
    cr_expect_eq(cJSON_GetObjectItem(o, "attempts")->valueint, 2);
    cr_expect_float_eq(cJSON_GetObjectItem(o, "cost_usd")->valuedouble, 0.000026, 1e-12);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(o, "error")));
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(o, "cached")));
    cr_expect_str_eq(cJSON_GetObjectItem(o, "content")->valuestring, "hi \"there\"");
    const char *keys[] = { "id", "workflow", "status", "model", "model_used", "provider", "attempts",
                           "prompt_tokens", "completion_tokens", "cost_usd", "queued_ms", "latency_ms",
                           "cached", "error", "content" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect(cJSON_HasObjectItem(o, keys[i]), "missing %s", keys[i]);
    cJSON_Delete(o);
    free(s);
}

Test(jobs, results_file_and_resume_ids)
{
    char path[] = "/tmp/qt-results-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    qt_results *w = qt_results_open(path, 0);
    cr_assert_not_null(w);
    qt_result a = { .id = "a", .workflow = "w", .status = QT_STATUS_OK };
    qt_result b = { .id = "b", .workflow = "w", .status = QT_STATUS_CANCELLED, .error = "cancelled" };
    qt_result c = { .id = "c", .workflow = "w", .status = QT_STATUS_OK };
    cr_expect_eq(qt_results_write(w, &a), QT_OK);
    cr_expect_eq(qt_results_write(w, &b), QT_OK);
    qt_results_close(w);
    w = qt_results_open(path, 1);
    cr_expect_eq(qt_results_write(w, &c), QT_OK);
    qt_results_close(w);
    FILE *f = fopen(path, "a");
    fputs("not json\n", f);
    fclose(f);
    qt_idset *ids = qt_results_ok_ids(path);
    cr_expect_eq(qt_idset_count(ids), 2);
    cr_expect(qt_idset_has(ids, "a"));
    cr_expect(!qt_idset_has(ids, "b"), "a cancelled job must run again on resume");
    cr_expect(qt_idset_has(ids, "c"));
    qt_idset_free(ids);
    unlink(path);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Per line by default: each result is in the file when the write returns.
 * Buffered (run): lines wait for qt_results_flush, then all of them are
 * there, whole. */
Test(jobs, buffered_results_reach_the_file_at_the_flush)
{
    char path[] = "/tmp/qt-results-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    qt_results *w = qt_results_open(path, 0);
    cr_assert_not_null(w);
    qt_result a = { .id = "a", .workflow = "w", .status = QT_STATUS_OK };
    qt_result b = { .id = "b", .workflow = "w", .status = QT_STATUS_OK };
    qt_result c = { .id = "c", .workflow = "w", .status = QT_STATUS_OK };
    cr_assert_eq(qt_results_write(w, &a), QT_OK);
    long one = file_size(path);
    cr_assert_gt(one, 0, "unbuffered: the line is in the file at once");
    qt_results_set_buffered(w, 1);
    cr_assert_eq(qt_results_write(w, &b), QT_OK);
    cr_assert_eq(qt_results_write(w, &c), QT_OK);
    cr_assert_eq(file_size(path), one, "buffered: nothing more until the flush");
    cr_assert_eq(qt_results_flush(w), QT_OK);
    cr_assert_gt(file_size(path), 2 * one, "the flush writes both lines");
    qt_idset *ids = qt_results_ok_ids(path);
    cr_expect_eq(qt_idset_count(ids), 3);
    cr_expect(qt_idset_has(ids, "b") && qt_idset_has(ids, "c"));
    qt_idset_free(ids);
    qt_results_set_buffered(w, 0);
    qt_result d = { .id = "d", .workflow = "w", .status = QT_STATUS_OK };
    long three = file_size(path);
    cr_assert_eq(qt_results_write(w, &d), QT_OK);
    cr_assert_gt(file_size(path), three, "per line again once buffering is off");
    cr_assert_eq(qt_results_close(w), QT_OK);
    unlink(path);
}

/* A flush that cannot write says so. */
Test(jobs, buffered_flush_reports_full_disk)
{
    qt_results *w = qt_results_open("/dev/full", 0);
    cr_assert_not_null(w);
    qt_results_set_buffered(w, 1);
    qt_result a = { .id = "a", .workflow = "w", .status = QT_STATUS_OK };
    cr_assert_eq(qt_results_write(w, &a), QT_OK, "buffered: no write yet");
    cr_assert_eq(qt_results_flush(w), QT_ERR_IO);
    qt_results_close(w);
}

Test(jobs, idset_grows)
{
    char path[] = "/tmp/qt-results-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < 5000; i++)
        fprintf(f, "{\"id\": \"job-%d\", \"status\": \"%s\"}\n", i, i % 5 ? "ok" : "failed");
    fclose(f);
    qt_idset *ids = qt_results_ok_ids(path);
    cr_expect_eq(qt_idset_count(ids), 4000);
    cr_expect(qt_idset_has(ids, "job-4999"));
    cr_expect(!qt_idset_has(ids, "job-4995"));
    qt_idset_free(ids);
    unlink(path);
}

/* Issue 12, defect 5: a run killed mid-write leaves a torn last line; the
 * resumed run starts on a fresh line, and the fragment is reported. */
Test(jobs, resume_after_torn_last_line)
{
    char path[] = "/tmp/qt-results-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *before = "{\"id\":\"a\",\"status\":\"ok\"}\n{\"id\":\"b\",\"sta";
    cr_assert_eq(write(fd, before, strlen(before)), (ssize_t)strlen(before));
    close(fd);
    qt_idset *ids = qt_results_ok_ids(path);
    long first = 0;
    int torn = 0;
    cr_expect_eq(qt_idset_bad_lines(ids, &first, &torn), 1);
    cr_expect_eq(first, 2);
    cr_expect_eq(torn, 1);
    qt_idset_free(ids);
    qt_results *w = qt_results_open(path, 1);
    cr_assert_not_null(w);
    qt_result c = { .id = "c", .workflow = "w", .status = QT_STATUS_OK };
    cr_expect_eq(qt_results_write(w, &c), QT_OK);
    cr_expect_eq(qt_results_close(w), QT_OK);
    ids = qt_results_ok_ids(path);
    cr_expect(qt_idset_has(ids, "a"));
    cr_expect(qt_idset_has(ids, "c"), "the new line must not be glued onto the fragment");
    cr_expect_eq(qt_idset_bad_lines(ids, NULL, &torn), 1);
    cr_expect_eq(torn, 0, "the fragment is now a whole (bad) line");
    qt_idset_free(ids);
    unlink(path);
}

/* Defect 8: a full disk shows at the close; it must be reported. */
Test(jobs, results_close_reports_full_disk)
{
    qt_results *w = qt_results_open("/dev/full", 0);
    cr_assert_not_null(w);
    qt_result a = { .id = "a", .workflow = "w", .status = QT_STATUS_OK };
    cr_expect_eq(qt_results_write(w, &a), QT_ERR_IO);
    cr_expect_eq(qt_results_close(w), QT_ERR_IO);
}

/* Defect 10: bytes that are not UTF-8 never reach a result line. */
Test(jobs, invalid_utf8_line_is_rejected)
{
    const char line[] = "{\"id\": \"u\xff\", \"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"\xc3\"}]}";
    qt_job *j = NULL;
    char *id = NULL, *wf = NULL, err[256];
    cr_assert_eq(qt_job_parse(line, strlen(line), 7, cfg, &j, &id, &wf, err, sizeof err), QT_ERR_INVALID);
    cr_expect(strstr(err, "line 7: not valid UTF-8"), "%s", err);
    cr_expect_str_eq(id, "7", "the id falls back to the line number");
    free(id);
    free(wf);
    const char ok[] = "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\"}]}";
    cr_assert_eq(qt_job_parse(ok, strlen(ok), 1, cfg, &j, &id, &wf, err, sizeof err), QT_OK, "%s", err);
    qt_job_free(j);
    free(id);
    free(wf);
}

Test(jobs, result_line_is_valid_utf8_whatever_the_upstream_sent)
{
    qt_result r = { .id = "j", .workflow = "w", .status = QT_STATUS_OK,
                    .content = "bad \xff\xfe and \xed\xa0\x80 surrogate, good \xc3\xa9" };
    char *s = qt_result_to_json(&r);
    cr_assert_not_null(s);
    cr_expect_eq(qt_utf8_invalid_at(s, strlen(s)), -1, "%s", s);
    cJSON *o = cJSON_Parse(s);
    cr_assert_not_null(o);
    cr_expect(strstr(cJSON_GetObjectItem(o, "content")->valuestring, "good \xc3\xa9"));
    cJSON_Delete(o);
    free(s);
}

/* Defect 9: numeric ids are their shortest decimal text, so 1 and "1" are
 * the same id and 0.1 is "0.1". */
Test(jobs, numeric_ids_are_decimal_text)
{
    const char *lines[] = { "{\"id\": 1, \"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\"}]}",
                            "{\"id\": 0.1, \"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\"}]}" };
    const char *want[] = { "1", "0.1" };
    for (int i = 0; i < 2; i++) {
        qt_job *j = NULL;
        char err[256];
        cr_assert_eq(qt_job_parse(lines[i], strlen(lines[i]), 1, cfg, &j, NULL, NULL, err, sizeof err), QT_OK);
        cr_expect_str_eq(j->id, want[i]);
        qt_job_free(j);
    }
    qt_idset *s = qt_idset_new();
    long old = 0;
    cr_expect_eq(qt_idset_add(s, "1", 3, NULL), 1);
    cr_expect_eq(qt_idset_add(s, "1", 9, &old), 0);
    cr_expect_eq(old, 3);
    qt_idset_free(s);
}

Test(jobs, result_line_carries_tool_calls_choices_and_cache_tokens)
{
    qt_result r = { .id = "t", .workflow = "w", .status = QT_STATUS_OK, .model = "gpt-4o", .content = "",
                    .finish_reason = "tool_calls",
                    .tool_calls = "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                                  "\"arguments\":\"{}\"}}]",
                    .choices = "[{\"index\":0},{\"index\":1}]", .cached_tokens = 64, .reasoning_tokens = 7 };
    char *s = qt_result_to_json(&r);
    cJSON *o = cJSON_Parse(s);
    cr_assert_not_null(o, "not JSON: %s", s);
    cr_expect_str_eq(cJSON_GetObjectItem(o, "finish_reason")->valuestring, "tool_calls");
    cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "tool_calls"), 0);
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"), "name")->valuestring, "f");
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "choices")), 2);
    cr_expect_eq(cJSON_GetObjectItem(o, "cached_tokens")->valueint, 64);
    cr_expect_eq(cJSON_GetObjectItem(o, "reasoning_tokens")->valueint, 7);
    cr_expect_not(cJSON_HasObjectItem(o, "cache_write_tokens"), "zero counts are left out");
    cJSON_Delete(o);
    free(s);
    /* a failed job: finish_reason null, no tool_calls or choices */
    qt_result f = { .id = "x", .workflow = "w", .status = QT_STATUS_FAILED, .model = "gpt-4o", .error = "e" };
    s = qt_result_to_json(&f);
    o = cJSON_Parse(s);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(o, "finish_reason")));
    cr_expect_not(cJSON_HasObjectItem(o, "tool_calls"));
    cr_expect_not(cJSON_HasObjectItem(o, "choices"));
    cJSON_Delete(o);
    free(s);
}

Test(jobs, max_completion_tokens_counts_the_larger)
{
    const char *lines[] = {
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":300}",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":50,"
        "\"max_completion_tokens\":300}",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":500,"
        "\"max_completion_tokens\":300}",
    };
    const int want[] = { 300, 300, 500 };
    for (size_t i = 0; i < 3; i++) {
        qt_job *j = NULL;
        char err[200], *id = NULL, *wf = NULL;
        cr_assert_eq(qt_job_parse(lines[i], strlen(lines[i]), (long)i + 1, cfg, &j, &id, &wf, err, sizeof err),
                     QT_OK, "%s", err);
        cr_expect_eq(j->max_tokens, want[i], "line %zu", i + 1);
        qt_job_free(j);
        free(id);
        free(wf);
    }
    const char *bad = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"max_completion_tokens\":\"lots\"}";
    qt_job *j = NULL;
    char err[200], *id = NULL, *wf = NULL;
    cr_expect_eq(qt_job_parse(bad, strlen(bad), 9, cfg, &j, &id, &wf, err, sizeof err), QT_ERR_INVALID);
    cr_expect(strstr(err, "max_completion_tokens"), "%s", err);
    free(id);
    free(wf);
}

/* The result line as cJSON printed it before qt_result_to_json wrote it
 * directly: the same bytes are expected, whatever the fields hold. */
static void ref_str(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static void ref_text(cJSON *o, const char *k, const char *text)
{
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    if (v && !cJSON_AddItemToObject(o, k, v))
        cJSON_Delete(v);
}

static char *reference_line(const qt_result *res)
{
    cJSON *o = cJSON_CreateObject();
    ref_str(o, "id", res->id);
    ref_str(o, "workflow", res->workflow);
    cJSON_AddStringToObject(o, "status", qt_status_name(res->status));
    ref_str(o, "model", res->model);
    ref_str(o, "model_used", res->model_used);
    ref_str(o, "provider", res->provider);
    cJSON_AddNumberToObject(o, "attempts", res->attempts);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)res->prompt_tokens);
    cJSON_AddNumberToObject(o, "completion_tokens", (double)res->completion_tokens);
    char cost[32];
    snprintf(cost, sizeof cost, "%.9f", res->cost_usd);
    cJSON_AddRawToObject(o, "cost_usd", cost);
    cJSON_AddNumberToObject(o, "queued_ms", (double)res->queued_ms);
    cJSON_AddNumberToObject(o, "latency_ms", (double)res->latency_ms);
    cJSON_AddBoolToObject(o, "cached", res->cached);
    ref_str(o, "error", res->error);
    ref_str(o, "content", res->content);
    ref_str(o, "finish_reason", res->finish_reason);
    ref_text(o, "tool_calls", res->tool_calls);
    ref_text(o, "choices", res->choices);
    if (res->cached_tokens > 0)
        cJSON_AddNumberToObject(o, "cached_tokens", (double)res->cached_tokens);
    if (res->cache_write_tokens > 0)
        cJSON_AddNumberToObject(o, "cache_write_tokens", (double)res->cache_write_tokens);
    if (res->reasoning_tokens > 0)
        cJSON_AddNumberToObject(o, "reasoning_tokens", (double)res->reasoning_tokens);
    if (res->endpoint != QT_ENDPOINT_CHAT)
        cJSON_AddStringToObject(o, "endpoint", qt_endpoint_name(res->endpoint));
    if (res->endpoint == QT_ENDPOINT_RESPONSES && res->upstream_id && !strncmp(res->upstream_id, "resp_", 5))
        cJSON_AddStringToObject(o, "response_id", res->upstream_id);
    ref_text(o, "embeddings", res->embeddings);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return qt_utf8_sanitize(s);
}

Test(jobs, result_line_bytes_are_what_cjson_printed)
{
    qt_result rs[] = {
        { .id = "j1", .workflow = "support", .status = QT_STATUS_OK, .model = "gpt-4o",
          .model_used = "gpt-4o-mini", .provider = "openai", .attempts = 2, .prompt_tokens = 12,
          .completion_tokens = 40, .cost_usd = 0.000026, .queued_ms = 310, .latency_ms = 820,
          .content = "hi \"there\"\\ \n\r\t\b\f \x01\x1f\x7f caf\xc3\xa9 \xe2\x82\xac /slash/",
          .finish_reason = "stop" },
        { .id = "x", .workflow = "w", .status = QT_STATUS_FAILED, .model = "m", .attempts = 0,
          .prompt_tokens = -1, .completion_tokens = 3000000000L, .cost_usd = 12345.678901234,
          .queued_ms = 5000000000L, .latency_ms = -7, .cached = 1,
          .error = "bad \xff\xfe bytes", .content = "" },
        { .id = "t", .workflow = "w", .status = QT_STATUS_OK, .model = "m", .model_used = "m",
          .provider = "p", .attempts = 1, .tool_calls = "[{\"id\": \"c1\", \"type\": \"function\"}]",
          .choices = "[{\"index\":0},{\"index\":1, \"x\": 1.5e300}]", .cached_tokens = 5,
          .cache_write_tokens = 7, .reasoning_tokens = 9, .endpoint = QT_ENDPOINT_RESPONSES,
          .upstream_id = "resp_1", .embeddings = "not json" },
        { .id = "e", .workflow = "w", .status = QT_STATUS_INVALID, .endpoint = QT_ENDPOINT_EMBEDDINGS,
          .embeddings = "[[0.1, -0.25, 3], [1e-7]]", .tool_calls = "{broken" },
    };
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) {
        char *got = qt_result_to_json(&rs[i]), *want = reference_line(&rs[i]);
        cr_assert_not_null(got);
        cr_expect_str_eq(got, want, "result %zu", i);
        free(got);
        free(want);
    }
}
