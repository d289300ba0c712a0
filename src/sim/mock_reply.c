/* mock_reply.c: how the simulated provider says no, and its limit headers.
 *
 * Each refusal or injected failure (a mock_verdict of mock.c) becomes the status,
 * body and headers the real API sends: OpenAI {"error":{message,type,param,
 * code}} or Anthropic {"type":"error","error":{type,message}}. Limit
 * headers: OpenAI x-ratelimit-{limit,remaining,reset}-{requests,tokens} with
 * Go durations; Anthropic anthropic-ratelimit-{requests,tokens}-{limit,
 * remaining,reset} with RFC 3339 times (rounded up to the second). A limit
 * of 0 sends none of its headers. 429s add retry-after (whole seconds,
 * rounded up) and retry-after-ms.
 */
#include <stdio.h>
#include <string.h>

#include "mock_int.h"
#include "quotatop/clock.h"

void mock_add_header(mock_reply *r, const char *name, const char *fmt, unsigned long long v)
{
    if (r->nh < MOCK_MAX_HEADERS) {
        r->h[r->nh].name = name;
        snprintf(r->h[r->nh].value, sizeof r->h[r->nh].value, fmt, v);
        r->nh++;
    }
}

void mock_add_header_s(mock_reply *r, const char *name, const char *value)
{
    if (r->nh < MOCK_MAX_HEADERS) {
        r->h[r->nh].name = name;
        snprintf(r->h[r->nh].value, sizeof r->h[r->nh].value, "%s", value);
        r->nh++;
    }
}

/* ---- simple answers ---- */

void mock_set_json(mock_reply *r, unsigned status, char *body)
{
    r->status = body ? status : 500;
    r->body = body;
    r->ctype = "application/json";
}

void mock_kind_error(mock_reply *r, bool anthropic, unsigned status, const char *atype,
                       const char *otype, const char *code, const char *msg)
{
    mock_set_json(r, status, anthropic ? mock_anthropic_error(atype, msg)
                                   : mock_openai_error(msg, otype, NULL, code));
}

void mock_not_found(mock_reply *r, bool anthropic, const char *method, const char *url)
{
    char msg[300];
    snprintf(msg, sizeof msg, anthropic ? "Not found: %s %.200s" : "Invalid URL (%s %.200s)",
             method, url);
    mock_kind_error(r, anthropic, 404, "not_found_error", "invalid_request_error", NULL, msg);
}

void mock_bad_method(mock_reply *r, bool anthropic, const char *method, const char *url,
                       const char *allow)
{
    char msg[300];
    snprintf(msg, sizeof msg, "Invalid method for URL (%s %.200s)", method, url);
    mock_kind_error(r, anthropic, 405, "invalid_request_error", "invalid_request_error", NULL, msg);
    mock_add_header_s(r, "Allow", allow);
}

void mock_limit_headers(mock_reply *r, const mock_verdict *v, bool anthropic)
{
    if (!v->have_limits)
        return;
    char buf[48];
    if (!anthropic) {
        if (v->rpm) {
            mock_add_header(r, "x-ratelimit-limit-requests", "%llu", v->rpm);
            mock_add_header(r, "x-ratelimit-remaining-requests", "%llu", v->rem_req);
            mock_go_duration(v->reset_req_ms, buf, sizeof buf);
            mock_add_header_s(r, "x-ratelimit-reset-requests", buf);
        }
        if (v->tpm) {
            mock_add_header(r, "x-ratelimit-limit-tokens", "%llu", v->tpm);
            mock_add_header(r, "x-ratelimit-remaining-tokens", "%llu", v->rem_tok);
            mock_go_duration(v->reset_tok_ms, buf, sizeof buf);
            mock_add_header_s(r, "x-ratelimit-reset-tokens", buf);
        }
        return;
    }
    uint64_t wall = qt_wall_ms();
    if (v->rpm) {
        mock_add_header(r, "anthropic-ratelimit-requests-limit", "%llu", v->rpm);
        mock_add_header(r, "anthropic-ratelimit-requests-remaining", "%llu", v->rem_req);
        mock_rfc3339(wall + v->reset_req_ms + 999, buf, sizeof buf);
        mock_add_header_s(r, "anthropic-ratelimit-requests-reset", buf);
    }
    if (v->tpm) {
        mock_add_header(r, "anthropic-ratelimit-tokens-limit", "%llu", v->tpm);
        mock_add_header(r, "anthropic-ratelimit-tokens-remaining", "%llu", v->rem_tok);
        mock_rfc3339(wall + v->reset_tok_ms + 999, buf, sizeof buf);
        mock_add_header_s(r, "anthropic-ratelimit-tokens-reset", buf);
    }
}

