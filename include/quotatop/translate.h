/* translate.h: OpenAI chat completions <-> Anthropic messages, both
 * directions, requests and answers, plain and streamed, as functions of
 * cJSON trees.
 *
 * DESIGN. Every function takes a parsed tree and returns a new one (the
 * caller deletes it); nothing here does I/O, keeps global state or knows the
 * config. The provider module (provider_anthropic.c, provider_stream.c) uses
 * the OpenAI -> Anthropic request, the Anthropic -> OpenAI answer and stream
 * directions; the other two (Anthropic -> OpenAI request, OpenAI ->
 * Anthropic answer and stream) exist for an Anthropic-shaped front end.
 *
 * What crosses (field names as the two APIs spell them):
 *   system / developer messages  <-> top-level `system` (string, or text
 *                                    blocks when a part has cache_control)
 *   text parts                   <-> text blocks (cache_control kept)
 *   image_url parts              <-> image blocks: a data: URL <-> source
 *                                    {type: base64, media_type, data}, an
 *                                    http(s) URL <-> source {type: url, url}
 *   assistant tool_calls         <-> tool_use blocks {id, name, input}
 *                                    (arguments JSON text <-> input object)
 *   role tool (tool_call_id)     <-> user tool_result blocks (tool_use_id;
 *                                    ids kept; consecutive results merge
 *                                    into one user turn)
 *   tools[].function {name, description, parameters}
 *                                <-> tools[] {name, description, input_schema}
 *   tool_choice auto / none / required / {function: {name}}
 *                                <-> {type: auto / none / any / tool+name}
 *   parallel_tool_calls: false   <-> tool_choice.disable_parallel_tool_use
 *   stop (string or array)       <-> stop_sequences
 *   temperature (clamped to [0,1] towards Anthropic), top_p, top_k
 *   max_tokens / max_completion_tokens (the larger) <-> max_tokens
 *   user                         <-> metadata.user_id
 *   finish_reason stop / length / tool_calls / content_filter
 *                                <-> stop_reason end_turn (stop_sequence,
 *                                    pause_turn) / max_tokens / tool_use / refusal
 *   usage prompt_tokens (all input), prompt_tokens_details.cached_tokens,
 *         completion_tokens       <-> input_tokens (uncached),
 *                                    cache_read_input_tokens,
 *                                    cache_creation_input_tokens, output_tokens
 *   streamed text and tool-argument deltas (tool_calls[].function.arguments
 *   <-> input_json_delta.partial_json), thinking <-> reasoning_content.
 *
 * What cannot cross makes the request translation fail with QT_ERR_LIMIT
 * and a message naming the field (qt_tr_openai_carries_to_anthropic tells
 * beforehand, cheaply): n > 1,
 * logprobs / top_logprobs, response_format json_schema, audio, file and
 * input_audio parts, non-function tools, role `function`. Malformed input
 * (a field of the wrong type, arguments that are not JSON) gives
 * QT_ERR_INVALID. response_format json_object, seed, penalties,
 * logit_bias, store, service_tier and OpenAI's `metadata` are dropped.
 *
 * Thread-safety: every function is safe from any thread; a qt_tr_stream or
 * qt_tr_acc belongs to one thread at a time.
 */
#ifndef QT_TRANSLATE_H
#define QT_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "quotatop/common.h"

/* ---- requests ----------------------------------------------------------- */

/* True when an OpenAI chat request can be carried to an Anthropic-kind
 * model without losing what it asks for; else false with the reason,
 * naming the field, in why ("\"n\": 2 (Anthropic answers one choice)").
 * Looks at fields and part types only: cheap enough to ask under a lock. */
bool qt_tr_openai_carries_to_anthropic(const cJSON *req, char *why, size_t whylen);

/* OpenAI chat request -> Anthropic messages request. model is the name to
 * send (NULL: the request's own `model`); default_max_tokens is used when the
 * request gives neither max_tokens nor max_completion_tokens; stream adds
 * "stream": true. Fields the scheduler owns (id, workflow, priority,
 * quotatop_*) are ignored. Returns QT_OK and *out; QT_ERR_LIMIT (cannot
 * cross) / QT_ERR_INVALID (malformed) with a message in err; QT_ERR_NOMEM. */
qt_err qt_tr_req_openai_to_anthropic(const cJSON *req, const char *model, long default_max_tokens,
                                     bool stream, cJSON **out, char *err, size_t errlen);

/* Anthropic messages request -> OpenAI chat request (system first, tool
 * results become role tool messages before the rest of their user turn).
 * stream adds "stream": true and stream_options.include_usage. Same return
 * values. Server tools (a tool with a `type` other than "custom") and
 * document blocks cannot cross. */
