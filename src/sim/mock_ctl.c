/* mock_ctl.c: what the simulated provider says about itself, and how it is
 * steered at run time: GET /stats (qt_mock_stats_json), stats reset,
 * qt_mock_set_model / qt_mock_set_outage and their HTTP forms under
 * /control/, and GET /v1/models. Every function takes m->lock for the
 * table and builds JSON outside it where it can.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mock_int.h"
#include "quotatop/clock.h"

static void add_counts(cJSON *o, const mock_counts *c)
{
    cJSON_AddNumberToObject(o, "requests", (double)c->requests);
    cJSON_AddNumberToObject(o, "ok", (double)c->ok);
    cJSON_AddNumberToObject(o, "rate_limited", (double)c->rate_limited);
    cJSON_AddNumberToObject(o, "rate_limited_requests", (double)c->rl_requests);
    cJSON_AddNumberToObject(o, "rate_limited_tokens", (double)c->rl_tokens);
    cJSON_AddNumberToObject(o, "status_4xx", (double)c->s4xx);
    cJSON_AddNumberToObject(o, "status_5xx", (double)c->s5xx);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)c->prompt_tokens);
    cJSON_AddNumberToObject(o, "completion_tokens", (double)c->completion_tokens);
    cJSON_AddNumberToObject(o, "max_1s", (double)c->max_1s);
    cJSON_AddNumberToObject(o, "in_flight", (double)c->in_flight);
    cJSON_AddNumberToObject(o, "max_in_flight", (double)c->max_in_flight);
}

char *qt_mock_stats_json(qt_mock *m)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    uint64_t now = qt_now_ms();
    cJSON_AddStringToObject(o, "kind", m->kind == QT_MOCK_ANTHROPIC ? "anthropic" : "openai");
    cJSON_AddNumberToObject(o, "uptime_ms", (double)(now - m->start_ms));
    cJSON *models = cJSON_AddObjectToObject(o, "models");
    cJSON *total = cJSON_AddObjectToObject(o, "total");
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->table.n; i++) {
        const mock_model *md = m->table.v[i];
        cJSON *e = cJSON_AddObjectToObject(models, md->o.name);
        if (!e)
            continue;
        add_counts(e, &md->c);
        cJSON_AddNumberToObject(e, "rpm", (double)md->o.rpm);
        cJSON_AddNumberToObject(e, "tpm", (double)md->o.tpm);
        cJSON_AddBoolToObject(e, "in_outage", mock_in_outage(&m->table, md, m->start_ms, now));
    }
    if (total)
        add_counts(total, &m->table.total);
    pthread_mutex_unlock(&m->lock);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void qt_mock_stats_reset(qt_mock *m)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->table.n; i++)
        mock_counts_reset(&m->table.v[i]->c);
    mock_counts_reset(&m->table.total);
    pthread_mutex_unlock(&m->lock);
}

qt_err qt_mock_set_model(qt_mock *m, const qt_mock_model_opts *mo)
{
    if (!mo->name[0] || !memchr(mo->name, '\0', sizeof mo->name))
        return QT_ERR_INVALID;
    qt_err rc = QT_OK;
    uint64_t now = qt_now_ms();
    pthread_mutex_lock(&m->lock);
    mock_model *md = mock_table_get(&m->table, mo->name, true, mo, now);
    if (!md)
        rc = QT_ERR_NOMEM;
    else
        md->o = *mo;        /* buckets keep their level; a smaller cap clips it on refill */
    pthread_mutex_unlock(&m->lock);
    return rc;
}

qt_err qt_mock_set_outage(qt_mock *m, const char *model, uint64_t start_in_ms,
                          uint64_t duration_ms)
{
    uint64_t now = qt_now_ms();
    qt_err rc = QT_OK;
    pthread_mutex_lock(&m->lock);
    uint64_t *from = &m->table.out_from, *to = &m->table.out_to;
    if (model) {
        mock_model *md = mock_table_get(&m->table, model, true, &m->defaults, now);
        if (!md) {
            pthread_mutex_unlock(&m->lock);
            return QT_ERR_LIMIT;
        }
        from = &md->out_from;
        to = &md->out_to;
    }
    *from = now + start_in_ms;
    *to = duration_ms ? *from + duration_ms : *from;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void mock_handle_control(qt_mock *m, const char *what, mock_conn *cx, mock_reply *r)
{
    bool anth = m->kind == QT_MOCK_ANTHROPIC;
    char err[256] = "";
    qt_err rc = QT_ERR_INVALID;
    if (!strcmp(what, "outage")) {
        cJSON *j = cJSON_ParseWithLengthOpts(cx->buf ? cx->buf : "", cx->len, NULL, 0);
        const cJSON *mo = cJSON_GetObjectItemCaseSensitive(j, "model");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "start_ms");
        const cJSON *du = cJSON_GetObjectItemCaseSensitive(j, "duration_ms");
        if (!cJSON_IsObject(j) || (mo && !cJSON_IsNull(mo) && !cJSON_IsString(mo)) ||
            (st && (!cJSON_IsNumber(st) || st->valuedouble < 0)) ||
            !cJSON_IsNumber(du) || du->valuedouble < 0) {
            snprintf(err, sizeof err, "expected {\"model\":NAME|null,\"start_ms\":N,\"duration_ms\":N}");
        } else {
            rc = qt_mock_set_outage(m, cJSON_IsString(mo) ? mo->valuestring : NULL,
                                    st ? (uint64_t)st->valuedouble : 0,
                                    (uint64_t)du->valuedouble);
            if (rc)
                snprintf(err, sizeof err, "%s", qt_strerror(rc));
        }
        cJSON_Delete(j);
    } else {                                          /* model */
        char spec[1024];
        size_t n = cx->len < sizeof spec - 1 ? cx->len : sizeof spec - 1;
        memcpy(spec, cx->buf ? cx->buf : "", n);
        spec[n] = '\0';
        while (n && (spec[n - 1] == '\n' || spec[n - 1] == '\r' || spec[n - 1] == ' '))
            spec[--n] = '\0';
        qt_mock_model_opts mo;
        rc = qt_mock_parse_model(spec, &m->defaults, &mo, err, sizeof err);
        if (!rc && (rc = qt_mock_set_model(m, &mo)))
            snprintf(err, sizeof err, "%s", qt_strerror(rc));
    }
    if (rc)
        mock_kind_error(r, anth, 400, "invalid_request_error", "invalid_request_error", NULL, err);
    else
        mock_set_json(r, 200, strdup("{\"ok\":true}"));
}

void mock_handle_models(qt_mock *m, mock_reply *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; data && i < m->table.n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", m->table.v[i]->o.name);
        cJSON_AddStringToObject(e, "object", "model");
        cJSON_AddNumberToObject(e, "created", 0);
        cJSON_AddStringToObject(e, "owned_by", "quotatop-mock");
        cJSON_AddItemToArray(data, e);
    }
    pthread_mutex_unlock(&m->lock);
    mock_set_json(r, 200, cJSON_PrintUnformatted(o));
    cJSON_Delete(o);
}