void mock_error_reply(mock_reply *r, const mock_verdict *v, const mock_req *q, bool anthropic,
                        bool key_given)
{
    char msg[512], dur[32];
    const char *model = q->model;
    switch (v->d) {
    case MOCK_D_AUTH:
        if (anthropic)
            mock_set_json(r, 401, mock_anthropic_error("authentication_error",
                     key_given ? "invalid x-api-key" : "x-api-key header is required"));
        else
            mock_set_json(r, 401, mock_openai_error(key_given
                     ? "Incorrect API key provided. You can find your API key at "
                       "https://platform.openai.com/account/api-keys."
                     : "You didn't provide an API key. You need to provide your API key in an "
                       "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                     "invalid_request_error", NULL, "invalid_api_key"));
        break;
    case MOCK_D_TOO_BIG:
        mock_kind_error(r, anthropic, 413, "request_too_large", "invalid_request_error", NULL,
                   "Request body too large.");
        break;
    case MOCK_D_BAD:
        mock_kind_error(r, anthropic, 400, "invalid_request_error", "invalid_request_error", NULL,
                   q->error);
        break;
    case MOCK_D_NO_MODEL:
        if (anthropic) {
            snprintf(msg, sizeof msg, "model: %s", model);
            mock_set_json(r, 404, mock_anthropic_error("not_found_error", msg));
        } else {
            snprintf(msg, sizeof msg, "The model `%s` does not exist or you do not have access to it.",
                     model);
            mock_set_json(r, 404, mock_openai_error(msg, "invalid_request_error", "model",
                                               "model_not_found"));
        }
        break;
    case MOCK_D_TABLE_FULL:
        snprintf(msg, sizeof msg, "too many distinct models (the mock keeps at most %d)",
                 MOCK_MAX_MODELS);
        mock_kind_error(r, anthropic, 400, "invalid_request_error", "invalid_request_error", NULL, msg);
        break;
    case MOCK_D_OUTAGE:
        if (anthropic)
            mock_set_json(r, 529, mock_anthropic_error("overloaded_error", "Overloaded"));
        else
            mock_set_json(r, 503, mock_openai_error("The server is overloaded or not ready yet.",
                                               "server_error", NULL, NULL));
        break;
    case MOCK_D_CONTEXT:
        if (anthropic) {
            snprintf(msg, sizeof msg, "input length and `max_tokens` exceed context limit: "
                     "%llu + %llu > %llu, decrease input length or `max_tokens` and try again",
                     (unsigned long long)q->prompt_tokens, (unsigned long long)q->max_tokens,
                     (unsigned long long)v->context_window);
            mock_set_json(r, 400, mock_anthropic_error("invalid_request_error", msg));
        } else {
            snprintf(msg, sizeof msg, "This model's maximum context length is %llu tokens. "
                     "However, you requested %llu tokens (%llu in the messages, %llu in the "
                     "completion). Please reduce the length of the messages or completion.",
                     (unsigned long long)v->context_window,
                     (unsigned long long)(q->prompt_tokens + q->max_tokens),
                     (unsigned long long)q->prompt_tokens, (unsigned long long)q->max_tokens);
            mock_set_json(r, 400, mock_openai_error(msg, "invalid_request_error", "messages",
                                               "context_length_exceeded"));
        }
        break;
    case MOCK_D_RL_REQ:
    case MOCK_D_RL_TOK: {
        bool req = v->d == MOCK_D_RL_REQ;
        uint64_t limit = req ? v->rpm : v->tpm;
        uint64_t used = limit - (req ? v->rem_req : v->rem_tok);
        uint64_t asked = req ? 1 : q->prompt_tokens + q->max_tokens;
        mock_go_duration(v->retry_ms, dur, sizeof dur);
        if (anthropic) {
            snprintf(msg, sizeof msg, "This request would exceed the rate limit for your "
                     "organization of %llu %s per minute for model %s. Please try again in %s.",
                     (unsigned long long)limit, req ? "requests" : "tokens", model, dur);
            mock_set_json(r, 429, mock_anthropic_error("rate_limit_error", msg));
        } else {
            snprintf(msg, sizeof msg, "Rate limit reached for %s in organization org-mock on "
                     "%s per min (%s): Limit %llu, Used %llu, Requested %llu. Please try again "
                     "in %s. Visit https://platform.openai.com/account/rate-limits to learn more.",
                     model, req ? "requests" : "tokens", req ? "RPM" : "TPM",
                     (unsigned long long)limit, (unsigned long long)used,
                     (unsigned long long)asked, dur);
            mock_set_json(r, 429, mock_openai_error(msg, req ? "requests" : "tokens", NULL,
                                               "rate_limit_exceeded"));
        }
        mock_add_header(r, "retry-after", "%llu", (v->retry_ms + 999) / 1000);
        mock_add_header(r, "retry-after-ms", "%llu", v->retry_ms);
        break;
    }
    case MOCK_D_FAIL_500:
        if (anthropic)
            mock_set_json(r, 500, mock_anthropic_error("api_error", "Internal server error"));
        else
            mock_set_json(r, 500, mock_openai_error("The server had an error while processing your "
                     "request. Sorry about that!", "server_error", NULL, NULL));
        break;
    case MOCK_D_FAIL_503:
        if (anthropic)
            mock_set_json(r, 529, mock_anthropic_error("overloaded_error", "Overloaded"));
        else
            mock_set_json(r, 503, mock_openai_error("The engine is currently overloaded, please try "
                     "again later.", "server_error", NULL, NULL));
        break;
    case MOCK_D_OK:
        break;
    }
}