qt_err qt_tr_req_anthropic_to_openai(const cJSON *req, const char *model, bool stream,
                                     cJSON **out, char *err, size_t errlen);

/* ---- answers ------------------------------------------------------------ */

/* Anthropic message -> OpenAI chat.completion (one choice; text blocks
 * joined, tool_use blocks as tool_calls, content null when there is no text;
 * `model` as Anthropic named it; created_s the "created"). QT_ERR_INVALID
 * when msg is not a message (no content array or no usage). */
qt_err qt_tr_resp_anthropic_to_openai(const cJSON *msg, int64_t created_s, cJSON **out,
                                      char *err, size_t errlen);

/* OpenAI chat.completion -> Anthropic message (choices[0]). */
qt_err qt_tr_resp_openai_to_anthropic(const cJSON *completion, cJSON **out, char *err,
                                      size_t errlen);

/* stop_reason -> finish_reason and back (static strings; unknown values
 * map to themselves, NULL to NULL). */
const char *qt_tr_finish_from_stop_reason(const char *stop_reason);
const char *qt_tr_stop_reason_from_finish(const char *finish_reason);

/* ---- streams ------------------------------------------------------------ */

typedef enum {
    QT_TR_ANTHROPIC_TO_OPENAI,   /* Anthropic events in, chat.completion.chunk objects out */
    QT_TR_OPENAI_TO_ANTHROPIC,   /* chunks in, Anthropic events out */
} qt_tr_dir;

/* Receives one translated event: event is the SSE event name ("" for
 * OpenAI chunks, "message_start", "content_block_delta", ... for
 * Anthropic); data is the object (owned by the caller of the callback,
 * valid during it). Returns 0 to go on, nonzero to stop. */
typedef int (*qt_tr_emit)(void *ud, const char *event, const cJSON *data);

typedef struct qt_tr_stream qt_tr_stream;

/* created_s: the "created" of OpenAI chunks. NULL when out of memory. */
qt_tr_stream *qt_tr_stream_new(qt_tr_dir dir, int64_t created_s);
void qt_tr_stream_free(qt_tr_stream *s);   /* accepts NULL */

/* Translates one input event (event: its SSE name, may be "" or NULL; data:
 * its parsed data). Anthropic in: the type comes from data.type, else event.
 * Returns QT_OK; QT_ERR_CLOSED when emit asked to stop; QT_ERR_IO for an
 * error event (Anthropic `error`, an OpenAI chunk with `error`), after
 * which qt_tr_stream_error gives it; QT_ERR_NOMEM. */
qt_err qt_tr_stream_event(qt_tr_stream *s, const char *event, const cJSON *data,
                          qt_tr_emit emit, void *ud);

/* The input ended ("data: [DONE]" for chunks). OpenAI -> Anthropic: closes
 * the open block and emits message_delta and message_stop if not done yet.
 * Anthropic -> OpenAI: nothing to add. Same return values. */
qt_err qt_tr_stream_end(qt_tr_stream *s, qt_tr_emit emit, void *ud);

/* True once the input said it is complete (message_stop; a chunk with a
 * finish_reason followed by the end). */
bool qt_tr_stream_done(const qt_tr_stream *s);

/* The error object an error event carried (owned by s), or NULL. */
const cJSON *qt_tr_stream_error(const qt_tr_stream *s);

/* ---- reassembling a streamed answer -------------------------------------- */

/* Folds chat.completion.chunk objects into the chat.completion they add up
 * to: every choice by index, content and refusal concatenated, tool_calls
 * by index (id, name, arguments concatenated), logprobs.content appended,
 * finish_reason, and the id, model, created, system_fingerprint,
 * service_tier and usage of the chunks. */
typedef struct qt_tr_acc qt_tr_acc;

qt_tr_acc *qt_tr_acc_new(void);
void qt_tr_acc_free(qt_tr_acc *a);   /* accepts NULL */
/* QT_OK, QT_ERR_NOMEM; a chunk that is not an object is ignored. */
qt_err qt_tr_acc_add(qt_tr_acc *a, const cJSON *chunk);
/* A new chat.completion tree (caller deletes), NULL when out of memory.
 * `usage` is absent when no chunk carried one. */
cJSON *qt_tr_acc_completion(const qt_tr_acc *a);

/* ---- the OpenAI Responses API (translate_responses.c, translate_rstream.c) */

