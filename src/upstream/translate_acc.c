/* translate_acc.c: folds chat.completion.chunk objects back into the
 * chat.completion they add up to (translate.h, qt_tr_acc), and the fuzz
 * entry point of the translation module.
 *
 * DESIGN. Streamed answers are carried to the client chunk by chunk, but the
 * scheduler needs the whole answer at the end: the tool calls and finish
 * reason for the result line, the usage for the bill. The accumulator keeps
 * one record per choice index (bounded), each with growing strings for the
 * text, refusal and reasoning, and one record per tool-call index with its
 * id, name and arguments text. The top-level fields come from the first
 * chunk that names them; usage from the last chunk that carries it.
 */
#include "quotatop/translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_int.h"

#define ACC_MAX_CHOICES 128
#define ACC_MAX_TOOLS   128

typedef struct {
    tr_sbuf id, name, args;
    bool used;
} acc_tool;

typedef struct {
    bool used, has_content;
    char role[16];
    tr_sbuf content, refusal, reasoning;
    acc_tool tools[ACC_MAX_TOOLS];
    int n_tools;              /* highest index + 1 */
    char finish[32];
    cJSON *logprobs;          /* array of logprobs.content entries, or NULL */
} acc_choice;

struct qt_tr_acc {
    char id[128], model[128], fingerprint[128], tier[32];
    double created;
    bool has_created;
    cJSON *usage;
    acc_choice *ch[ACC_MAX_CHOICES];
    int n_choices;
};

qt_tr_acc *qt_tr_acc_new(void)
{
    return calloc(1, sizeof(qt_tr_acc));
}

void qt_tr_acc_free(qt_tr_acc *a)
{
    if (a == NULL)
        return;
    for (int i = 0; i < a->n_choices; i++) {
        acc_choice *c = a->ch[i];
        if (c == NULL)
            continue;
        free(c->content.s);
        free(c->refusal.s);
        free(c->reasoning.s);
        for (int k = 0; k < c->n_tools; k++) {
            free(c->tools[k].id.s);
            free(c->tools[k].name.s);
            free(c->tools[k].args.s);
        }
        cJSON_Delete(c->logprobs);
        free(c);
    }
    cJSON_Delete(a->usage);
    free(a);
}

static void take_str(char *dst, size_t n, const cJSON *o, const char *key)
{
    const char *v = tr_str(o, key);
    if (v && dst[0] == '\0')
        qt_prov_copy(dst, n, v);
}

static bool add_tools(acc_choice *c, const cJSON *calls)
{
    for (const cJSON *tc = cJSON_IsArray(calls) ? calls->child : NULL; tc; tc = tc->next) {
        long ti = 0;
        tr_count(tc, "index", &ti);
        if (ti >= ACC_MAX_TOOLS)
            continue;
        acc_tool *t = &c->tools[ti];
        t->used = true;
        if (ti + 1 > c->n_tools)
            c->n_tools = (int)ti + 1;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const char *id = tr_str(tc, "id"), *name = tr_str(fn, "name"), *args = tr_str(fn, "arguments");
        if ((id && t->id.len == 0 && !tr_sb_adds(&t->id, id)) || (name && !tr_sb_adds(&t->name, name))
            || (args && !tr_sb_adds(&t->args, args)))
            return false;
    }
    return true;
}

