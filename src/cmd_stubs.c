/* cmd_stubs.c: subcommands not built yet. Each says so plainly and exits 2;
 * this file shrinks as the commands land. */
#include <stdio.h>

#include "cmd.h"

static int not_yet(const char *name)
{
    fprintf(stderr, "quotatop %s: not implemented yet in this build\n", name);
    return 2;
}

int qt_cmd_serve(int argc, char **argv) { (void)argc; (void)argv; return not_yet("serve"); }
int qt_cmd_demo(int argc, char **argv)  { (void)argc; (void)argv; return not_yet("demo"); }
int qt_cmd_spend(int argc, char **argv) { (void)argc; (void)argv; return not_yet("spend"); }
