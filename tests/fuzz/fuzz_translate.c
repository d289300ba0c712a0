/* fuzz_translate.c: the OpenAI <-> Anthropic translation, both directions,
 * through translate.h's byte entry point qt_tr_fuzz (data[0] picks requests,
 * answers or streams, each way; the rest is the input). */
#include "fuzz_common.h"
#include "quotatop/translate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return qt_tr_fuzz(data, size);
}
