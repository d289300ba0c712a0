/* cmd_spend.c: `quotatop spend` (placeholder until it lands). */
#include <stdio.h>

#include "cmd.h"

int qt_cmd_spend(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "quotatop spend: not implemented yet in this build\n");
    return 2;
}
