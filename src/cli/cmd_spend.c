/* cmd_spend.c: `quotatop spend [-c CONFIG] [--by workflow|model|day]
 * [--since DAYS] [--json]`: what the ledger says was spent.
 *
 * The ledger lives in the config's state_dir (without -c, the default state
 * dir: $XDG_STATE_HOME/quotatop or ~/.local/state/quotatop). The calls of
 * the last DAYS UTC days (today included; 0 = all) are grouped by workflow,
 * model used or day and printed as an aligned table with a total line, or as
 * JSON. A ledger that does not exist yet is not an error: nothing was spent.
 * Exit 0 shown, 1 the ledger cannot be read, 2 usage or config error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cmd.h"
#include "cmd_common.h"
#include "quotatop/clock.h"
#include "quotatop/ledger.h"

#define DEFAULT_SINCE_DAYS 30
#define MAX_SINCE_DAYS 1000000

static const char spend_usage[] =
    "usage: quotatop spend [-c CONFIG] [--by workflow|model|day] [--since DAYS] [--json]\n"
    "Shows the spend recorded in the ledger (state_dir of CONFIG, else the default\n"
    "state dir) over the last DAYS UTC days, today included (default 30, 0 = all),\n"
    "grouped by workflow (default), by the model that answered, or by day.\n";

typedef struct {
    uint64_t calls, prompt, completion;
    double usd;
} totals;

/* Display width of a UTF-8 string (code points; good enough for names). */
static int text_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* Prints a name padded to width, control characters shown as '?' (names
 * come from job files and must not drive the terminal). */
static void print_name(FILE *out, const char *s, int width)
{
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, out);
    }
    for (int w = text_width(s); w < width; w++)
        fputc(' ', out);
}

static void print_table(FILE *out, qt_ledger_by by, unsigned since, const char *path,
                        const qt_ledger_row *rows, size_t n, const totals *t)
{
    if (since)
        fprintf(out, "spend by %s, last %u day%s (UTC, today included)", qt_ledger_by_name(by), since,
                since == 1 ? "" : "s");
    else
        fprintf(out, "spend by %s, all time", qt_ledger_by_name(by));
    fprintf(out, " - %s\n\n", path);
    const char *head = by == QT_LEDGER_BY_WORKFLOW ? "WORKFLOW" : by == QT_LEDGER_BY_MODEL ? "MODEL"
                                                                                          : "DAY (UTC)";
    int w = text_width(head);
    for (size_t i = 0; i < n; i++)
        if (text_width(rows[i].name) > w)
            w = text_width(rows[i].name);
    if (w < 5)
        w = 5;   /* "TOTAL" */
    print_name(out, head, w);
    fprintf(out, "  %8s  %12s  %12s  %14s\n", "CALLS", "TOKENS IN", "TOKENS OUT", "COST USD");
    for (size_t i = 0; i < n; i++) {
        print_name(out, rows[i].name, w);
        fprintf(out, "  %8llu  %12llu  %12llu  %14.6f\n", (unsigned long long)rows[i].calls,
                (unsigned long long)rows[i].prompt_tokens,
                (unsigned long long)rows[i].completion_tokens, rows[i].cost_usd);
    }
    print_name(out, "TOTAL", w);
    fprintf(out, "  %8llu  %12llu  %12llu  %14.6f\n", (unsigned long long)t->calls,
            (unsigned long long)t->prompt, (unsigned long long)t->completion, t->usd);
}

/* The JSON form: {"by", "since_days", "ledger", "rows": [...], "total": {...}}. */
static int print_json(FILE *out, qt_ledger_by by, unsigned since, const char *path,
                      const qt_ledger_row *rows, size_t n, const totals *t)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "rows");
    cJSON *tot = cJSON_AddObjectToObject(root, "total");
    if (!root || !arr || !tot) {
        cJSON_Delete(root);
        return -1;
    }
    cJSON_AddStringToObject(root, "by", qt_ledger_by_name(by));
    cJSON_AddNumberToObject(root, "since_days", since);
    cJSON_AddStringToObject(root, "ledger", path);
    for (size_t i = 0; i < n; i++) {
        cJSON *r = cJSON_CreateObject();
        if (!r)
            break;
        cJSON_AddStringToObject(r, "name", rows[i].name);
        cJSON_AddNumberToObject(r, "calls", (double)rows[i].calls);
        cJSON_AddNumberToObject(r, "prompt_tokens", (double)rows[i].prompt_tokens);
        cJSON_AddNumberToObject(r, "completion_tokens", (double)rows[i].completion_tokens);
        cJSON_AddNumberToObject(r, "cost_usd", rows[i].cost_usd);
        cJSON_AddItemToArray(arr, r);
    }
    cJSON_AddNumberToObject(tot, "calls", (double)t->calls);
    cJSON_AddNumberToObject(tot, "prompt_tokens", (double)t->prompt);
    cJSON_AddNumberToObject(tot, "completion_tokens", (double)t->completion);
    cJSON_AddNumberToObject(tot, "cost_usd", t->usd);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return -1;
    fprintf(out, "%s\n", text);
    free(text);
    return 0;
}

