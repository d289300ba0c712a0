/* test_theme.c: theme files (suite "theme").
 *
 * DESIGN
 * A good file sets exactly the roles it names and leaves the rest at the
 * built-in default; every kind of malformed line is rejected with a message
 * naming the origin and the line, and the theme falls back to the built-in
 * default (never half-applied). The shipped theme files must parse
 * and name every role. Colour degradation for 8/16/256-colour terminals is
 * a table. No curses here.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quotatop/ui.h"

static qt_err parse(const char *text, qt_theme *t, char *err, size_t errlen)
{
    return qt_theme_parse(text, strlen(text), "test.theme", t, err, errlen);
}

Test(theme, role_names_round_trip)
{
    for (int r = 0; r < QT_ROLE__COUNT; r++) {
        const char *n = qt_theme_role_name((qt_ui_role)r);
        cr_assert_str_neq(n, "?", "role %d has no name", r);
        cr_assert_eq(qt_theme_role_from_name(n), r, "%s", n);
    }
    cr_assert_eq(qt_theme_role_from_name("gauge_okay"), -1);
    cr_assert_str_eq(qt_theme_role_name(QT_ROLE__COUNT), "?");
    cr_assert_eq(qt_theme_role_from_name("circuit_half_open"), QT_ROLE_CIRCUIT_HALF_OPEN);
}

Test(theme, good_file_sets_named_roles_only)
{
    const char *text =
        "# a comment\n"
        "\n"
        "gauge_ok = bright_green, black, bold | underline   # trailing comment\n"
        "  circuit_open=white,red,reverse\n"
        "plot_limit = 196\n"
        "text = default,,\n"
        "dim = grey, -1, dim\n"
        "event_retry = yellow, default, normal\r\n";
    qt_theme t, def;
    char err[256] = "";
    cr_assert_eq(parse(text, &t, err, sizeof err), QT_OK, "%s", err);
    qt_theme_builtin(&def);
    cr_assert_eq(t.roles[QT_ROLE_GAUGE_OK].fg, 10);
    cr_assert_eq(t.roles[QT_ROLE_GAUGE_OK].bg, 0);
    cr_assert_eq(t.roles[QT_ROLE_GAUGE_OK].attrs, QT_ATTR_BOLD | QT_ATTR_UNDERLINE);
    cr_assert_eq(t.roles[QT_ROLE_CIRCUIT_OPEN].fg, 7);
    cr_assert_eq(t.roles[QT_ROLE_CIRCUIT_OPEN].bg, 1);
    cr_assert_eq(t.roles[QT_ROLE_CIRCUIT_OPEN].attrs, QT_ATTR_REVERSE);
    cr_assert_eq(t.roles[QT_ROLE_PLOT_LIMIT].fg, 196);
    cr_assert_eq(t.roles[QT_ROLE_PLOT_LIMIT].bg, QT_COLOR_DEFAULT);
    cr_assert_eq(t.roles[QT_ROLE_PLOT_LIMIT].attrs, 0u);
    cr_assert_eq(t.roles[QT_ROLE_TEXT].fg, QT_COLOR_DEFAULT);
    cr_assert_eq(t.roles[QT_ROLE_DIM].fg, 8);
    cr_assert_eq(t.roles[QT_ROLE_DIM].attrs, QT_ATTR_DIM);
    cr_assert_eq(t.roles[QT_ROLE_EVENT_RETRY].fg, 3);
    /* roles not named keep the built-in default */
    cr_assert_eq(memcmp(&t.roles[QT_ROLE_HEADER], &def.roles[QT_ROLE_HEADER], sizeof(qt_ui_style)), 0);
    cr_assert_eq(memcmp(&t.roles[QT_ROLE_FOOTER], &def.roles[QT_ROLE_FOOTER], sizeof(qt_ui_style)), 0);
}

Test(theme, empty_text_is_the_default)
{
    qt_theme t, def;
    char err[64];
    cr_assert_eq(qt_theme_parse("", 0, "empty", &t, err, sizeof err), QT_OK);
    qt_theme_builtin(&def);
    cr_assert_eq(memcmp(t.roles, def.roles, sizeof def.roles), 0);
}

