/* cmd_check.c: `quotatop check -c CONFIG` validates a config and prints the
 * effective settings. Exit 0 valid, 2 invalid or usage error. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "quotatop/config.h"

int qt_cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: quotatop check -c CONFIG\n"
                   "Validates CONFIG and prints the effective limits (after headroom), each\n"
                   "model's fallback chain, and whether each provider's API key variable is set.\n");
            return 0;
        } else {
            fprintf(stderr, "quotatop check: unexpected argument '%s'\n"
                            "usage: quotatop check -c CONFIG\n", argv[i]);
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
    printf("%s: valid\n\n", path);
    qt_config_print_effective(cfg, stdout);
    qt_config_free(cfg);
    return 0;
}