static bool add_choice(qt_tr_acc *a, const cJSON *chc)
{
    long idx = 0;
    tr_count(chc, "index", &idx);
    if (idx >= ACC_MAX_CHOICES)
        return true;
    if (a->ch[idx] == NULL && (a->ch[idx] = calloc(1, sizeof(acc_choice))) == NULL)
        return false;
    if (idx + 1 > a->n_choices)
        a->n_choices = (int)idx + 1;
    acc_choice *c = a->ch[idx];
    c->used = true;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(chc, "delta");
    take_str(c->role, sizeof c->role, d, "role");
    const char *t = tr_str(d, "content");
    if (t) {
        c->has_content = true;
        if (!tr_sb_adds(&c->content, t))
            return false;
    }
    if ((t = tr_str(d, "refusal")) && !tr_sb_adds(&c->refusal, t))
        return false;
    if ((t = tr_str(d, "reasoning_content")) && !tr_sb_adds(&c->reasoning, t))
        return false;
    if (!add_tools(c, cJSON_GetObjectItemCaseSensitive(d, "tool_calls")))
        return false;
    if ((t = tr_str(chc, "finish_reason")))
        qt_prov_copy(c->finish, sizeof c->finish, t);
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(chc, "logprobs"), "content");
    for (const cJSON *e = cJSON_IsArray(lp) ? lp->child : NULL; e; e = e->next) {
        if (c->logprobs == NULL && (c->logprobs = cJSON_CreateArray()) == NULL)
            return false;
        if (!tr_push(c->logprobs, cJSON_Duplicate(e, 1)))
            return false;
    }
    return true;
}

