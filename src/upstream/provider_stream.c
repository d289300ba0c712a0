/* provider_stream.c: server-sent events and their translation to OpenAI
 * chat.completion.chunk objects.
 *
 * DESIGN. qt_sse is a byte-at-a-time state machine over the
 * text/event-stream grammar (WHATWG HTML 9.2): lines end in CRLF, LF or CR
 * (a CR at the end of one feed and the LF at the start of the next are one
 * line end), "field: value" lines accumulate into an event, a blank line
 * dispatches it, ":" starts a comment. Input can be cut anywhere; only the
 * current line and the current event are buffered (bounded at 4 MiB).
 *
 * qt_provider_stream runs a qt_sse over the upstream body. OpenAI events are
 * already chunks: their bytes pass through untouched (re-printed only when
 * the model is renamed). Anthropic events go through the stream translator
 * of translate_stream.c (text, tool_use and input_json_delta, thinking,
 * stop reason, usage with cache tokens). Every chunk sent is also folded
 * into one chat.completion (qt_tr_acc), which gives the result: content,
 * tool calls, finish reason and usage, exactly as a non-streamed answer.
 */
#include "quotatop/provider.h"

#include <stdlib.h>
#include <string.h>

#include "provider_int.h"
#include "quotatop/translate.h"

#define SSE_MAX_BYTES (4u << 20)

/* ---- SSE parser ---------------------------------------------------------- */

struct qt_sse {
    sbuf line;        /* the current, unfinished line */
    sbuf data;        /* data lines of the current event, each followed by "\n" */
    sbuf event;       /* event field of the current event */
    sbuf id;          /* last id field (persists across events, per the spec) */
    bool has_data;    /* a data field was seen in the current event */
    bool pending_cr;  /* the last byte fed was CR: a following LF is part of it */
};

qt_sse *qt_sse_new(void)
{
    return calloc(1, sizeof(qt_sse));
}

void qt_sse_free(qt_sse *p)
{
    if (p == NULL)
        return;
    free(p->line.s);
    free(p->data.s);
    free(p->event.s);
    free(p->id.s);
    free(p);
}

/* Handles one complete line. Returns QT_OK, QT_ERR_CLOSED (callback said
 * stop), QT_ERR_LIMIT or QT_ERR_NOMEM. */
static qt_err sse_line(qt_sse *p, const char *line, size_t len, qt_sse_on_event cb, void *ud)
{
    if (len == 0) {
        qt_err rc = QT_OK;
        if (p->has_data) {
            /* Dispatch, without the last data line's "\n". */
            p->data.len--;
            p->data.s[p->data.len] = '\0';
            qt_sse_event ev = {sb_str(&p->event), p->data.s, p->data.len, sb_str(&p->id)};
            if (cb(ud, &ev) != 0)
                rc = QT_ERR_CLOSED;
        }
        p->has_data = false;
        p->data.len = 0;
        p->event.len = 0;
        if (p->event.s)
            p->event.s[0] = '\0';
        return rc;
    }
    if (line[0] == ':')
        return QT_OK;
    const char *colon = memchr(line, ':', len);
    size_t flen = colon ? (size_t)(colon - line) : len;
    const char *val = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - val);
    if (vlen > 0 && val[0] == ' ') {
        val++;
        vlen--;
    }
    if (flen == 4 && !memcmp(line, "data", 4)) {
        if (p->data.len + vlen + 1 > SSE_MAX_BYTES)
            return QT_ERR_LIMIT;
        if (!sb_add(&p->data, val, vlen) || !sb_add(&p->data, "\n", 1))
            return QT_ERR_NOMEM;
        p->has_data = true;
    } else if (flen == 5 && !memcmp(line, "event", 5)) {
        if (!sb_set(&p->event, val, vlen))
            return QT_ERR_NOMEM;
    } else if (flen == 2 && !memcmp(line, "id", 2)) {
        if (memchr(val, '\0', vlen) == NULL && !sb_set(&p->id, val, vlen))
            return QT_ERR_NOMEM;
    }
    /* "retry" and unknown fields are ignored. */
    return QT_OK;
}

