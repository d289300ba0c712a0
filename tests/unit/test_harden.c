/* test_harden.c: Criterion suite "harden" (issue 12): regressions for
 * defects found by fuzzing and by valgrind, one test per finding, each
 * named after what it found. The inputs are the exact bytes that failed, so
 * a test here fails when its fix is undone.
 */
#include "quotatop/provider.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Parses body (exact-size heap copy: ASan sees an overread) with kind's
 * parse_response; returns the code, err gets the message. */
static qt_err parse_exact(qt_provider_kind kind, const char *body, qt_provider_result *r,
                          char *err, size_t errlen)
{
    size_t n = strlen(body);
    char *copy = malloc(n ? n : 1);
    cr_assert_not_null(copy);
    memcpy(copy, body, n);
    memset(r, 0x5a, sizeof *r);   /* garbage: the parser must zero it on error */
    qt_err rc = qt_provider_ops_for(kind)->parse_response(copy, n, r, err, errlen);
    free(copy);
    return rc;
}

/* The input libFuzzer wrote as crash-6946ba34ad40f46eb66433e6b7a5374dd92f639c
 * (kept as tests/fuzz/corpus/provider_openai/hugeusage; its first byte, ' ',
 * selects parse_response in fuzz_provider.h): fuzz_provider_openai aborted
 * in UBSan ("1e+300 is outside the range of representable values of type
 * 'long'", provider.c qt_prov_get_count) before the figure was bounded.
 * A non-sanitized build turned it into LONG_MIN tokens and billed that. */
static const char crash_6946ba34[] =
    "{\"id\": \"chatcmpl-1\", \"object\": \"chat.completion\", \"model\": \"gpt-4o\", \"choices\": "
    "[{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \"hi\", \"tool_calls\": "
    "[{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": \"{}\"}}]}, "
    "\"finish_reason\": \"stop\"}], \"usage\": {\"prompt_tokens\": 1e+300, \"completion_tokens\": -1}}";

Test(harden, fuzz_crash_6946ba34_huge_usage_with_tool_calls_is_malformed)
{
    char err[QT_PROVIDER_ERRLEN] = "";
    qt_provider_result r;
    cr_assert_eq(parse_exact(QT_KIND_OPENAI, crash_6946ba34, &r, err, sizeof err), QT_ERR_INVALID);
    cr_assert_str_eq(err, "malformed usage: usage.prompt_tokens is 1e+300 (a token count is a number "
                          "from 0 to 2^31)");
    cr_assert_null(r.content, "result zeroed on error");
    cr_assert_null(r.tool_calls, "no tool_calls kept from a refused answer");
    qt_provider_result_free(&r);
}

/* The same answer with a sane prompt figure: the negative completion figure
 * is refused too, and the tool calls already seen are not leaked. */
Test(harden, negative_completion_with_tool_calls_is_malformed)
{
    char body[sizeof crash_6946ba34 + 8];
    const char *p = strstr(crash_6946ba34, "1e+300");
    cr_assert_not_null(p);
    snprintf(body, sizeof body, "%.*s12%s", (int)(p - crash_6946ba34), crash_6946ba34, p + 6);
    char err[QT_PROVIDER_ERRLEN] = "";
    qt_provider_result r;
    cr_assert_eq(parse_exact(QT_KIND_OPENAI, body, &r, err, sizeof err), QT_ERR_INVALID, "%s", body);
    cr_assert_not_null(strstr(err, "usage.completion_tokens is -1"), "%s", err);
    cr_assert_null(r.tool_calls);
    qt_provider_result_free(&r);
}

/* Every absurd figure on either side of the bound, for both kinds: only
 * 0 .. 2^31 is a count. (Values chosen where a cast to long is undefined or
 * wraps, and the two edges.) */
Test(harden, usage_bound_edges_both_kinds)
{
    static const struct { const char *fig; bool ok; } figs[] = {
        {"0", true}, {"2147483648", true}, {"2147483649", false}, {"-0.5", false},
        {"1e19", false}, {"-1e19", false}, {"9.3e18", false}, {"1e308", false},
    };
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
        char body[512];
        char err[QT_PROVIDER_ERRLEN] = "";
        qt_provider_result r;
        snprintf(body, sizeof body,
                 "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":%s,"
                 "\"completion_tokens\":1}}", figs[i].fig);
        qt_err rc = parse_exact(QT_KIND_OPENAI, body, &r, err, sizeof err);
        cr_assert_eq(rc == QT_OK, figs[i].ok, "openai %s: %s", figs[i].fig, err);
        if (rc == QT_OK)
            cr_assert(r.prompt_tokens >= 0 && r.prompt_tokens <= 2147483648L);
        qt_provider_result_free(&r);
        snprintf(body, sizeof body,
                 "{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"usage\":{\"input_tokens\":1,"
                 "\"output_tokens\":%s}}", figs[i].fig);
        rc = parse_exact(QT_KIND_ANTHROPIC, body, &r, err, sizeof err);
        cr_assert_eq(rc == QT_OK, figs[i].ok, "anthropic %s: %s", figs[i].fig, err);
        if (rc == QT_OK)
            cr_assert(r.completion_tokens >= 0 && r.completion_tokens <= 2147483648L);
        qt_provider_result_free(&r);
    }
}