/* Parses DAYS: a decimal integer in [0, MAX_SINCE_DAYS]. */
static int parse_days(const char *s, unsigned *out)
{
    char *end = NULL;
    if (!s || *s < '0' || *s > '9')
        return -1;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v > MAX_SINCE_DAYS)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "quotatop spend: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", spend_usage);
    return 2;
}

int qt_cmd_spend(int argc, char **argv)
{
    const char *cfg_path = NULL, *by_text = "workflow";
    unsigned since = DEFAULT_SINCE_DAYS;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s", spend_usage);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (i + 1 >= argc)
                return usage_error("%s needs a CONFIG file", a);
            cfg_path = argv[++i];
        } else if (!strcmp(a, "--by") || !strncmp(a, "--by=", 5)) {
            val = a[4] == '=' ? a + 5 : i + 1 < argc ? argv[++i] : NULL;
            if (!val)
                return usage_error("%s needs workflow, model or day", a);
            by_text = val;
        } else if (!strcmp(a, "--since") || !strncmp(a, "--since=", 8)) {
            val = a[7] == '=' ? a + 8 : i + 1 < argc ? argv[++i] : NULL;
            if (!val || parse_days(val, &since) != 0)
                return usage_error("--since needs a number of days (0 = all), got '%s'",
                                   val ? val : "");
        } else {
            return usage_error("unexpected argument '%s'", a);
        }
    }
    qt_ledger_by by;
    if (qt_ledger_by_parse(by_text, &by) != QT_OK)
        return usage_error("--by is workflow, model or day, not '%s'", by_text);

    char *dir = NULL;
    if (cfg_path) {
        qt_config *cfg = qt_cmd_load_config(cfg_path);
        if (!cfg)
            return 2;
        dir = cfg->state_dir ? strdup(cfg->state_dir) : NULL;
        qt_config_free(cfg);
        if (!dir || !*dir) {
            free(dir);
            fprintf(stderr, "quotatop spend: %s disables the ledger (\"state_dir\": \"\"); "
                            "no spend is recorded\n", cfg_path);
            return 0;
        }
    } else {
        dir = qt_ledger_default_dir();
        if (!dir) {
            fprintf(stderr, "quotatop spend: out of memory\n");
            return 1;
        }
    }

    totals t = { 0 };
    qt_ledger_row *rows = NULL;
    size_t n = 0;
    int rc = 0;
    if (!qt_ledger_exists(dir)) {
        /* Not created on a read: a missing ledger means nothing was spent. */
        if (json)
            print_json(stdout, by, since, "", NULL, 0, &t);
        fprintf(json ? stderr : stdout, "no spend recorded yet in %s\n", dir);
        free(dir);
        return 0;
    }
    char err[512];
    qt_ledger *l = qt_ledger_open(dir, err, sizeof err);
    if (!l) {
        fprintf(stderr, "quotatop spend: %s\n", err);
        free(dir);
        return 1;
    }
    qt_err r = qt_ledger_query(l, by, since, qt_wall_ms(), &rows, &n);
    if (r != QT_OK) {
        qt_ledger_errmsg(l, err, sizeof err);
        fprintf(stderr, "quotatop spend: %s\n", err[0] ? err : qt_strerror(r));
        rc = 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            t.calls += rows[i].calls;
            t.prompt += rows[i].prompt_tokens;
            t.completion += rows[i].completion_tokens;
            t.usd += rows[i].cost_usd;
        }
        if (json)
            rc = print_json(stdout, by, since, qt_ledger_path(l), rows, n, &t) == 0 ? 0 : 1;
        else
            print_table(stdout, by, since, qt_ledger_path(l), rows, n, &t);
    }
    qt_ledger_rows_free(rows, n);
    qt_ledger_close(l);
    free(dir);
    return rc;
}
