/* fuzz_provider.h: one body for both kinds' response/error targets
 * (fuzz_provider_openai.c, fuzz_provider_anthropic.c): the first byte picks
 * 2xx parsing or error parsing and the status; the rest is the body. A
 * parsed result must render as OpenAI JSON; an error's message must be a
 * terminated string. */
#include "fuzz_common.h"
#include "quotatop/provider.h"

static int fuzz_provider(qt_provider_kind kind, const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const qt_provider_ops *ops = qt_provider_ops_for(kind);
    unsigned sel = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char *copy = malloc(len ? len : 1);   /* exact size: ASan sees any overread */
    if (!copy)
        abort();
    memcpy(copy, body, len);
    if (sel & 1) {
        static const int statuses[8] = { 400, 401, 404, 413, 429, 500, 503, 529 };
        qt_provider_error e;
        ops->parse_error(statuses[(sel >> 1) & 7], len ? copy : NULL, len, &e);
        if (strnlen(e.message, sizeof e.message) == sizeof e.message ||
            strnlen(e.type, sizeof e.type) == sizeof e.type)
            abort();
    } else {
        qt_provider_result res;
        char err[QT_PROVIDER_ERRLEN];
        if (ops->parse_response(copy, len, &res, err, sizeof err) == QT_OK) {
            if (!res.content || !res.id || !res.model || !res.finish_reason)
                abort();
            char *oj = qt_provider_to_openai_json(&res, NULL, 1);
            free(oj);
            qt_provider_result_free(&res);
        }
    }
    free(copy);
    return 0;
}
