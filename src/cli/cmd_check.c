/* cmd_check.c: `quotatop check -c CONFIG [JOBS]` validates a config (and,
 * when given, every line of a jobs file against it) and prints the effective
 * settings. Exit 0 valid, 2 invalid or usage error.
 *
 * Beyond what loading refuses, check warns about what would go wrong at run
 * time without stopping it: a provider's API key variable that is unset, a
 * state_dir that cannot be written (the ledger would be skipped), and in a
 * jobs file duplicate ids, unknown keys ("workflw" would silently run as
 * workflow "default") and, for an unknown model, the name that was meant.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "cmd.h"
#include "cmd_common.h"
#include "quotatop/config.h"
#include "quotatop/jobs.h"

/* Keys a job line may carry: quotatop's own, then the request fields that
 * are passed to the provider. */
static const char *const job_keys[] = {
    "id", "workflow", "priority", "model", "messages", "max_tokens", "temperature", "top_p",
    "stop", "tools", "tool_choice", "parallel_tool_calls", "response_format", "seed", "n",
    "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user",
    "metadata", "max_completion_tokens", "stream", "system", "stop_sequences", "top_k",
    /* the other endpoints (the job field "endpoint") */
    "endpoint", "input", "instructions", "max_output_tokens", "previous_response_id", "store",
    "reasoning", "text", "truncation", "include", "encoding_format", "dimensions", "thinking",
    "service_tier", "modalities", "audio", "prediction", "reasoning_effort", "web_search_options",
};

typedef struct {
    char *id;
    long line;
} id_line;

static int cmp_id_line(const void *a, const void *b)
{
    const id_line *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Warnings about one parsed line: unknown keys. Returns how many. */
static long lint_keys(const char *path, long line_no, const cJSON *o)
{
    long n = 0;
    for (const cJSON *it = o->child; it; it = it->next) {
        int known = 0;
        for (size_t k = 0; k < QT_ARRAY_LEN(job_keys) && !known; k++)
            known = !strcmp(it->string, job_keys[k]);
        if (known)
            continue;
        const char *hint = qt_config_suggest(it->string, job_keys, QT_ARRAY_LEN(job_keys));
        char h[96] = "";
        if (hint)
            snprintf(h, sizeof h, " (did you mean \"%s\"?)", hint);
        fprintf(stderr, "%s:%ld: warning: unknown key \"%.60s\"%s, ignored\n", path, line_no,
                it->string, h);
        n++;
    }
    return n;
}

/* A did-you-mean for a model name the config lacks, or "". */
static void model_hint(const qt_config *cfg, const cJSON *o, char *buf, size_t len)
{
    buf[0] = '\0';
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");
    if (!cJSON_IsString(m) || qt_config_model_index(cfg, m->valuestring) >= 0)
        return;
    const char **names = calloc(cfg->n_models ? cfg->n_models : 1, sizeof *names);
    if (!names)
        return;
    for (size_t i = 0; i < cfg->n_models; i++)
        names[i] = cfg->models[i].name;
    const char *c = qt_config_suggest(m->valuestring, names, cfg->n_models);
    if (c)
        snprintf(buf, len, " (did you mean \"%s\"?)", c);
    free(names);
}

/* Reports every id used by more than one line. Returns how many ids. */
static long report_duplicates(const char *path, id_line *ids, size_t n)
{
    long dups = 0;
    if (n == 0)
        return 0;   /* ids may be NULL then: qsort must not see it */
    qsort(ids, n, sizeof *ids, cmp_id_line);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && !strcmp(ids[j].id, ids[i].id))
            j++;
        if (j - i > 1) {
            fprintf(stderr, "%s:%ld: warning: duplicate id \"%.60s\" (also on line", path,
                    ids[i].line, ids[i].id);
            for (size_t k = i + 1; k < j && k < i + 6; k++)
                fprintf(stderr, "%s %ld", k > i + 1 ? "," : "", ids[k].line);
            fprintf(stderr, "%s): results cannot tell these jobs apart, --resume skips all\n",
                    j - i > 6 ? ", ..." : "");
            dups++;
        }
        i = j;
    }
    return dups;
}

/* Checks each line of a jobs file; prints the problems. Returns how many
 * lines are invalid, or -1 when the file cannot be read. *warnings gets the
 * number of warnings. */
