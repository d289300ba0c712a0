/* cmd_serve.c: `quotatop serve` (placeholder until it lands). */
#include <stdio.h>

#include "cmd.h"

int qt_cmd_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "quotatop serve: not implemented yet in this build\n");
    return 2;
}
