/* main.c: the command line. One function per subcommand (src/cmd.h); this
 * file only dispatches and prints usage. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "quotatop/jsonmem.h"

static const char usage[] =
    "usage: quotatop <command> [options]      (quotatop --version)\n"
    "\n"
    "  demo  [--headless] [--duration SECONDS] [--theme NAME] [--print-config]\n"
    "  run   -c CONFIG [-o RESULTS] [--summary FILE] [--headless] [--stay] [--workers N]\n"
    "        [--resume] [-v] JOBS|-\n"
    "  serve -c CONFIG [--listen HOST:PORT] [--headless] [--workers N]\n"
    "        [--idle-timeout SECONDS] [--headers-timeout MS] [--body-timeout MS]\n"
    "        [--max-conns-per-client N] [-v]\n"
    "  mock  [--listen HOST:PORT] [--port-file FILE] [--kind openai|anthropic] [--rpm N]\n"
    "        [--tpm N] [--fail-rate F] [--latency-ms N] [--latency-jitter-ms N]\n"
    "        [--jitter-dist uniform|exp] [--outage START_S:END_S] [--context-window N]\n"
    "        [--completion-tokens N] [--model SPEC]... [--only-declared]\n"
    "        [--require-key-env VAR] [--seed N] [--stream-chunk-ms N] [-v]\n"
    "  top   [-c CONFIG] [--connect SOCKET|http://HOST:PORT] [--json] [--theme NAME]\n"
    "  check -c CONFIG [JOBS]\n"
    "  spend [-c CONFIG] [--by workflow|model|day] [--since DAYS] [--json]\n"
    "  replay [--trace FILE] [--since DAYS] [--speed max] -c CONFIG [-c CONFIG ...]\n"
    "        [--upstream recorded|config] [--json] [--seed N]\n"
    "\n"
    "Run `quotatop <command> --help` for what each option does.\n";

static const struct {
    const char *name;
    int (*fn)(int, char **);
} commands[] = {
    { "demo",  qt_cmd_demo },
    { "run",   qt_cmd_run },
    { "serve", qt_cmd_serve },
    { "mock",  qt_cmd_mock },
    { "check", qt_cmd_check },
    { "spend", qt_cmd_spend },
    { "replay", qt_cmd_replay },
    { "top",   qt_cmd_top },
};

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")
                      || !strcmp(argv[1], "version"))) {
        printf("quotatop %s\n", QT_VERSION);
        return 0;
    }
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            qt_jsonmem_init();
            int rc = commands[i].fn(argc - 1, argv + 1);
            qt_jsonmem_release();
            return rc;
        }
    fprintf(stderr, "quotatop: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