static long check_jobs(const qt_config *cfg, const char *path, long *total, long *warnings)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, n_ids = 0, cap_ids = 0;
    id_line *ids = NULL;
    ssize_t n;
    long line_no = 0, bad = 0;
    *total = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        line_no++;
        if (strspn(line, " \t\r\n") == (size_t)n)
            continue;
        (*total)++;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n);
        if (cJSON_IsObject(o)) {
            *warnings += lint_keys(path, line_no, o);
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
            if (cJSON_IsString(id) && id->valuestring[0]) {
                if (n_ids == cap_ids) {
                    size_t nc = cap_ids ? cap_ids * 2 : 256;
                    id_line *g = realloc(ids, nc * sizeof *g);
                    if (g) {
                        ids = g;
                        cap_ids = nc;
                    }
                }
                if (n_ids < cap_ids && (ids[n_ids].id = strdup(id->valuestring)))
                    ids[n_ids++].line = line_no;
            }
        }
        qt_job *job = NULL;
        char err[300], hint[96] = "";
        if (qt_job_parse(line, (size_t)n, line_no, cfg, &job, NULL, NULL, err, sizeof err) != QT_OK) {
            if (o)
                model_hint(cfg, o, hint, sizeof hint);
            fprintf(stderr, "%s: %s%s\n", path, err, hint);
            bad++;
        }
        cJSON_Delete(o);
        qt_job_free(job);
    }
    *warnings += report_duplicates(path, ids, n_ids);
    for (size_t i = 0; i < n_ids; i++)
        free(ids[i].id);
    free(ids);
    free(line);
    fclose(f);
    return bad;
}

/* Warns when state_dir (or, when it does not exist yet, its nearest
 * existing parent) cannot be written: the ledger would be skipped. */
static int check_state_dir(const char *cfg_path, const qt_config *cfg)
{
    if (!cfg->state_dir || !*cfg->state_dir)
        return 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", cfg->state_dir);
    struct stat st;
    while (stat(dir, &st) != 0) {
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            snprintf(dir, sizeof dir, "%s", slash == dir ? "/" : ".");
            break;
        }
        *slash = '\0';
    }
    const char *why = NULL;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        why = "is not a directory";
    else {
        /* access(2) says yes to root on a read-only file system: try it */
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/.quotatop-check-XXXXXX", dir);
        int fd = mkstemp(probe);
        if (fd < 0) {
            why = strerror(errno);
        } else {
            close(fd);
            unlink(probe);
        }
    }
    if (!why)
        return 0;
    fprintf(stderr, "%s: warning: state_dir: %s cannot be written (creating a file in %s: %s); run and "
                    "serve will keep no ledger and day budgets will not survive a restart\n",
            cfg_path, cfg->state_dir, dir, why);
    return 1;
}

static const char check_usage[] =
    "usage: quotatop check -c CONFIG [JOBS]\n"
    "Validates CONFIG and prints the effective limits (after headroom), each\n"
    "model's fallback chain, and whether each provider's API key variable is set\n"
    "(an unset one is a warning). Warns when state_dir cannot be written.\n"
    "With JOBS, also checks every job line against the config: invalid lines are\n"
    "errors; unknown keys and duplicate ids are warnings.\n";

int qt_cmd_check(int argc, char **argv)
{
    const char *path = NULL, *jobs = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(check_usage, stdout);
            return 0;
        } else if (argv[i][0] != '-' && !jobs) {
            jobs = argv[i];
        } else {
            fprintf(stderr, "quotatop check: unexpected argument '%s'\n%s", argv[i], check_usage);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "quotatop check: missing -c CONFIG\n%s", check_usage);
        return 2;
    }
    qt_diag diag = { 0 };
    qt_config *cfg = qt_config_load(path, &diag);
    qt_diag_print(&diag, stderr, path);
    qt_diag_free(&diag);
    if (!cfg) {
        fprintf(stderr, "%s: invalid config\n", path);
        return 2;
    }
    qt_cmd_warn_unset_keys(cfg, stderr, path);
    check_state_dir(path, cfg);
    int rc = 0;
    if (jobs) {
        long total = 0, warnings = 0, bad = check_jobs(cfg, jobs, &total, &warnings);
        if (bad != 0)
            rc = 2;
        if (bad > 0)
            fprintf(stderr, "%s: %ld of %ld jobs invalid\n", jobs, bad, total);
        else if (bad == 0)
            printf("%s: %ld jobs valid%s\n", jobs, total, warnings ? " (see the warnings)" : "");
    }
    printf("%s: valid\n\n", path);
    qt_config_print_effective(cfg, stdout);
    qt_config_free(cfg);
    return rc;
}