/* Each malformed line type, after a good line (so the bad one is line 2). */
struct bad_case { char line[80]; char why[48]; };

ParameterizedTestParameters(theme, malformed_lines)
{
    static struct bad_case cases[] = {
        { "gauge_ok green", "expected `role = fg,bg,attrs`" },
        { "= green", "missing role name" },
        { "gauge_okay = green", "unknown role 'gauge_okay'" },
        { "gauge_ok =", "has no value" },
        { "gauge_ok = greenish", "unknown colour 'greenish'" },
        { "gauge_ok = green, purple", "unknown colour 'purple'" },
        { "gauge_ok = 256", "unknown colour '256'" },
        { "gauge_ok = -2", "unknown colour '-2'" },
        { "gauge_ok = 12x", "unknown colour '12x'" },
        { "gauge_ok = bright_", "unknown colour 'bright_'" },
        { "gauge_ok = green, black, blink", "unknown attribute 'blink'" },
        { "gauge_ok = green, black, bold, extra", "too many fields" },
    };
    return cr_make_param_array(struct bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_case *c, theme, malformed_lines)
{
    char text[200];
    snprintf(text, sizeof text, "circuit_open = white, red\n%s\nplot_limit = red\n", c->line);
    qt_theme t, def;
    char err[256] = "";
    cr_assert_eq(parse(text, &t, err, sizeof err), QT_ERR_INVALID, "accepted: %s", c->line);
    cr_assert(strstr(err, "test.theme:2: ") == err, "message does not name file and line: %s", err);
    cr_assert(strstr(err, c->why), "'%s' not in: %s", c->why, err);
    /* the default, not half of the file */
    qt_theme_builtin(&def);
    cr_assert_eq(memcmp(t.roles, def.roles, sizeof def.roles), 0, "theme half-applied after: %s", err);
}

Test(theme, overlong_line_and_nul)
{
    char text[1200];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    qt_theme t;
    char err[256];
    cr_assert_eq(parse(text, &t, err, sizeof err), QT_ERR_INVALID);
    cr_assert(strstr(err, "test.theme:1: line too long"), "%s", err);
    const char nul[] = "text = red\ndim = gr\0ey\n";
    cr_assert_eq(qt_theme_parse(nul, sizeof nul - 1, "n.theme", &t, err, sizeof err), QT_ERR_INVALID);
    cr_assert(strstr(err, "n.theme:2: NUL"), "%s", err);
}

Test(theme, load_missing_file_names_it)
{
    qt_theme t;
    char err[256];
    cr_assert_eq(qt_theme_load("/nonexistent/x.theme", &t, err, sizeof err), QT_ERR_IO);
    cr_assert(strstr(err, "/nonexistent/x.theme: "), "%s", err);
}

Test(theme, load_malformed_file_names_file_and_line)
{
    char path[] = "/tmp/qt-theme-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *text = "# ok\ntext = white\n\ngauge_warn = yellow, black, sparkle\n";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    qt_theme t;
    char err[512], want[64];
    qt_err r = qt_theme_load(path, &t, err, sizeof err);
    unlink(path);
    cr_assert_eq(r, QT_ERR_INVALID);
    snprintf(want, sizeof want, "%s:4: unknown attribute 'sparkle'", path);
    cr_assert(strstr(err, want), "want '%s' in '%s'", want, err);
}

/* The shipped themes parse and each names every role explicitly. */
struct shipped_case { char name[16]; };

ParameterizedTestParameters(theme, shipped_files)
{
    static struct shipped_case cases[] = { { "default" }, { "dark" }, { "light" }, { "mono" } };
    return cr_make_param_array(struct shipped_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct shipped_case *c, theme, shipped_files)
{
    char path[512];
    /* tests run from the repository root (make) */
    cr_assert_eq(qt_theme_find(c->name, NULL, NULL, path, sizeof path), QT_OK, "themes/%s.theme not found",
                 c->name);
    qt_theme t;
    char err[512] = "";
    cr_assert_eq(qt_theme_load(path, &t, err, sizeof err), QT_OK, "%s", err);
    cr_assert_str_eq(t.name, c->name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    for (int r = 0; r < QT_ROLE__COUNT; r++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\n%s ", qt_theme_role_name((qt_ui_role)r));
        cr_assert(strstr(text, needle), "%s does not set role %s", path, qt_theme_role_name((qt_ui_role)r));
    }
    if (!strcmp(c->name, "mono"))
        for (int r = 0; r < QT_ROLE__COUNT; r++)
            cr_assert(t.roles[r].fg == QT_COLOR_DEFAULT && t.roles[r].bg == QT_COLOR_DEFAULT,
                      "mono sets a colour for %s", qt_theme_role_name((qt_ui_role)r));
    if (!strcmp(c->name, "default")) {
        qt_theme def;
        qt_theme_builtin(&def);
        cr_assert_eq(memcmp(t.roles, def.roles, sizeof def.roles), 0,
                     "themes/default.theme differs from the built-in default");
    }
}

Test(theme, find_order_and_paths)
{
    char path[512];
    cr_assert_eq(qt_theme_find("no-such-theme", "/nonexistent", "/nonexistent", path, sizeof path),
                 QT_ERR_NOTFOUND);
    cr_assert_eq(qt_theme_find("", NULL, NULL, path, sizeof path), QT_ERR_NOTFOUND);
    cr_assert_eq(qt_theme_find("./themes/dark.theme", NULL, NULL, path, sizeof path), QT_OK);
    cr_assert_str_eq(path, "./themes/dark.theme");
    cr_assert_eq(qt_theme_find("/nonexistent/dark.theme", NULL, NULL, path, sizeof path), QT_ERR_NOTFOUND);
    /* exe_dir/../themes comes first. The exe dir must exist for "dir/.."
     * to resolve: tests/ always does (build/ need not: make sanitize builds
     * into build-asan/ on a clean clone). */
    char cwd[400], exe[480];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(exe, sizeof exe, "%s/tests", cwd);
    cr_assert_eq(qt_theme_find("light", exe, NULL, path, sizeof path), QT_OK);
    char want[520];
    snprintf(want, sizeof want, "%s/../themes/light.theme", exe);
    cr_assert_str_eq(path, want);
    /* datadir last */
    char dd[] = "/tmp/qt-datadir-XXXXXX";
    cr_assert_not_null(mkdtemp(dd));
    char sub[64], file[96];
    snprintf(sub, sizeof sub, "%s/themes", dd);
    mkdir(sub, 0700);
    snprintf(file, sizeof file, "%s/only-here.theme", sub);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs("text = red\n", f);
    fclose(f);
    qt_err r = qt_theme_find("only-here", "/nonexistent", dd, path, sizeof path);
    unlink(file);
    rmdir(sub);
    rmdir(dd);
    cr_assert_eq(r, QT_OK);
    cr_assert_str_eq(path, file);
}

struct degrade_case { short c; int ncolors; short want; int bold; };

ParameterizedTestParameters(theme, degrade)
{
    static struct degrade_case cases[] = {
        { -1, 8, -1, 0 },   { 3, 8, 3, 0 },     { 11, 8, 3, 1 },    { 8, 8, 0, 1 },
        { 11, 16, 11, 0 },  { 196, 256, 196, 0 }, { 196, 8, 1, 0 },  { 196, 16, 9, 0 },
        { 21, 8, 4, 0 },    { 231, 16, 15, 0 }, { 231, 8, 7, 0 },   { 16, 8, 0, 0 },
        { 250, 16, 7, 0 },  { 46, 8, 2, 0 },
    };
    return cr_make_param_array(struct degrade_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct degrade_case *c, theme, degrade)
{
    int bold = -1;
    short got = qt_theme_degrade_color(c->c, c->ncolors, &bold);
    cr_assert_eq(got, c->want, "%d on %d colours -> %d, want %d", c->c, c->ncolors, got, c->want);
    cr_assert_eq(bold, c->bold, "%d on %d colours: bold %d", c->c, c->ncolors, bold);
}
