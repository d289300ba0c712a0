/* proxy_req.c: the request object of `quotatop serve` and the helpers that
 * queue answers on a connection.
 *
 * A px_req lives from the first access-handler call of a request to the
 * last of its references: the connection's (dropped in notify_completed),
 * the job's while the engine holds it (dropped at the end of
 * qt_proxy_on_result), a streamed response's (dropped by its free callback)
 * and, briefly, the guard thread's while it checks a hang-up. The count is
 * atomic so the guard can take a reference without r->mu (see proxy_conn.c
 * for why it must not). The answer helpers run on the MHD thread that
 * handles the connection; they count each status for /metrics.
 */
#include "proxy_int.h"
#include "quotatop/translate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quotatop/clock.h"

px_req *px_req_new(qt_proxy *px, struct MHD_Connection *c)
{
    px_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->px = px;
    r->conn = c;
    r->drv = px_driver_of(px, c);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->sock = ci ? ci->connect_fd : -1;
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->pc = ci ? ci->socket_context : NULL;
    r->refs = 1;
    r->t0 = qt_now_ms();
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

void px_req_ref(px_req *r) { __atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED); }

void px_req_unref(px_req *r)
{
    if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    pthread_mutex_destroy(&r->mu);
    px_buf_free(&r->body);
    px_buf_free(&r->out);
    free(r->error);
    free(r->model_used);
    free(r->openai_json);
    free(r->content);
    free(r->finish_reason);
    free(r->tool_calls);
    qt_tr_stream_free(r->tr);
    qt_tr_rstream_free(r->rtr);
    free(r);
}

void px_log_line(px_req *r, const char *method, const char *url, unsigned status)
{
    if (!r || !r->px->verbose)
        return;
    fprintf(stderr, "quotatop serve: %s %s %u %s %llums\n", method, url, status,
            r->id[0] ? r->id : "-", (unsigned long long)(qt_now_ms() - r->t0));
}

enum MHD_Result px_answer_json(px_req *r, struct MHD_Connection *c, unsigned status, char *body,
                               const char *const *headers)
{
    qt_proxy *px = r ? r->px : NULL;
    if (!body) {
        status = 500;
        body = px_error_json("quotatop: out of memory", "server_error", NULL, NULL);
        if (!body)
            return MHD_NO;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body,
                                                                MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES && px)
        px_count(&px->st.responses[status < 600 ? status : 599], 1);
    if (r)
        r->status_sent = (int)status;
    return ok;
}

enum MHD_Result px_answer_error(px_req *r, struct MHD_Connection *c, unsigned status,
                                const char *type, const char *code, const char *param,
                                const char *const *headers, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r && r->route == RT_MESSAGES)   /* Anthropic's SDK reads its own error shape */
        return px_answer_json(r, c, status, px_anthropic_error_json(status, msg), headers);
    return px_answer_json(r, c, status, px_error_json(msg, type, param, code), headers);
}

const char *px_hdr(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}
