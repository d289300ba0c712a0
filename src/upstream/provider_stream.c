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
 * qt_provider_stream runs a qt_sse over the upstream body and hands each
 * event to the kind's translator. OpenAI events are already chunks: they pass
 * through (model renamed when asked) while content, finish reason and the
 * usage chunk are collected. Anthropic events are rewritten: message_start
 * gives the id and input tokens, text deltas become delta.content chunks,
 * message_delta the finish reason and output tokens, message_stop the final
 * usage chunk. The collected result feeds the ledger and the budget exactly
 * as a non-streamed answer would.
 */
#include "quotatop/provider.h"

#include <stdlib.h>
#include <string.h>

#include "provider_int.h"

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
    int64_t created_s;
    qt_sse *sse;
    sbuf content;             /* collected answer text */
    sbuf id, model, finish;   /* from upstream; finish in OpenAI vocabulary */
    long prompt, completion;  /* -1 until seen */
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
    s->created_s = created_s;
    s->prompt = s->completion = -1;
    s->sse = qt_sse_new();
    s->model_override = model ? strdup(model) : NULL;
    if (s->sse == NULL || (model && s->model_override == NULL)) {
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
    free(s->model_override);
    free(s->content.s);
    free(s->id.s);
    free(s->model.s);
    free(s->finish.s);
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

/* Prints obj and hands it to on_chunk. Returns 0 to go on, 1 to stop (with
 * s->rc set). Deletes obj. */
static int emit(qt_provider_stream *s, cJSON *obj)
{
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (text == NULL) {
        s->rc = QT_ERR_NOMEM;
        return 1;
    }
    int stop = s->on_chunk ? s->on_chunk(s->ud, text, strlen(text)) : 0;
    free(text);
    if (stop) {
        s->rc = QT_ERR_CLOSED;
        return 1;
    }
    return 0;
}

static const char *chunk_model(const qt_provider_stream *s)
{
    return s->model_override ? s->model_override : sb_str(&s->model);
}

/* A chunk skeleton: {id, object, created, model, choices:[{index, delta,
 * finish_reason}]}, delta taken over (may be NULL for choices: []). */
static cJSON *make_chunk(const qt_provider_stream *s, cJSON *delta, const char *finish)
{
    cJSON *c = cJSON_CreateObject(), *choices = NULL, *ch = NULL;
    bool ok = c
        && cJSON_AddStringToObject(c, "id", s->id.len ? s->id.s : "chatcmpl-quotatop")
        && cJSON_AddStringToObject(c, "object", "chat.completion.chunk")
        && cJSON_AddNumberToObject(c, "created", (double)s->created_s)
        && cJSON_AddStringToObject(c, "model", chunk_model(s))
        && (choices = cJSON_AddArrayToObject(c, "choices")) != NULL;
    if (ok && delta) {
        ok = (ch = cJSON_CreateObject()) != NULL && cJSON_AddItemToArray(choices, ch)
            && cJSON_AddNumberToObject(ch, "index", 0)
            && cJSON_AddItemToObject(ch, "delta", delta);
        if (ok)
            delta = NULL;
        ok = ok && (finish ? cJSON_AddStringToObject(ch, "finish_reason", finish) != NULL
                           : cJSON_AddNullToObject(ch, "finish_reason") != NULL);
    }
    cJSON_Delete(delta);
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

static void take_error(qt_provider_stream *s, const char *data, size_t len)
{
    qt_prov_parse_error(0, data, len, &s->error);
    s->has_error = true;
    s->rc = QT_ERR_IO;
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
    if (cJSON_GetObjectItemCaseSensitive(root, "error") != NULL) {
        cJSON_Delete(root);
        take_error(s, ev->data, ev->data_len);
        return 1;
    }
    const char *id = qt_prov_get_str(root, "id"), *m = qt_prov_get_str(root, "model");
    if (id && s->id.len == 0)
        sb_set(&s->id, id, strlen(id));
    if (m && s->model.len == 0)
        sb_set(&s->model, m, strlen(m));
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    const char *text = qt_prov_get_str(cJSON_GetObjectItemCaseSensitive(c0, "delta"), "content");
    const char *fr = qt_prov_get_str(c0, "finish_reason");
    if (text && !sb_add(&s->content, text, strlen(text))) {
        cJSON_Delete(root);
        s->rc = QT_ERR_NOMEM;
        return 1;
    }
    if (fr)
        sb_set(&s->finish, fr, strlen(fr));
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (cJSON_IsObject(usage)) {
        qt_prov_get_count(usage, "prompt_tokens", &s->prompt);
        qt_prov_get_count(usage, "completion_tokens", &s->completion);
    }
    if (s->model_override && cJSON_HasObjectItem(root, "model"))
        cJSON_ReplaceItemInObjectCaseSensitive(root, "model", cJSON_CreateString(s->model_override));
    return emit(s, root);
}

static int anthropic_event(qt_provider_stream *s, const qt_sse_event *ev)
{
    cJSON *root = qt_prov_parse_json(ev->data, ev->data_len, NULL, 0);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        s->rc = QT_ERR_INVALID;
        return 1;
    }
    const char *type = qt_prov_get_str(root, "type");
    if (type == NULL)
        type = ev->event;
    int stop = 0;
    if (!strcmp(type, "message_start")) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
        const char *id = qt_prov_get_str(msg, "id"), *m = qt_prov_get_str(msg, "model");
        if (id)
            sb_set(&s->id, id, strlen(id));
        if (m)
            sb_set(&s->model, m, strlen(m));
        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(msg, "usage");
        long in, cache;
        if (qt_prov_get_count(usage, "input_tokens", &in)) {
            if (qt_prov_get_count(usage, "cache_creation_input_tokens", &cache))
                in += cache;
            if (qt_prov_get_count(usage, "cache_read_input_tokens", &cache))
                in += cache;
            s->prompt = in;
        }
        cJSON *delta = cJSON_CreateObject();
        if (delta) {
            cJSON_AddStringToObject(delta, "role", "assistant");
            cJSON_AddStringToObject(delta, "content", "");
        }
        stop = emit(s, make_chunk(s, delta, NULL));
    } else if (!strcmp(type, "content_block_start") || !strcmp(type, "content_block_delta")) {
        const cJSON *blk = cJSON_GetObjectItemCaseSensitive(
            root, !strcmp(type, "content_block_start") ? "content_block" : "delta");
        const char *bt = qt_prov_get_str(blk, "type");
        const char *text = qt_prov_get_str(blk, "text");
        if (bt && (!strcmp(bt, "text") || !strcmp(bt, "text_delta")) && text && text[0]) {
            if (!sb_add(&s->content, text, strlen(text))) {
                s->rc = QT_ERR_NOMEM;
                stop = 1;
            } else {
                cJSON *delta = cJSON_CreateObject();
                if (delta)
                    cJSON_AddStringToObject(delta, "content", text);
                stop = emit(s, make_chunk(s, delta, NULL));
            }
        }
    } else if (!strcmp(type, "message_delta")) {
        const char *sr = qt_prov_get_str(cJSON_GetObjectItemCaseSensitive(root, "delta"), "stop_reason");
        const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
        long v;
        if (qt_prov_get_count(usage, "output_tokens", &v))
            s->completion = v;
        if (qt_prov_get_count(usage, "input_tokens", &v) && s->prompt < 0)
            s->prompt = v;
        if (sr) {
            const char *fr = qt_prov_finish_from_anthropic(sr);
            sb_set(&s->finish, fr, strlen(fr));
            stop = emit(s, make_chunk(s, cJSON_CreateObject(), fr));
        }
    } else if (!strcmp(type, "message_stop")) {
        s->done = true;
        cJSON *c = make_chunk(s, NULL, NULL), *u = NULL;
        if (c && s->prompt >= 0 && s->completion >= 0) {
            u = cJSON_AddObjectToObject(c, "usage");
            if (u) {
                cJSON_AddNumberToObject(u, "prompt_tokens", (double)s->prompt);
                cJSON_AddNumberToObject(u, "completion_tokens", (double)s->completion);
                cJSON_AddNumberToObject(u, "total_tokens", (double)(s->prompt + s->completion));
            }
        }
        stop = emit(s, c);
    } else if (!strcmp(type, "error")) {
        take_error(s, ev->data, ev->data_len);
        stop = 1;
    }
    /* ping, content_block_stop and unknown events carry nothing for OpenAI. */
    cJSON_Delete(root);
    return stop;
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
    out->id = strdup(sb_str(&s->id));
    out->model = strdup(sb_str(&s->model));
    out->content = strdup(sb_str(&s->content));
    out->finish_reason = strdup(sb_str(&s->finish));
    out->prompt_tokens = s->prompt;
    out->completion_tokens = s->completion;
    if (!out->id || !out->model || !out->content || !out->finish_reason) {
        qt_provider_result_free(out);
        qt_prov_errf(err, errlen, "out of memory");
        return QT_ERR_NOMEM;
    }
    if (s->prompt < 0 || s->completion < 0) {
        qt_prov_errf(err, errlen, "stream ended without usage");
        return QT_ERR_INVALID;
    }
    return QT_OK;
}
