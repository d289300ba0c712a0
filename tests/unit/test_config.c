/* test_config.c: the config loader accepts the examples and reports each
 * kind of mistake with its JSON path. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

#include "quotatop/config.h"

static qt_config *parse(const char *json, qt_diag *d)
{
    return qt_config_parse(json, strlen(json), d);
}

static int diag_has(char **msgs, size_t n, const char *needle)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(msgs[i], needle))
            return 1;
    return 0;
}

#define MINIMAL_PROVIDERS "\"providers\": {\"oa\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:1/v1\"}}"

Test(config, example_config_is_valid_and_complete)
{
    qt_diag d = { 0 };
    qt_config *c = qt_config_load("examples/config.json", &d);
    cr_assert_not_null(c, "examples/config.json rejected: %s", d.n_errors ? d.errors[0] : "?");
    cr_expect_eq(d.n_warnings, 0);
    cr_expect_eq(c->workers, 8);
    cr_expect_eq(c->n_providers, 2);
    cr_expect_eq(c->n_models, 3);
    int m = qt_config_model_index(c, "gpt-4o");
    cr_assert_geq(m, 0);
    cr_expect_float_eq(c->models[m].input_usd_per_mtok, 2.50, 1e-9);
    cr_expect_eq(c->models[m].n_fallback, 3);
    cr_expect_str_eq(c->models[m].fallback[2], QT_CACHE_MODEL);
    cr_expect_eq(c->models[m].provider_idx[0], qt_config_provider_index(c, "openai"));
    int a = qt_config_provider_index(c, "anthropic");
    cr_expect_eq(c->providers[a].kind, QT_KIND_ANTHROPIC);
    cr_expect_float_eq(qt_config_effective(c, c->providers[a].rpm), 45.0, 1e-9);
    cr_expect_float_eq(qt_config_workflow_budget(c, "nightly"), 5.0, 1e-9);
    cr_expect_float_eq(qt_config_workflow_budget(c, "other"), 0.0, 1e-9);
    cr_expect_eq(c->circuit.failure_threshold, 3);
    cr_expect_eq(c->budget.on_exhausted, QT_EXHAUSTED_REJECT);
    qt_config_free(c);
    qt_diag_free(&d);
}

Test(config, defaults_fill_what_is_absent)
{
    qt_diag d = { 0 };
    qt_config *c = parse("{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {\"providers\": [\"oa\"]}}}", &d);
    cr_assert_not_null(c);
    cr_expect_eq(c->workers, QT_DEFAULT_WORKERS);
    cr_expect_float_eq(c->limits.headroom, 1.0, 1e-9);
    cr_expect_eq(c->retry.max_attempts, 5);
    cr_expect_eq(c->queue.aging_ms, 30000);
    cr_expect_str_eq(c->models[0].upstream_model, "m");
    cr_expect_eq(c->providers[0].timeout_ms, 60000);
    cr_expect_str_eq(c->proxy.listen, "127.0.0.1:8787");
    cr_expect_eq(c->backend.kind, QT_BACKEND_LOCAL);
    cr_expect_eq(c->trace, 1, "the request trace is on by default");
    qt_config_free(c);
    qt_diag_free(&d);
}

Test(config, trace_false_turns_the_trace_off)
{
    qt_diag d = { 0 };
    qt_config *c = parse("{" MINIMAL_PROVIDERS ", \"trace\": false, \"models\": {\"m\": {\"providers\": [\"oa\"]}}}", &d);
    cr_assert_not_null(c);
    cr_expect_eq(d.n_warnings, 0, "trace is a known key");
    cr_expect_eq(c->trace, 0);
    qt_config_free(c);
    qt_diag_free(&d);
}

Test(config, trailing_slash_removed_from_base_url)
{
    qt_diag d = { 0 };
    qt_config *c = parse("{\"providers\": {\"oa\": {\"kind\": \"openai\", \"base_url\": "
                         "\"https://api.example.com/v1//\"}}, \"models\": {\"m\": {\"providers\": [\"oa\"]}}}", &d);
    cr_assert_not_null(c);
    cr_expect_str_eq(c->providers[0].base_url, "https://api.example.com/v1");
    qt_config_free(c);
    qt_diag_free(&d);
}

Test(config, unknown_keys_are_warnings_with_suggestion)
{
    qt_diag d = { 0 };
    qt_config *c = parse("{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {\"providers\": [\"oa\"], "
                         "\"ppm\": 5}}, \"retyr\": {}}", &d);
    cr_assert_not_null(c, "unknown keys must not invalidate the config");
    cr_expect_eq(d.n_errors, 0);
    cr_expect(diag_has(d.warnings, d.n_warnings, "models.m.ppm: unknown key"));
    cr_expect(diag_has(d.warnings, d.n_warnings, "retyr: unknown key, ignored (did you mean \"retry\"?)"));
    qt_config_free(c);
    qt_diag_free(&d);
}

/* Criterion runs each parameter in a fresh process, so parameters hold
 * their text inline (pointers into this image would not survive ASLR). */
