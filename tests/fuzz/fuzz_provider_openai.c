/* fuzz_provider_openai.c: openai 2xx response and error parsing (see fuzz_provider.h). */
#include "fuzz_provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_provider(QT_KIND_OPENAI, data, size);
}