/* A Responses request goes to an Anthropic-kind model in two steps:
 * qt_tr_req_responses_to_chat, then qt_tr_req_openai_to_anthropic; the
 * answer comes back the other way (qt_tr_resp_anthropic_to_openai, then
 * qt_tr_resp_chat_to_responses; streamed: translate_stream.c's chunks into
 * a qt_tr_rstream). What crosses:
 *   instructions                 -> a system message first
 *   input (a string)             -> one user message
 *   message items (role user / assistant / system / developer; content a
 *   string or input_text / output_text / refusal / input_image parts with
 *   an image_url)                -> chat messages (text and image_url parts)
 *   function_call items          -> tool_calls (call_id as the id) of the
 *                                   assistant message before them
 *   function_call_output items   -> role tool messages (tool_call_id)
 *   reasoning items              -> dropped
 *   tools [{type: function, name, description, parameters}]
 *                                -> [{type: function, function: {...}}]
 *   tool_choice auto / none / required / {type: function, name}
 *   parallel_tool_calls, temperature, top_p, user; max_output_tokens ->
 *   max_completion_tokens; text.format text / json_object.
 * What cannot cross (QT_ERR_LIMIT naming the field): previous_response_id,
 * conversation, background, prompt, top_logprobs, text.format json_schema,
 * tools other than function, hosted tool_choice types, item_reference and
 * other item types, input_file / input_audio parts, images by file_id. */

/* True when a Responses request can go to an Anthropic-kind model; else
 * false with the reason, naming the field, in why. Cheap (no copies). */
bool qt_tr_responses_carries_to_anthropic(const cJSON *req, char *why, size_t whylen);

/* Responses request -> OpenAI chat request (model, messages, tools,
 * tool_choice, sampling, max_completion_tokens). QT_OK and *out (caller
 * deletes); QT_ERR_LIMIT (cannot cross) / QT_ERR_INVALID (malformed) with a
 * message in err; QT_ERR_NOMEM. */
qt_err qt_tr_req_responses_to_chat(const cJSON *req, cJSON **out, char *err, size_t errlen);

/* OpenAI chat.completion (choices[0]) -> a Responses response object: a
 * message item with the text (when there is text, or no tool call), a
 * function_call item per tool call, status completed, or incomplete for
 * finish_reason length / content_filter, usage as input_tokens /
 * output_tokens with their details; id "resp_" + the completion's id.
 * QT_ERR_INVALID when there is no choices[0].message; QT_ERR_NOMEM. */
qt_err qt_tr_resp_chat_to_responses(const cJSON *completion, cJSON **out, char *err, size_t errlen);

/* Pieces of a response (new trees, NULL when out of memory): chat usage
 * (NULL: zeros) as Responses usage; a message item (done: with its
 * output_text part); a function_call item (done: with the arguments);
 * the response itself (usage NULL: in_progress; takes output and usage,
 * which may be NULL, even on failure). */
cJSON *qt_tr_responses_usage(const cJSON *chat_usage);
cJSON *qt_tr_responses_message_item(const char *id, const char *text, bool done);
cJSON *qt_tr_responses_call_item(const char *call_id, const char *name, const char *args, bool done);
cJSON *qt_tr_responses_object(const char *upstream_id, const char *model, int64_t created_s,
                              const char *finish_reason, cJSON *output, cJSON *usage);

/* chat.completion.chunk objects in, Responses events out (emit gets the
 * event type as the SSE event name and the event object, which carries
 * type and sequence_number): response.created, response.in_progress,
 * per item output_item.added / content_part.added / output_text.delta /
 * output_text.done / content_part.done / output_item.done (messages) or
 * output_item.added / function_call_arguments.delta / .done /
 * output_item.done (function calls), and at the end response.completed
 * or response.incomplete with the whole response and usage. */
typedef struct qt_tr_rstream qt_tr_rstream;

/* created_s: the responses' created_at. NULL when out of memory. */
qt_tr_rstream *qt_tr_rstream_new(int64_t created_s);
void qt_tr_rstream_free(qt_tr_rstream *s);   /* accepts NULL */
/* One chunk. QT_OK; QT_ERR_CLOSED when emit asked to stop; QT_ERR_NOMEM.
 * A chunk that is not an object is ignored. */
qt_err qt_tr_rstream_chunk(qt_tr_rstream *s, const cJSON *chunk, qt_tr_emit emit, void *ud);
/* The chunks ended: closes the open items and sends response.completed
 * (or .incomplete). Once; later calls do nothing. Same return values. */
qt_err qt_tr_rstream_end(qt_tr_rstream *s, qt_tr_emit emit, void *ud);

/* ---- fuzzing ------------------------------------------------------------ */

/* A libFuzzer-friendly entry point: data[0] picks the translation (modulo
 * 6: the two requests, the two answers, the two streams, where the rest is
 * one event per line, "event\tjson"), the rest is the input JSON. Never
 * crashes or leaks on any input; returns 0. */
int qt_tr_fuzz(const uint8_t *data, size_t size);

#endif /* QT_TRANSLATE_H */
