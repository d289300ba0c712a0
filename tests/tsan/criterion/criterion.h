/* tests/tsan/criterion/criterion.h: a minimal stand-in for Criterion so the
 * threaded unit tests (named threads_*) run under ThreadSanitizer.
 *
 * libcriterion cannot start in a ThreadSanitizer process: its boxfort arena
 * fails with "Could not initialize inheritable arena" (Criterion issue #274,
 * open). `make tsan` therefore compiles the same test files against this
 * header, which registers Test() bodies with constructors and runs the ones
 * whose name starts with the prefix given (default threads_) in-process.
 * Only the assertions those files use are provided; any other Criterion
 * macro is a compile error here, which is the point: add it when needed.
 */
#ifndef QT_TSAN_CRITERION_SHIM_H
#define QT_TSAN_CRITERION_SHIM_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*shim_fn)(void);
static struct { const char *suite, *name; shim_fn fn; } shim_tests[512];
static int shim_count;
static int shim_failures;

static void shim_register(const char *suite, const char *name, shim_fn fn)
{
    if (shim_count < 512) {
        shim_tests[shim_count].suite = suite;
        shim_tests[shim_count].name = name;
        shim_tests[shim_count++].fn = fn;
    }
}

static void shim_check(int ok, const char *what, const char *file, int line)
{
    if (!ok) {
        fprintf(stderr, "  %s:%d: assertion failed: %s\n", file, line, what);
        shim_failures++;
    }
}

#define Test(suite, name, ...)                                                         \
    static void suite##_##name##_body(void);                                           \
    __attribute__((constructor)) static void suite##_##name##_reg(void)                \
    {                                                                                  \
        shim_register(#suite, #name, suite##_##name##_body);                           \
    }                                                                                  \
    static void suite##_##name##_body(void)

#define SHIM_CHECK(c, text) shim_check(!!(c), text, __FILE__, __LINE__)
#define cr_assert(c, ...) SHIM_CHECK(c, #c)
#define cr_expect(c, ...) SHIM_CHECK(c, #c)
#define cr_assert_eq(a, b, ...) SHIM_CHECK((a) == (b), #a " == " #b)
#define cr_expect_eq(a, b, ...) SHIM_CHECK((a) == (b), #a " == " #b)
#define cr_assert_lt(a, b, ...) SHIM_CHECK((a) < (b), #a " < " #b)
#define cr_assert_gt(a, b, ...) SHIM_CHECK((a) > (b), #a " > " #b)
#define cr_assert_geq(a, b, ...) SHIM_CHECK((a) >= (b), #a " >= " #b)
#define cr_assert_leq(a, b, ...) SHIM_CHECK((a) <= (b), #a " <= " #b)
#define cr_assert_neq(a, b, ...) SHIM_CHECK((a) != (b), #a " != " #b)
#define cr_assert_null(a, ...) SHIM_CHECK((a) == NULL, #a " == NULL")
#define cr_assert_not_null(a, ...) SHIM_CHECK((a) != NULL, #a " != NULL")
#define cr_assert_str_eq(a, b, ...) SHIM_CHECK(strcmp((a), (b)) == 0, #a " equals " #b)
#define cr_assert_float_eq(a, b, eps, ...) \
    SHIM_CHECK(fabs((double)(a) - (double)(b)) <= (eps), #a " ~ " #b)

int main(int argc, char **argv)
{
    const char *prefix = argc > 1 ? argv[1] : "threads_";
    int ran = 0;
    for (int i = 0; i < shim_count; i++) {
        if (strncmp(shim_tests[i].name, prefix, strlen(prefix)))
            continue;
        int before = shim_failures;
        shim_tests[i].fn();
        printf("[%s] %s::%s\n", shim_failures == before ? "PASS" : "FAIL", shim_tests[i].suite,
               shim_tests[i].name);
        ran++;
    }
    printf("tsan: %d threaded tests, %d assertion failures\n", ran, shim_failures);
    return shim_failures || ran == 0;
}

#endif
