/* fuzz_sse_openai.c: the SSE parser and the openai stream translator (see fuzz_sse.h). */
#include "fuzz_sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_sse(QT_KIND_OPENAI, data, size);
}
