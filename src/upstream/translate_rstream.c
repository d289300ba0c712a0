/* translate_rstream.c: chat.completion.chunk objects -> the OpenAI
 * Responses API's streamed events (translate.h), for a Responses client
 * whose answer came from a model that streams chat chunks (an
 * Anthropic-kind model, through translate_stream.c, or the cache).
 *
 * DESIGN. The Responses stream is a sequence of typed events, each with a
 * sequence_number: response.created and response.in_progress (the
 * response as it starts, output empty), then for every output item
 * response.output_item.added ... response.output_item.done, with in
 * between, for a message, response.content_part.added, the
 * response.output_text.delta events, response.output_text.done and
 * response.content_part.done, and for a function call the
 * response.function_call_arguments.delta events and
 * response.function_call_arguments.done; finally response.completed (or
 * response.incomplete) with the whole response and its usage. Items get
 * output indexes in the order they open; an item closes when the next one
 * opens (the chunks of an Anthropic answer bring text and then each tool
 * call in turn) or at the end. Text and arguments are kept to give the
 * .done events and the final response their whole values.
 */
#include "quotatop/translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_int.h"

#define MAX_ITEMS 64   /* output items of one answer; more tool calls than that are dropped */

typedef struct {
    bool is_call;
    int chat_index;     /* tool_calls[].index of the chunks (calls) */
    char id[160];       /* the item's id */
    char *call_id, *name;
    tr_sbuf text;       /* the message's text, or the call's arguments */
    bool open;
} ritem;

struct qt_tr_rstream {
    int64_t created_s;
    long seq;
    bool started, finished;
    char upstream_id[128];
    char *model;
    char *finish_reason;
    cJSON *usage;       /* the chunks' (chat shape), or NULL */
    ritem items[MAX_ITEMS];
    int n_items;
    int text_item;      /* index of the message item, -1 none */
};

qt_tr_rstream *qt_tr_rstream_new(int64_t created_s)
{
    qt_tr_rstream *s = calloc(1, sizeof *s);
    if (s) {
        s->created_s = created_s;
        s->text_item = -1;
    }
    return s;
}

void qt_tr_rstream_free(qt_tr_rstream *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_items; i++) {
        free(s->items[i].call_id);
        free(s->items[i].name);
        free(s->items[i].text.s);
    }
    free(s->model);
    free(s->finish_reason);
    cJSON_Delete(s->usage);
    free(s);
}

/* Emits ev (type set here, with the next sequence number), then deletes
 * it. QT_ERR_CLOSED when emit says stop, QT_ERR_NOMEM. */
static qt_err send_ev(qt_tr_rstream *s, const char *type, cJSON *ev, qt_tr_emit emit, void *ud)
{
    bool ok = ev && cJSON_AddStringToObject(ev, "type", type)
              && cJSON_AddNumberToObject(ev, "sequence_number", (double)s->seq++);
    qt_err rc = !ok ? QT_ERR_NOMEM : emit(ud, type, ev) ? QT_ERR_CLOSED : QT_OK;
    cJSON_Delete(ev);
    return rc;
}

/* An item as it is now (done: with its whole text). */
static cJSON *item_json(const ritem *it, bool done)
{
    if (!it->is_call)
        return qt_tr_responses_message_item(it->id, sb_str(&it->text), done);
    cJSON *o = qt_tr_responses_call_item(it->call_id, it->name, sb_str(&it->text), done);
    cJSON *id = o ? cJSON_GetObjectItemCaseSensitive(o, "id") : NULL;
    if (id)   /* the id this stream announced */
        cJSON_SetValuestring(id, it->id);
    return o;
}

/* The response: in progress (no usage, no output) or whole. */
static cJSON *response_json(const qt_tr_rstream *s, bool done)
{
    cJSON *output = cJSON_CreateArray();
    for (int i = 0; done && output && i < s->n_items; i++)
        if (!tr_push(output, item_json(&s->items[i], true))) {
            cJSON_Delete(output);
            return NULL;
        }
    cJSON *usage = NULL;
    if (done && (usage = qt_tr_responses_usage(s->usage)) == NULL) {
        cJSON_Delete(output);
        return NULL;
    }
    return output ? qt_tr_responses_object(s->upstream_id, s->model, s->created_s, s->finish_reason, output, usage)
                  : NULL;
}

/* Adds "response" (the response as it is) to ev and sends it. */
static qt_err send_response_ev(qt_tr_rstream *s, const char *type, bool done, qt_tr_emit emit, void *ud)
{
    cJSON *ev = cJSON_CreateObject(), *r = response_json(s, done);
    if (!ev || !r || !cJSON_AddItemToObject(ev, "response", r)) {
        cJSON_Delete(ev);
        cJSON_Delete(r);
        return QT_ERR_NOMEM;
    }
    return send_ev(s, type, ev, emit, ud);
}

