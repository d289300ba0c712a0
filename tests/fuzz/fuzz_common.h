/* fuzz_common.h: shared bits of the libFuzzer targets in tests/fuzz/.
 *
 * Each target is one fuzz_<name>.c defining LLVMFuzzerTestOneInput over one
 * parser of bytes from outside (config, job lines, provider bodies, event
 * streams, headers, proxy requests). Built by `make fuzz-build` with clang
 * (-fsanitize=fuzzer,address,undefined) into build-fuzz/; `make test-fuzz`
 * runs each once over tests/fuzz/corpus/<name>/, `make fuzz` explores.
 *
 * Thread-safety: targets run single-threaded in the libFuzzer driver.
 */
#ifndef QT_FUZZ_COMMON_H
#define QT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quotatop/config.h"

/* A config with one model of each kind, parsed once (never freed: the
 * process ends with the fuzzer). */
static inline const qt_config *fuzz_config(void)
{
    static qt_config *cfg;
    if (!cfg) {
        const char *json =
            "{\"providers\": {\"oa\": {\"kind\": \"openai\", \"base_url\": \"http://127.0.0.1:1/v1\"},"
            "                 \"an\": {\"kind\": \"anthropic\", \"base_url\": \"http://127.0.0.1:1/v1\"}},"
            " \"models\": {\"gpt-4o\": {\"providers\": [\"oa\"], \"fallback\": [\"claude\"]},"
            "              \"claude\": {\"providers\": [\"an\"], \"context_window\": 1000}}}";
        qt_diag d = { 0 };
        cfg = qt_config_parse(json, strlen(json), &d);
        qt_diag_free(&d);
        if (!cfg)
            abort();
    }
    return cfg;
}

/* A NUL-terminated heap copy of the input (parsers that take C strings). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif /* QT_FUZZ_COMMON_H */
