/* cmd_check.c: `quotatop check -c CONFIG [JOBS]` validates a config (and,
 * when given, every line of a jobs file against it) and prints the effective
 * settings. Exit 0 valid, 2 invalid or usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "quotatop/config.h"
#include "quotatop/jobs.h"

/* Checks each line of a jobs file; prints the problems. Returns how many
 * lines are invalid, or -1 when the file cannot be read. */
static long check_jobs(const qt_config *cfg, const char *path, long *total)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long line_no = 0, bad = 0;
    *total = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        line_no++;
        if (strspn(line, " \t\r\n") == (size_t)n)
            continue;
        (*total)++;
        qt_job *job = NULL;
        char err[300];
        if (qt_job_parse(line, (size_t)n, line_no, cfg, &job, NULL, NULL, err, sizeof err) != QT_OK) {
            fprintf(stderr, "%s: %s\n", path, err);
            bad++;
        }
        qt_job_free(job);
    }
    free(line);
    fclose(f);
    return bad;
}

int qt_cmd_check(int argc, char **argv)
{
    const char *path = NULL, *jobs = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: quotatop check -c CONFIG [JOBS]\n"
                   "Validates CONFIG and prints the effective limits (after headroom), each\n"
                   "model's fallback chain, and whether each provider's API key variable is set.\n"
                   "With JOBS, also checks every job line against the config.\n");
            return 0;
        } else if (argv[i][0] != '-' && !jobs) {
            jobs = argv[i];
        } else {
            fprintf(stderr, "quotatop check: unexpected argument '%s'\n"
                            "usage: quotatop check -c CONFIG [JOBS]\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "quotatop check: missing -c CONFIG\nusage: quotatop check -c CONFIG\n");
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
    int rc = 0;
    if (jobs) {
        long total = 0, bad = check_jobs(cfg, jobs, &total);
        if (bad != 0)
            rc = 2;
        if (bad > 0)
            fprintf(stderr, "%s: %ld of %ld jobs invalid\n", jobs, bad, total);
        else if (bad == 0)
            printf("%s: %ld jobs valid\n", jobs, total);
    }
    printf("%s: valid\n\n", path);
    qt_config_print_effective(cfg, stdout);
    qt_config_free(cfg);
    return rc;
}
