/* cmd_demo.c: `quotatop demo` (placeholder until it lands). */
#include <stdio.h>

#include "cmd.h"

int qt_cmd_demo(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "quotatop demo: not implemented yet in this build\n");
    return 2;
}