struct bad_case {
    char json[400];
    char expect[160];     /* substring of one error */
};

static struct bad_case bad_cases[] = {
    { "{\"providers\": {,}}", "(json): syntax error at line 1, column 1" },
    { "{\n  \"workers\": 4,\n  \"models\": ,\n}", "(json): syntax error at line 3, column 1" },
    { "[1, 2]", "the config must be a JSON object" },
    { "{\"models\": {}}", "providers: missing" },
    { "{" MINIMAL_PROVIDERS "}", "models: missing" },
    { "{" MINIMAL_PROVIDERS ", \"workers\": \"8\", \"models\": {\"m\": {\"providers\": [\"oa\"]}}}",
      "workers: must be a number" },
    { "{" MINIMAL_PROVIDERS ", \"workers\": 0, \"models\": {\"m\": {\"providers\": [\"oa\"]}}}",
      "workers: 0 is out of range (must be 1 to 100000)" },
    { "{" MINIMAL_PROVIDERS ", \"workers\": 2.5, \"models\": {\"m\": {\"providers\": [\"oa\"]}}}",
      "workers: must be a whole number" },
    { "{\"providers\": {\"oa\": {\"kind\": \"opnai\"}}, \"models\": {\"m\": {\"providers\": [\"oa\"]}}}",
      "providers.oa.kind: unknown provider kind \"opnai\" (known: openai, anthropic) (did you mean \"openai\"?)" },
    { "{\"providers\": {\"oa\": {\"base_url\": \"http://x\"}}, \"models\": {\"m\": {\"providers\": [\"oa\"]}}}",
      "providers.oa.kind: missing" },
    { "{\"providers\": {\"oa\": {\"kind\": \"openai\", \"base_url\": \"ftp://x\"}}, \"models\": {\"m\": {\"providers\": [\"oa\"]}}}",
      "providers.oa.base_url: \"ftp://x\" is not a well-formed" },
    { "{\"providers\": {\"oa\": {\"kind\": \"openai\", \"base_url\": \"http://host:99999/v1\"}}, \"models\": {\"m\": {\"providers\": [\"oa\"]}}}",
      "providers.oa.base_url" },
    { "{\"providers\": {\"oa\": {\"kind\": \"openai\", \"rpm\": -1}}, \"models\": {\"m\": {\"providers\": [\"oa\"]}}}",
      "providers.oa.rpm: -1 is out of range" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {}}}", "models.m.providers: missing" },
    { "{" MINIMAL_PROVIDERS ", \"trace\": \"off\", \"models\": {\"m\": {\"providers\": [\"oa\"]}}}",
      "trace: must be true or false" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {\"providers\": [\"ob\"]}}}",
      "models.m.providers[0]: unknown provider \"ob\" (did you mean \"oa\"?)" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"gpt-4o\": {\"providers\": [\"oa\"], \"fallback\": [\"@cache\", \"gpt4o-mini\"]},"
      " \"gpt-4o-mini\": {\"providers\": [\"oa\"]}}}",
      "models.gpt-4o.fallback[1]: unknown model \"gpt4o-mini\" (did you mean \"gpt-4o-mini\"?)" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"a\": {\"providers\": [\"oa\"], \"fallback\": [\"a\"]}}}",
      "models.a.fallback[0]: a model cannot fall back to itself" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"a\": {\"providers\": [\"oa\"], \"fallback\": [\"b\"]},"
      " \"b\": {\"providers\": [\"oa\"], \"fallback\": [\"c\"]}, \"c\": {\"providers\": [\"oa\"], \"fallback\": [\"a\"]}}}",
      "fallback cycle a -> b -> c -> a" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {\"providers\": [\"oa\"], \"fallback\": [3]}}}",
      "models.m.fallback[0]: must be a string" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {\"providers\": [\"oa\"]}}, \"limits\": {\"headroom\": 1.5}}",
      "limits.headroom: 1.5 is out of range" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {\"providers\": [\"oa\"]}}, \"budget\": {\"on_exhausted\": \"panic\"}}",
      "budget.on_exhausted: \"panic\" is not \"reject\" or \"downgrade\"" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {\"providers\": [\"oa\"]}}, \"budget\": {\"workflows\": {\"w\": \"5\"}}}",
      "budget.workflows.w: must be a number" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {\"providers\": [\"oa\"]}}, \"retry\": {\"base_ms\": 5000, \"cap_ms\": 100}}",
      "retry.cap_ms: 100 is below retry.base_ms 5000" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {\"providers\": [\"oa\"]}}, \"backend\": {\"kind\": \"redis\"}}",
      "backend.url: required" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {\"providers\": [\"oa\"]}}, \"proxy\": {\"listen\": \"localhost\"}}",
      "proxy.listen: \"localhost\" is not HOST:PORT" },
    { "{" MINIMAL_PROVIDERS ", \"models\": {\"m\": {\"providers\": [\"oa\"]}}, \"circuit\": {\"failure_ratio\": 2}}",
      "circuit.failure_ratio: 2 is out of range (must be 0 to 1)" },
    { "{" MINIMAL_PROVIDERS ", \"models\": [1]}", "models: must be an object" },
};

ParameterizedTestParameters(config, errors_name_their_path)
{
    return cr_make_param_array(struct bad_case, bad_cases, sizeof bad_cases / sizeof bad_cases[0]);
}

ParameterizedTest(struct bad_case *bc, config, errors_name_their_path)
{
    qt_diag d = { 0 };
    qt_config *c = parse(bc->json, &d);
    cr_expect_null(c, "accepted: %s", bc->json);
    cr_expect(diag_has(d.errors, d.n_errors, bc->expect), "no error containing [%s]; first error: [%s]",
              bc->expect, d.n_errors ? d.errors[0] : "(none)");
    qt_config_free(c);
    qt_diag_free(&d);
}

Test(config, all_errors_reported_at_once)
{
    qt_diag d = { 0 };
    qt_config *c = parse("{\"workers\": -1, \"providers\": {\"oa\": {\"kind\": \"x\"}},"
                         " \"models\": {\"m\": {\"providers\": [\"zz\"]}}}", &d);
    cr_expect_null(c);
    cr_expect_eq(d.n_errors, 3, "expected 3 errors, got %zu", d.n_errors);
    qt_diag_free(&d);
}

Test(config, missing_file_is_an_error)
{
    qt_diag d = { 0 };
    cr_expect_null(qt_config_load("/nonexistent/quotatop.json", &d));
    cr_expect(diag_has(d.errors, d.n_errors, "cannot open /nonexistent/quotatop.json"));
    qt_diag_free(&d);
}

Test(config, print_effective_shows_chain_headroom_and_key_presence_not_value)
{
    setenv("QT_TEST_KEY_SET", "sk-very-secret-value", 1);
    unsetenv("QT_TEST_KEY_UNSET");
    const char *json = "{\"providers\": {"
        "\"a\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:1/v1\", \"api_key_env\": \"QT_TEST_KEY_SET\", \"rpm\": 1000},"
        "\"b\": {\"kind\": \"anthropic\", \"base_url\": \"http://127.0.0.1:2/v1\", \"api_key_env\": \"QT_TEST_KEY_UNSET\"}},"
        "\"models\": {\"x\": {\"providers\": [\"a\"], \"fallback\": [\"y\", \"@cache\"]},"
        "\"y\": {\"providers\": [\"b\"], \"fallback\": [\"z\"]}, \"z\": {\"providers\": [\"a\"]}},"
        "\"limits\": {\"headroom\": 0.5}}";
    qt_diag d = { 0 };
    qt_config *c = parse(json, &d);
    cr_assert_not_null(c);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    qt_config_print_effective(c, f);
    fclose(f);
    cr_expect(strstr(buf, "rpm 500 (of 1000)"), "headroom not applied:\n%s", buf);
    cr_expect(strstr(buf, "chain: x -> y -> z -> @cache"), "chain missing:\n%s", buf);
    cr_expect(strstr(buf, "$QT_TEST_KEY_SET is set"));
    cr_expect(strstr(buf, "$QT_TEST_KEY_UNSET is NOT set"));
    cr_expect_null(strstr(buf, "sk-very-secret-value"), "the key's value was printed");
    free(buf);
    qt_config_free(c);
    qt_diag_free(&d);
}

Test(config, cached_and_cache_write_prices)
{
    qt_diag d = { 0 };
    qt_config *c = parse("{" MINIMAL_PROVIDERS ", \"models\": {"
                         "\"a\": {\"providers\": [\"oa\"], \"input_usd_per_mtok\": 3, \"output_usd_per_mtok\": 15,"
                         " \"cached_input_usd_per_mtok\": 0.3, \"cache_write_usd_per_mtok\": 3.75},"
                         "\"b\": {\"providers\": [\"oa\"], \"input_usd_per_mtok\": 2, \"output_usd_per_mtok\": 8}}}",
                         &d);
    cr_assert_not_null(c);
    cr_expect_eq(d.n_errors, 0);
    const qt_model_cfg *a = &c->models[qt_config_model_index(c, "a")];
    const qt_model_cfg *b = &c->models[qt_config_model_index(c, "b")];
    cr_expect_float_eq(a->cached_input_usd_per_mtok, 0.3, 1e-12);
    cr_expect_float_eq(a->cache_write_usd_per_mtok, 3.75, 1e-12);
    cr_expect_lt(b->cached_input_usd_per_mtok, 0, "unset");
    /* 1000 prompt tokens of which 600 read from cache and 200 written, 100 out */
    cr_expect_float_eq(qt_model_cost_usd(a, 1000, 600, 200, 100),
                       (200 * 3 + 600 * 0.3 + 200 * 3.75 + 100 * 15) / 1e6, 1e-15);
    cr_expect_float_eq(qt_model_cost_usd(b, 1000, 600, 200, 100), (1000 * 2 + 100 * 8) / 1e6, 1e-15,
                       "unset prices are the input price");
    cr_expect_float_eq(qt_model_worst_cost_usd(a, 1000, 100), (1000 * 3.75 + 100 * 15) / 1e6, 1e-15,
                       "a reservation prices the prompt at the dearer cache-write price");
    cr_expect_float_eq(qt_model_worst_cost_usd(b, 1000, 100), (1000 * 2 + 100 * 8) / 1e6, 1e-15);
    /* counts beyond the prompt are clamped, negatives are 0 */
    cr_expect_float_eq(qt_model_cost_usd(a, 100, 500, 500, -4), 100 * 0.3 / 1e6, 1e-15);
    qt_config_free(c);
    qt_diag_free(&d);
    c = parse("{" MINIMAL_PROVIDERS ", \"models\": {\"a\": {\"providers\": [\"oa\"],"
              " \"cached_input_usd_per_mtok\": -1}}}", &d);
    cr_expect_null(c);
    cr_expect(diag_has(d.errors, d.n_errors, "models.a.cached_input_usd_per_mtok"));
    qt_diag_free(&d);
}
