/* cmd_mock.c: `quotatop mock`, the simulated provider on the command line.
 * (Placeholder while src/mock.c lands.) */
#include <stdio.h>

#include "cmd.h"

int qt_cmd_mock(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "quotatop mock: not implemented yet in this build\n");
    return 2;
}