qt_err qt_sse_feed(qt_sse *p, const char *buf, size_t n, qt_sse_on_event on_event, void *ud)
{
    size_t i = 0;
    while (i < n) {
        if (p->pending_cr) {
            p->pending_cr = false;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        /* Take the run of ordinary bytes up to the next line end. */
        size_t j = i;
        while (j < n && buf[j] != '\n' && buf[j] != '\r')
            j++;
        if (j > i) {
            if (p->line.len + (j - i) > SSE_MAX_BYTES)
                return QT_ERR_LIMIT;
            if (!sb_add(&p->line, buf + i, j - i))
                return QT_ERR_NOMEM;
        }
        if (j == n)
            break;
        p->pending_cr = buf[j] == '\r';
        qt_err rc = sse_line(p, sb_str(&p->line), p->line.len, on_event, ud);
        p->line.len = 0;
        if (rc != QT_OK)
            return rc;
        i = j + 1;
    }
    return QT_OK;
}

/* ---- translation --------------------------------------------------------- */

struct qt_provider_stream {
    qt_provider_kind kind;
    char *model_override;     /* name to put in chunks, or NULL */
    qt_sse *sse;
    qt_tr_stream *tr;         /* anthropic: events -> chunks */
    qt_tr_acc *acc;           /* every chunk sent, folded into one answer */
    cJSON *final;             /* a Responses stream: the response its
                               * response.completed (or .incomplete) event carried */
    bool done;
    bool has_error;
    qt_provider_error error;
    /* during one feed call */
    qt_provider_on_chunk on_chunk;
    void *ud;
    qt_err rc;                /* why the translator stopped the SSE parser */
};

qt_provider_stream *qt_provider_stream_new(qt_provider_kind kind, const char *model,
                                           int64_t created_s)
{
    if (kind != QT_KIND_OPENAI && kind != QT_KIND_ANTHROPIC)
        return NULL;
    qt_provider_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->kind = kind;
    s->sse = qt_sse_new();
    s->acc = qt_tr_acc_new();
    s->tr = kind == QT_KIND_ANTHROPIC ? qt_tr_stream_new(QT_TR_ANTHROPIC_TO_OPENAI, created_s) : NULL;
    s->model_override = model ? strdup(model) : NULL;
    if (s->sse == NULL || s->acc == NULL || (kind == QT_KIND_ANTHROPIC && s->tr == NULL)
        || (model && s->model_override == NULL)) {
        qt_provider_stream_free(s);
        return NULL;
    }
    return s;
}

void qt_provider_stream_free(qt_provider_stream *s)
{
    if (s == NULL)
        return;
    qt_sse_free(s->sse);
    qt_tr_stream_free(s->tr);
    qt_tr_acc_free(s->acc);
    cJSON_Delete(s->final);
    free(s->model_override);
    free(s);
}

bool qt_provider_stream_done(const qt_provider_stream *s)
{
    return s->done;
}

const qt_provider_error *qt_provider_stream_error(const qt_provider_stream *s)
{
    return s->has_error ? &s->error : NULL;
}

/* Hands one chunk to on_chunk: raw (the upstream's bytes) when given and the
 * model is not renamed, else obj printed. Returns 0 to go on, 1 to stop
 * (with s->rc set). */
static int send_chunk(qt_provider_stream *s, cJSON *obj, const char *raw, size_t raw_len)
{
    if (qt_tr_acc_add(s->acc, obj) != QT_OK) {
        s->rc = QT_ERR_NOMEM;
        return 1;
    }
    char *text = NULL;
    if (raw == NULL || s->model_override) {
        /* Case-sensitive both ways: cJSON_HasObjectItem matched "Model" too,
         * the replace then failed and leaked the new string (fuzz_sse_openai). */
        if (s->model_override && cJSON_GetObjectItemCaseSensitive(obj, "model")) {
            cJSON *m = cJSON_CreateString(s->model_override);
            if (m && !cJSON_ReplaceItemInObjectCaseSensitive(obj, "model", m))
                cJSON_Delete(m);
        }
        if ((text = cJSON_PrintUnformatted(obj)) == NULL) {
            s->rc = QT_ERR_NOMEM;
            return 1;
        }
        raw = text;
        raw_len = strlen(text);
    }
    int stop = s->on_chunk ? s->on_chunk(s->ud, raw, raw_len) : 0;
    free(text);
    if (stop) {
        s->rc = QT_ERR_CLOSED;
        return 1;
    }
    return 0;
}

static void take_error(qt_provider_stream *s, const char *data, size_t len)
{
    qt_prov_parse_error(0, data, len, &s->error);
    s->has_error = true;
    s->rc = QT_ERR_IO;
}

/* A Responses API event (type "response.*"): passed on as the upstream
 * wrote it; the final response is kept for the result. Takes root. */
static int responses_event(qt_provider_stream *s, cJSON *root, const char *type,
                           const qt_sse_event *ev)
{
    if (!strcmp(type, "response.failed") || !strcmp(type, "response.error")) {
        cJSON_Delete(root);
        take_error(s, ev->data, ev->data_len);
        return 1;
    }
    bool last = !strcmp(type, "response.completed") || !strcmp(type, "response.incomplete");
    int stop = s->on_chunk ? s->on_chunk(s->ud, ev->data, ev->data_len) : 0;
    if (last) {
        cJSON_Delete(s->final);
        s->final = cJSON_DetachItemFromObjectCaseSensitive(root, "response");
        s->done = true;
    }
    cJSON_Delete(root);
    if (stop)
        s->rc = QT_ERR_CLOSED;
    return stop;
}

static int openai_event(qt_provider_stream *s, const qt_sse_event *ev)
{
    if (!strcmp(ev->data, "[DONE]")) {
        s->done = true;
        return 0;
    }
    cJSON *root = qt_prov_parse_json(ev->data, ev->data_len, NULL, 0);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        s->rc = QT_ERR_INVALID;
        return 1;
    }
    const char *type = qt_prov_get_str(root, "type");
    if (type && !strncmp(type, "response.", 9))
        return responses_event(s, root, type, ev);
    if (cJSON_GetObjectItemCaseSensitive(root, "error") != NULL
        || (type && !strcmp(type, "error"))) {
        cJSON_Delete(root);
        take_error(s, ev->data, ev->data_len);
        return 1;
    }
    /* Same kind: the chunk goes on as the upstream wrote it. */
    int stop = send_chunk(s, root, ev->data, ev->data_len);
    cJSON_Delete(root);
    return stop;
}

