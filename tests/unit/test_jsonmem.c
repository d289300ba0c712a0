/* test_jsonmem.c: Criterion suite "jsonmem" (src/core/jsonmem.c).
 *
 * cJSON's caching allocator: a freed tree's blocks come back for the next
 * parse, every block handed out holds what was asked, the cache per class
 * is bounded, what cJSON_Print returns may be freed with free(), release
 * empties the cache. Each Criterion test runs in its own process, so the
 * hooks installed here reach no other suite.
 */
#include "quotatop/jsonmem.h"

#include <cJSON.h>
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *doc = "{\"model\":\"gpt-4o\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\","
                         "\"content\":\"Say hello in five words.\"},{\"role\":\"assistant\","
                         "\"content\":\"Hello there, how are you?\"}],\"stream\":false}";

static void setup(void)
{
    qt_jsonmem_init();
    if (!qt_jsonmem_enabled())
        cr_skip_test("the cache is off in an AddressSanitizer build");
}

Test(jsonmem, a_freed_tree_feeds_the_next_parse, .init = setup)
{
    cr_assert_eq(qt_jsonmem_cached(), 0);
    cJSON *a = cJSON_Parse(doc);
    cr_assert_not_null(a);
    cJSON_Delete(a);
    size_t kept = qt_jsonmem_cached();
    cr_assert_geq(kept, 15, "a tree of this size frees at least 15 blocks (nodes, keys), kept %zu", kept);
    cJSON *b = cJSON_Parse(doc);
    cr_assert_not_null(b);
    size_t during = qt_jsonmem_cached();
    cr_assert_leq(during, kept / 4, "the second parse took its blocks from the cache (%zu of %zu left)",
                  during, kept);
    cr_assert_str_eq(cJSON_GetObjectItem(b, "model")->valuestring, "gpt-4o");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(b, "messages")), 2);
    cJSON_Delete(b);
    cr_assert_geq(qt_jsonmem_cached(), kept, "and gave them back");
    qt_jsonmem_release();
    cr_assert_eq(qt_jsonmem_cached(), 0);
}

Test(jsonmem, every_block_holds_what_was_asked, .init = setup)
{
    /* Fill the cache with blocks of every small size, then ask for every
     * size: what comes back (from the cache or not) holds the size asked. */
    enum { N = 300 };
    void *p[N];
    for (int i = 0; i < N; i++)
        cr_assert_not_null(p[i] = cJSON_malloc((size_t)i + 1));
    for (int i = 0; i < N; i++)
        cJSON_free(p[i]);
    cr_assert_gt(qt_jsonmem_cached(), 200);
    for (int i = N - 1; i >= 0; i--) {
        size_t want = (size_t)i + 1;
        void *q = cJSON_malloc(want);
        cr_assert_not_null(q);
        cr_assert_geq(malloc_usable_size(q), want, "asked %zu, got a block of %zu", want,
                      malloc_usable_size(q));
        memset(q, 0xab, want);
        p[i] = q;
    }
    for (int i = 0; i < N; i++)
        cJSON_free(p[i]);
    qt_jsonmem_release();
}

Test(jsonmem, each_class_keeps_a_bounded_number, .init = setup)
{
    enum { N = 2000 };
    void **p = malloc(N * sizeof *p);
    for (int i = 0; i < N; i++)
        p[i] = cJSON_malloc(64);
    for (int i = 0; i < N; i++)
        cJSON_free(p[i]);
    cr_assert_eq(qt_jsonmem_cached(), 256, "one class keeps 256 blocks, the rest went back to malloc");
    free(p);
    qt_jsonmem_release();
}

Test(jsonmem, printed_strings_may_be_freed_with_free, .init = setup)
{
    for (int i = 0; i < 100; i++) {   /* warm the cache, so prints take cached blocks */
        cJSON *a = cJSON_Parse(doc);
        char *s = cJSON_PrintUnformatted(a);
        cr_assert_not_null(s);
        cr_assert_str_eq(s, doc);
        free(s);
        cJSON_Delete(a);
    }
    cJSON_free(NULL);   /* accepted, like free(NULL) */
    qt_jsonmem_release();
}
