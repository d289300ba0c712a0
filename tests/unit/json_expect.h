/* json_expect.h: JSON helpers the unit suites share (header-only: the
 * suites are linked into one binary, so everything is static).
 * Thread-safety: none needed; called from one test at a time. */
#ifndef QT_JSON_EXPECT_H
#define QT_JSON_EXPECT_H

#include <cJSON.h>
#include <criterion/criterion.h>
#include <stdlib.h>

/* The tree of a test's own JSON text (asserts it parses). */
static inline cJSON *parse(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    cr_assert_not_null(j, "test JSON parses: %s", s);
    return j;
}

/* Asserts that got (a tree) prints exactly as want (JSON text, any spacing). */
static inline void expect_json(const cJSON *got, const char *want)
{
    cJSON *w = parse(want);
    char *g = cJSON_PrintUnformatted(got), *ws = cJSON_PrintUnformatted(w);
    cr_expect_str_eq(g, ws);
    free(g);
    free(ws);
    cJSON_Delete(w);
}

#endif
