/* test_backend_config.c: the `backend` section of the config (defaults,
 * on_error, expected_processes, lease_ms, timeout_ms, prefix checks). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "quotatop/config.h"

#define BASE "{\"providers\": {\"oa\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:1\"}}," \
             " \"models\": {\"m\": {\"providers\": [\"oa\"]}}"

static qt_config *parse(const char *json, qt_diag *d)
{
    return qt_config_parse(json, strlen(json), d);
}

static int has_error(const qt_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->n_errors; i++)
        if (strstr(d->errors[i], needle))
            return 1;
    return 0;
}

Test(backend_config, defaults)
{
    qt_diag d = { 0 };
    qt_config *c = parse(BASE ", \"backend\": {\"kind\": \"redis\", \"url\": \"redis://127.0.0.1:6379\"}}", &d);
    cr_assert_not_null(c);
    cr_expect_eq(c->backend.kind, QT_BACKEND_REDIS);
    cr_expect_eq(c->backend.on_error, QT_BACKEND_ON_ERROR_LOCAL);
    cr_expect_eq(c->backend.expected_processes, 1);
    cr_expect_eq(c->backend.lease_ms, 10000);
    cr_expect_eq(c->backend.timeout_ms, 500);
    qt_config_free(c);
    qt_diag_free(&d);
}

Test(backend_config, every_key_read)
{
    qt_diag d = { 0 };
    qt_config *c = parse(BASE ", \"backend\": {\"kind\": \"redis\", \"url\": \"redis://h:1\", \"prefix\": \"team-a\","
                         " \"on_error\": \"closed\", \"expected_processes\": 3, \"lease_ms\": 2000,"
                         " \"timeout_ms\": 100}}", &d);
    cr_assert_not_null(c, "%s", d.n_errors ? d.errors[0] : "");
    cr_expect_eq(d.n_warnings, 0);
    cr_expect_str_eq(c->backend.prefix, "team-a");
    cr_expect_eq(c->backend.on_error, QT_BACKEND_ON_ERROR_CLOSED);
    cr_expect_eq(c->backend.expected_processes, 3);
    cr_expect_eq(c->backend.lease_ms, 2000);
    cr_expect_eq(c->backend.timeout_ms, 100);
    qt_config_free(c);
    qt_diag_free(&d);
}

struct bad { char json[400]; char expect[160]; };   /* copied into each test process */
static struct bad bads[] = {
    { BASE ", \"backend\": {\"kind\": \"redis\", \"url\": \"redis://h:1\", \"on_error\": \"open\"}}",
      "backend.on_error: \"open\" is not \"local\" or \"closed\"" },
    { BASE ", \"backend\": {\"kind\": \"redis\", \"url\": \"redis://h:1\", \"expected_processes\": 0}}",
      "backend.expected_processes" },
    { BASE ", \"backend\": {\"kind\": \"redis\", \"url\": \"redis://h:1\", \"lease_ms\": 5}}",
      "backend.lease_ms" },
    { BASE ", \"backend\": {\"kind\": \"redis\", \"url\": \"redis://h:1\", \"prefix\": \"a{b}\"}}",
      "backend.prefix" },
};

ParameterizedTestParameters(backend_config, errors)
{
    return cr_make_param_array(struct bad, bads, sizeof bads / sizeof bads[0]);
}

ParameterizedTest(struct bad *b, backend_config, errors)
{
    qt_diag d = { 0 };
    qt_config *c = parse(b->json, &d);
    cr_expect_null(c);
    cr_expect(has_error(&d, b->expect), "no error [%s]; first: [%s]", b->expect,
              d.n_errors ? d.errors[0] : "(none)");
    qt_config_free(c);
    qt_diag_free(&d);
}
