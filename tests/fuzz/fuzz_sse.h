/* fuzz_sse.h: one body for both kinds' stream targets (fuzz_sse_openai.c,
 * fuzz_sse_anthropic.c). The input is cut into pieces at points the input
 * itself chooses (its first bytes), fed to the raw SSE parser and to the
 * kind's stream translator; every chunk the translator emits must be JSON,
 * and the collected result must be readable whatever the stream was. */
#include <cJSON.h>

#include "fuzz_common.h"
#include "quotatop/provider.h"

static int on_event(void *ud, const qt_sse_event *ev)
{
    (void)ud;
    /* data may hold NUL bytes the stream sent: data_len is its length and
     * it is terminated there */
    if (!ev->event || !ev->data || !ev->id || strlen(ev->data) > ev->data_len || ev->data[ev->data_len])
        abort();
    return 0;
}

static int on_chunk(void *ud, const char *json, size_t len)
{
    (void)ud;
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (!o)
        abort();
    cJSON_Delete(o);
    return 0;
}

static int fuzz_sse(qt_provider_kind kind, const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = (size_t)data[0] % 64 + 1;   /* piece length */
    data += 1;
    size -= 1;
    qt_sse *p = qt_sse_new();
    qt_provider_stream *s = qt_provider_stream_new(kind, (data[0] & 1) ? "renamed" : NULL, 1);
    if (!p || !s)
        abort();
    int sse_live = 1, st_live = 1;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        char *piece = malloc(n);   /* exact size: ASan sees any overread */
        if (!piece)
            abort();
        memcpy(piece, data + off, n);
        if (sse_live && qt_sse_feed(p, piece, n, on_event, NULL) != QT_OK)
            sse_live = 0;
        if (st_live && qt_provider_stream_feed(s, piece, n, on_chunk, NULL) != QT_OK)
            st_live = 0;
        free(piece);
    }
    (void)qt_provider_stream_done(s);
    const qt_provider_error *e = qt_provider_stream_error(s);
    if (e && strnlen(e->message, sizeof e->message) == sizeof e->message)
        abort();
    qt_provider_result res;
    char err[QT_PROVIDER_ERRLEN];
    qt_err r = qt_provider_stream_result(s, &res, err, sizeof err);
    if (r == QT_OK || r == QT_ERR_INVALID)
        qt_provider_result_free(&res);
    qt_provider_stream_free(s);
    qt_sse_free(p);
    return 0;
}