qt_err qt_tr_acc_add(qt_tr_acc *a, const cJSON *chunk)
{
    if (!cJSON_IsObject(chunk))
        return QT_OK;
    take_str(a->id, sizeof a->id, chunk, "id");
    take_str(a->model, sizeof a->model, chunk, "model");
    take_str(a->fingerprint, sizeof a->fingerprint, chunk, "system_fingerprint");
    take_str(a->tier, sizeof a->tier, chunk, "service_tier");
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(chunk, "created");
    if (cJSON_IsNumber(cr) && !a->has_created) {
        a->created = cr->valuedouble;
        a->has_created = true;
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(chunk, "usage");
    if (cJSON_IsObject(u)) {
        cJSON *d = cJSON_Duplicate(u, 1);
        if (d == NULL)
            return QT_ERR_NOMEM;
        cJSON_Delete(a->usage);
        a->usage = d;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(chunk, "choices");
    for (const cJSON *c = cJSON_IsArray(choices) ? choices->child : NULL; c; c = c->next)
        if (!add_choice(a, c))
            return QT_ERR_NOMEM;
    return QT_OK;
}

static cJSON *tool_calls_of(const acc_choice *c)
{
    cJSON *arr = cJSON_CreateArray();
    for (int k = 0; arr && k < c->n_tools; k++) {
        const acc_tool *t = &c->tools[k];
        if (!t->used)
            continue;
        cJSON *tc = cJSON_CreateObject(), *fn = NULL;
        if (!tr_push(arr, tc) || !cJSON_AddStringToObject(tc, "id", sb_str(&t->id))
            || !cJSON_AddStringToObject(tc, "type", "function") || !(fn = cJSON_AddObjectToObject(tc, "function"))
            || !cJSON_AddStringToObject(fn, "name", sb_str(&t->name))
            || !cJSON_AddStringToObject(fn, "arguments", sb_str(&t->args))) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

static bool build_choice(const acc_choice *c, int idx, cJSON *choices)
{
    cJSON *ch = cJSON_CreateObject(), *m = NULL;
    bool has_tools = c->n_tools > 0;
    bool ok = tr_push(choices, ch) && cJSON_AddNumberToObject(ch, "index", idx)
              && (m = cJSON_AddObjectToObject(ch, "message")) != NULL
              && cJSON_AddStringToObject(m, "role", c->role[0] ? c->role : "assistant")
              && (c->has_content || !has_tools ? cJSON_AddStringToObject(m, "content", sb_str(&c->content)) != NULL
                                               : cJSON_AddNullToObject(m, "content") != NULL)
              && (c->refusal.len == 0 || cJSON_AddStringToObject(m, "refusal", c->refusal.s))
              && (c->reasoning.len == 0 || cJSON_AddStringToObject(m, "reasoning_content", c->reasoning.s));
    if (ok && has_tools) {
        cJSON *tc = tool_calls_of(c);
        ok = tc && cJSON_AddItemToObject(m, "tool_calls", tc);
        if (!ok)
            cJSON_Delete(tc);
    }
    if (ok && c->logprobs) {
        cJSON *lp = cJSON_AddObjectToObject(ch, "logprobs");
        ok = lp && tr_add_dup(lp, "content", c->logprobs);
    } else if (ok) {
        ok = cJSON_AddNullToObject(ch, "logprobs") != NULL;
    }
    return ok && (c->finish[0] ? cJSON_AddStringToObject(ch, "finish_reason", c->finish) != NULL
                               : cJSON_AddNullToObject(ch, "finish_reason") != NULL);
}

cJSON *qt_tr_acc_completion(const qt_tr_acc *a)
{
    cJSON *o = cJSON_CreateObject(), *choices = NULL;
    bool ok = o && cJSON_AddStringToObject(o, "id", a->id) && cJSON_AddStringToObject(o, "object", "chat.completion")
              && cJSON_AddNumberToObject(o, "created", a->created) && cJSON_AddStringToObject(o, "model", a->model)
              && (choices = cJSON_AddArrayToObject(o, "choices")) != NULL;
    for (int i = 0; ok && i < a->n_choices; i++)
        if (a->ch[i] && a->ch[i]->used)
            ok = build_choice(a->ch[i], i, choices);
    ok = ok && (!a->usage || tr_add_dup(o, "usage", a->usage))
         && (!a->fingerprint[0] || cJSON_AddStringToObject(o, "system_fingerprint", a->fingerprint))
         && (!a->tier[0] || cJSON_AddStringToObject(o, "service_tier", a->tier));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- fuzzing ------------------------------------------------------------- */

static int fuzz_emit(void *ud, const char *event, const cJSON *data)
{
    qt_tr_acc *acc = ud;
    (void)event;
    if (acc)
        qt_tr_acc_add(acc, data);
    return 0;
}

static void fuzz_stream(qt_tr_dir dir, const char *text)
{
    qt_tr_stream *s = qt_tr_stream_new(dir, 1);
    qt_tr_acc *acc = dir == QT_TR_ANTHROPIC_TO_OPENAI ? qt_tr_acc_new() : NULL;
    const char *p = text;
    while (s && p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *tab = memchr(p, '\t', n);
        char name[64] = "";
        const char *json = p;
        if (tab) {
            size_t k = (size_t)(tab - p) < sizeof name - 1 ? (size_t)(tab - p) : sizeof name - 1;
            memcpy(name, p, k);
            json = tab + 1;
        }
        cJSON *d = cJSON_ParseWithLength(json, (size_t)(p + n - json));
        qt_tr_stream_event(s, name, d, fuzz_emit, acc);
        cJSON_Delete(d);
        p = nl ? nl + 1 : NULL;
    }
    if (s)
        qt_tr_stream_end(s, fuzz_emit, acc);
    cJSON *c = acc ? qt_tr_acc_completion(acc) : NULL;
    cJSON_Delete(c);
    qt_tr_acc_free(acc);
    qt_tr_stream_free(s);
}

int qt_tr_fuzz(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char err[256];
    cJSON *in = NULL, *out = NULL;
    switch (data[0] % 6) {
    case 0:
        in = cJSON_Parse(text);
        qt_tr_openai_carries_to_anthropic(in, err, sizeof err);
        qt_tr_req_openai_to_anthropic(in, NULL, 0, data[0] & 8, &out, err, sizeof err);
        break;
    case 1:
        in = cJSON_Parse(text);
        qt_tr_req_anthropic_to_openai(in, NULL, data[0] & 8, &out, err, sizeof err);
        break;
    case 2:
        in = cJSON_Parse(text);
        qt_tr_resp_anthropic_to_openai(in, 1, &out, err, sizeof err);
        break;
    case 3:
        in = cJSON_Parse(text);
        qt_tr_resp_openai_to_anthropic(in, &out, err, sizeof err);
        break;
    case 4:
        fuzz_stream(QT_TR_ANTHROPIC_TO_OPENAI, text);
        break;
    default:
        fuzz_stream(QT_TR_OPENAI_TO_ANTHROPIC, text);
        break;
    }
    cJSON_Delete(in);
    cJSON_Delete(out);
    free(text);
    return 0;
}
