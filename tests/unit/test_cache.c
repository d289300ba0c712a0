/* test_cache.c: the @cache store: keys ignore quotatop's own fields, entries
 * come back as copies, and the least recently used entry goes first. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "quotatop/cache.h"

static uint64_t key_of(const char *model, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    cr_assert_not_null(j);
    uint64_t k = qt_cache_key(model, j);
    cJSON_Delete(j);
    return k;
}

Test(cache, key_ignores_id_workflow_priority_but_not_the_request)
{
    const char *a = "{\"id\": \"1\", \"workflow\": \"w\", \"priority\": 2, \"model\": \"m\","
                    " \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 5}";
    const char *b = "{\"id\": \"2\", \"workflow\": \"v\", \"priority\": 9, \"model\": \"m\","
                    " \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 5}";
    const char *c = "{\"id\": \"1\", \"model\": \"m\","
                    " \"messages\": [{\"role\": \"user\", \"content\": \"hi!\"}], \"max_tokens\": 5}";
    const char *d = "{\"id\": \"1\", \"model\": \"m\","
                    " \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 6}";
    cr_assert_eq(key_of("m", a), key_of("m", b));
    cr_assert(key_of("m", a) != key_of("m", c), "different messages must not share an answer");
    cr_assert(key_of("m", a) != key_of("m", d), "different parameters must not share an answer");
    cr_assert(key_of("m", a) != key_of("other", a), "different chains must not share an answer");
}

Test(cache, get_returns_copies_and_misses)
{
    qt_cache *c = qt_cache_new(4);
    char *content = NULL, *used = NULL;
    cr_assert_eq(qt_cache_get(c, 42, &content, &used), 0);
    qt_cache_put(c, 42, "the answer", "gpt-4o");
    cr_assert_eq(qt_cache_get(c, 42, &content, &used), 1);
    cr_assert_str_eq(content, "the answer");
    cr_assert_str_eq(used, "gpt-4o");
    free(content);
    free(used);
    qt_cache_put(c, 42, "newer", "gpt-4o-mini");   /* replaces, does not duplicate */
    cr_assert_eq(qt_cache_count(c), 1);
    cr_assert_eq(qt_cache_get(c, 42, &content, &used), 1);
    cr_assert_str_eq(content, "newer");
    free(content);
    free(used);
    qt_cache_free(c);
}

Test(cache, least_recently_used_goes_first)
{
    qt_cache *c = qt_cache_new(3);
    qt_cache_put(c, 1, "one", "m");
    qt_cache_put(c, 2, "two", "m");
    qt_cache_put(c, 3, "three", "m");
    char *content, *used;
    cr_assert_eq(qt_cache_get(c, 1, &content, &used), 1);   /* 1 is now the newest */
    free(content);
    free(used);
    qt_cache_put(c, 4, "four", "m");                        /* evicts 2 */
    cr_assert_eq(qt_cache_count(c), 3);
    cr_assert_eq(qt_cache_get(c, 2, &content, &used), 0);
    cr_assert_eq(qt_cache_get(c, 1, &content, &used), 1);
    free(content);
    free(used);
    cr_assert_eq(qt_cache_get(c, 3, &content, &used), 1);
    free(content);
    free(used);
    qt_cache_free(c);
}

Test(cache, many_puts_stay_bounded_and_findable)
{
    qt_cache *c = qt_cache_new(100);
    char buf[32];
    for (uint64_t k = 1; k <= 5000; k++) {
        snprintf(buf, sizeof buf, "v%llu", (unsigned long long)k);
        qt_cache_put(c, k * 2654435761u, buf, "m");
    }
    cr_assert_eq(qt_cache_count(c), 100);
    for (uint64_t k = 4901; k <= 5000; k++) {
        char *content, *used;
        cr_assert_eq(qt_cache_get(c, k * 2654435761u, &content, &used), 1, "lost key %llu",
                     (unsigned long long)k);
        snprintf(buf, sizeof buf, "v%llu", (unsigned long long)k);
        cr_assert_str_eq(content, buf);
        free(content);
        free(used);
    }
    char *content, *used;
    cr_assert_eq(qt_cache_get(c, 4900ull * 2654435761u, &content, &used), 0);
    qt_cache_free(c);
}

Test(cache, answer_keeps_finish_reason_and_tool_calls)
{
    qt_cache *c = qt_cache_new(4);
    const char *calls = "[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]";
    qt_cache_put_answer(c, 7, "", "gpt-4o", "tool_calls", calls);
    qt_cache_put_answer(c, 8, "text", "m", NULL, NULL);
    qt_cache_answer a;
    cr_assert_eq(qt_cache_get_answer(c, 7, &a), 1);
    cr_assert_str_eq(a.content, "");
    cr_assert_str_eq(a.model_used, "gpt-4o");
    cr_assert_str_eq(a.finish_reason, "tool_calls");
    cr_assert_str_eq(a.tool_calls, calls);
    qt_cache_answer_free(&a);
    cr_assert_null(a.tool_calls);
    cr_assert_eq(qt_cache_get_answer(c, 8, &a), 1);
    cr_assert_null(a.finish_reason);
    cr_assert_null(a.tool_calls);
    qt_cache_answer_free(&a);
    cr_assert_eq(qt_cache_get_answer(c, 9, &a), 0);
    cr_assert_null(a.content);
    char *content, *used;   /* the older call still reads the text */
    cr_assert_eq(qt_cache_get(c, 7, &content, &used), 1);
    cr_assert_str_eq(used, "gpt-4o");
    free(content);
    free(used);
    qt_cache_free(c);
}
