/* fuzz_config.c: the config loader (qt_config_parse) on any bytes: it must
 * return a config or diagnostics, never crash, and a config it accepts must
 * print (qt_config_print_effective) and free cleanly. */
#include <stdio.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qt_diag d = { 0 };
    qt_config *cfg = qt_config_parse((const char *)data, size, &d);
    if (cfg) {
        int mi[8];
        int has_cache = 0;
        for (size_t i = 0; i < cfg->n_models; i++)
            qt_config_chain(cfg, (int)i, mi, 8, &has_cache);
        FILE *null = fopen("/dev/null", "w");
        if (null) {
            qt_config_print_effective(cfg, null);
            fclose(null);
        }
    }
    qt_config_free(cfg);
    qt_diag_free(&d);
    return 0;
}