static int tr_emit(void *ud, const char *event, const cJSON *data)
{
    (void)event;
    qt_provider_stream *s = ud;
    cJSON *c = cJSON_Duplicate(data, 1);
    if (c == NULL) {
        s->rc = QT_ERR_NOMEM;
        return 1;
    }
    int stop = send_chunk(s, c, NULL, 0);
    cJSON_Delete(c);
    return stop;
}

static int anthropic_event(qt_provider_stream *s, const qt_sse_event *ev)
{
    cJSON *root = qt_prov_parse_json(ev->data, ev->data_len, NULL, 0);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        s->rc = QT_ERR_INVALID;
        return 1;
    }
    qt_err rc = qt_tr_stream_event(s->tr, ev->event, root, tr_emit, s);
    cJSON_Delete(root);
    s->done = qt_tr_stream_done(s->tr);
    if (rc == QT_ERR_IO) {
        take_error(s, ev->data, ev->data_len);
        return 1;
    }
    if (rc == QT_ERR_NOMEM)
        s->rc = QT_ERR_NOMEM;
    return rc == QT_OK ? 0 : 1;
}

static int on_event(void *ud, const qt_sse_event *ev)
{
    qt_provider_stream *s = ud;
    return s->kind == QT_KIND_ANTHROPIC ? anthropic_event(s, ev) : openai_event(s, ev);
}

qt_err qt_provider_stream_feed(qt_provider_stream *s, const char *buf, size_t n,
                               qt_provider_on_chunk on_chunk, void *ud)
{
    s->on_chunk = on_chunk;
    s->ud = ud;
    s->rc = QT_OK;
    qt_err rc = qt_sse_feed(s->sse, buf, n, on_event, s);
    if (rc == QT_ERR_CLOSED && s->rc != QT_OK)
        rc = s->rc;
    return rc;
}

qt_err qt_provider_stream_result(const qt_provider_stream *s, qt_provider_result *out,
                                 char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (s->final) {   /* a Responses stream */
        qt_err rc = qt_prov_result_from_responses(s->final, NULL, 0, out, err, errlen);
        if (rc == QT_OK) {
            free(out->openai_json);   /* the client already has the events */
            out->openai_json = NULL;
        }
        return rc;
    }
    cJSON *c = qt_tr_acc_completion(s->acc);
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(c, "choices");
    bool had_usage = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c, "usage"));
    bool ok = c != NULL;
    if (ok && !had_usage) {   /* read what there is; the counts stay unknown */
        cJSON *u = cJSON_AddObjectToObject(c, "usage");
        ok = u && cJSON_AddNumberToObject(u, "prompt_tokens", 0) && cJSON_AddNumberToObject(u, "completion_tokens", 0);
    }
    if (ok && cJSON_GetArraySize(choices) == 0) {
        cJSON *ch = cJSON_CreateObject(), *m = NULL;
        ok = ch && cJSON_AddItemToArray(choices, ch) && (m = cJSON_AddObjectToObject(ch, "message"))
             && cJSON_AddStringToObject(m, "content", "");
    }
    qt_err rc = ok ? qt_prov_result_from_openai(c, NULL, 0, out, err, errlen) : QT_ERR_NOMEM;
    cJSON_Delete(c);
    if (rc != QT_OK) {
        if (!ok)
            qt_prov_errf(err, errlen, "out of memory");
        return rc;
    }
    free(out->openai_json);   /* streams: the client already has the chunks */
    out->openai_json = NULL;
    if (!had_usage) {
        out->prompt_tokens = out->completion_tokens = -1;
        qt_prov_errf(err, errlen, "stream ended without usage");
        return QT_ERR_INVALID;
    }
    return QT_OK;
}