/* A new object with item_id, output_index (and content_index for text). */
static cJSON *item_ev(const qt_tr_rstream *s, int i)
{
    const ritem *it = &s->items[i];
    cJSON *ev = cJSON_CreateObject();
    bool ok = ev && cJSON_AddStringToObject(ev, "item_id", it->id) && cJSON_AddNumberToObject(ev, "output_index", i)
              && (it->is_call || cJSON_AddNumberToObject(ev, "content_index", 0));
    if (!ok) {
        cJSON_Delete(ev);
        return NULL;
    }
    (void)s;
    return ev;
}

static cJSON *text_part(const char *text)
{
    cJSON *p = cJSON_CreateObject();
    bool ok = p && cJSON_AddStringToObject(p, "type", "output_text") && cJSON_AddStringToObject(p, "text", text)
              && cJSON_AddArrayToObject(p, "annotations");
    if (!ok) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* Closes item i: its .done events. */
static qt_err close_item(qt_tr_rstream *s, int i, qt_tr_emit emit, void *ud)
{
    ritem *it = &s->items[i];
    if (!it->open)
        return QT_OK;
    it->open = false;
    qt_err rc;
    cJSON *ev = item_ev(s, i);
    if (it->is_call) {
        if (ev && !cJSON_AddStringToObject(ev, "arguments", sb_str(&it->text)))
            ev = (cJSON_Delete(ev), NULL);
        rc = send_ev(s, "response.function_call_arguments.done", ev, emit, ud);
    } else {
        if (ev && !cJSON_AddStringToObject(ev, "text", sb_str(&it->text)))
            ev = (cJSON_Delete(ev), NULL);
        rc = send_ev(s, "response.output_text.done", ev, emit, ud);
        cJSON *p = rc == QT_OK ? text_part(sb_str(&it->text)) : NULL;
        ev = p ? item_ev(s, i) : NULL;
        if (rc == QT_OK && (!ev || !cJSON_AddItemToObject(ev, "part", p))) {
            cJSON_Delete(ev);
            cJSON_Delete(p);
            return QT_ERR_NOMEM;
        }
        if (rc == QT_OK)
            rc = send_ev(s, "response.content_part.done", ev, emit, ud);
    }
    if (rc != QT_OK)
        return rc;
    ev = cJSON_CreateObject();
    cJSON *item = item_json(it, true);
    if (!ev || !item || !cJSON_AddNumberToObject(ev, "output_index", i) || !cJSON_AddItemToObject(ev, "item", item)) {
        cJSON_Delete(ev);
        cJSON_Delete(item);
        return QT_ERR_NOMEM;
    }
    return send_ev(s, "response.output_item.done", ev, emit, ud);
}

/* Opens a new item (closing the open ones first): output_item.added, and
 * for a message content_part.added. *idx gets its index, -1 when there is
 * no room. */
static qt_err open_item(qt_tr_rstream *s, bool is_call, int chat_index, const char *call_id, const char *name,
                        qt_tr_emit emit, void *ud, int *idx)
{
    *idx = -1;
    if (s->n_items >= MAX_ITEMS)
        return QT_OK;
    for (int i = 0; i < s->n_items; i++) {
        qt_err rc = close_item(s, i, emit, ud);
        if (rc != QT_OK)
            return rc;
    }
    int i = s->n_items;
    ritem *it = &s->items[i];
    memset(it, 0, sizeof *it);
    it->is_call = is_call;
    it->chat_index = chat_index;
    it->open = true;
    if (is_call) {
        it->call_id = strdup(call_id ? call_id : "");
        it->name = strdup(name ? name : "");
        if (!it->call_id || !it->name) {
            free(it->call_id);
            free(it->name);
            return QT_ERR_NOMEM;
        }
        snprintf(it->id, sizeof it->id, "fc_%.150s", call_id && call_id[0] ? call_id : "quotatop");
    } else {
        const char *u = s->upstream_id;
        if (!strncmp(u, "chatcmpl-", 9))
            u += 9;
        snprintf(it->id, sizeof it->id, "%s%.150s", strncmp(u, "msg_", 4) ? "msg_" : "", u[0] ? u : "quotatop");
    }
    s->n_items++;
    *idx = i;
    cJSON *ev = cJSON_CreateObject(), *item = item_json(it, false);
    if (!ev || !item || !cJSON_AddNumberToObject(ev, "output_index", i) || !cJSON_AddItemToObject(ev, "item", item)) {
        cJSON_Delete(ev);
        cJSON_Delete(item);
        return QT_ERR_NOMEM;
    }
    qt_err rc = send_ev(s, "response.output_item.added", ev, emit, ud);
    if (rc != QT_OK || is_call)
        return rc;
    cJSON *p = text_part("");
    ev = p ? item_ev(s, i) : NULL;
    if (!ev || !cJSON_AddItemToObject(ev, "part", p)) {
        cJSON_Delete(ev);
        cJSON_Delete(p);
        return QT_ERR_NOMEM;
    }
    return send_ev(s, "response.content_part.added", ev, emit, ud);
}

/* A delta of item i (text or arguments). */
static qt_err delta(qt_tr_rstream *s, int i, const char *piece, qt_tr_emit emit, void *ud)
{
    if (i < 0 || piece == NULL || piece[0] == '\0')
        return QT_OK;
    ritem *it = &s->items[i];
    if (!sb_adds(&it->text, piece))
        return QT_ERR_NOMEM;
    cJSON *ev = item_ev(s, i);
    if (ev && !cJSON_AddStringToObject(ev, "delta", piece))
        ev = (cJSON_Delete(ev), NULL);
    return send_ev(s, it->is_call ? "response.function_call_arguments.delta" : "response.output_text.delta", ev,
                   emit, ud);
}

static qt_err start(qt_tr_rstream *s, const cJSON *chunk, qt_tr_emit emit, void *ud)
{
    s->started = true;
    const char *id = tr_str(chunk, "id"), *model = tr_str(chunk, "model");
    snprintf(s->upstream_id, sizeof s->upstream_id, "%s", id ? id : "");
    if (model && (s->model = strdup(model)) == NULL)
        return QT_ERR_NOMEM;
    qt_err rc = send_response_ev(s, "response.created", false, emit, ud);
    return rc == QT_OK ? send_response_ev(s, "response.in_progress", false, emit, ud) : rc;
}

/* The delta's tool calls. */
static qt_err tool_deltas(qt_tr_rstream *s, const cJSON *calls, qt_tr_emit emit, void *ud)
{
    for (const cJSON *c = calls ? calls->child : NULL; c; c = c->next) {
        long idx = 0;
        tr_count(c, "index", &idx);
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        int at = -1;
        for (int i = 0; i < s->n_items && at < 0; i++)
            if (s->items[i].is_call && s->items[i].chat_index == idx)
                at = i;
        qt_err rc = QT_OK;
        if (at < 0)
            rc = open_item(s, true, (int)idx, tr_str(c, "id"), tr_str(fn, "name"), emit, ud, &at);
        if (rc == QT_OK)
            rc = delta(s, at, tr_str(fn, "arguments"), emit, ud);
        if (rc != QT_OK)
            return rc;
    }
    return QT_OK;
}

qt_err qt_tr_rstream_chunk(qt_tr_rstream *s, const cJSON *chunk, qt_tr_emit emit, void *ud)
{
    if (!cJSON_IsObject(chunk) || s->finished)
        return QT_OK;
    qt_err rc = s->started ? QT_OK : start(s, chunk, emit, ud);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(chunk, "usage");
    if (rc == QT_OK && cJSON_IsObject(usage)) {
        cJSON_Delete(s->usage);
        if ((s->usage = cJSON_Duplicate(usage, 1)) == NULL)
            rc = QT_ERR_NOMEM;
    }
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk, "choices"), 0);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(c0, "delta");
    const char *text = tr_str(d, "content");
    if (rc == QT_OK && text && text[0]) {
        if (s->text_item < 0 || !s->items[s->text_item].open)
            rc = open_item(s, false, 0, NULL, NULL, emit, ud, &s->text_item);
        if (rc == QT_OK)
            rc = delta(s, s->text_item, text, emit, ud);
    }
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(d, "tool_calls");
    if (rc == QT_OK && cJSON_IsArray(calls))
        rc = tool_deltas(s, calls, emit, ud);
    const char *fr = tr_str(c0, "finish_reason");
    if (rc == QT_OK && fr) {
        free(s->finish_reason);
        if ((s->finish_reason = strdup(fr)) == NULL)
            rc = QT_ERR_NOMEM;
    }
    return rc;
}

qt_err qt_tr_rstream_end(qt_tr_rstream *s, qt_tr_emit emit, void *ud)
{
    if (s->finished)
        return QT_OK;
    qt_err rc = QT_OK;
    if (!s->started) {
        cJSON *empty = cJSON_CreateObject();
        rc = empty ? start(s, empty, emit, ud) : QT_ERR_NOMEM;
        cJSON_Delete(empty);
    }
    if (rc == QT_OK && s->n_items == 0)   /* an empty answer still has its message */
        rc = open_item(s, false, 0, NULL, NULL, emit, ud, &s->text_item);
    for (int i = 0; rc == QT_OK && i < s->n_items; i++)
        rc = close_item(s, i, emit, ud);
    if (rc != QT_OK)
        return rc;
    s->finished = true;
    const char *fr = s->finish_reason;
    bool incomplete = fr && (!strcmp(fr, "length") || !strcmp(fr, "content_filter"));
    return send_response_ev(s, incomplete ? "response.incomplete" : "response.completed", true, emit, ud);
}
