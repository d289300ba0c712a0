#!/usr/bin/env bash
# test_mock_agents.sh: the mock's agents' shapes against curl: a tool call
# made from the tool's schema (OpenAI and Anthropic, plain and streamed as
# argument deltas / input_json_delta), tool_choice none and named, n
# choices, a tool result answered with text quoting it, a result that
# answers no call refused with 400 like the real APIs, and cache ratios in
# the usage of both shapes.
source "$(dirname "$0")/lib.sh"

start_mock --model m --model c:cache=0.5,cache_write=0.25 || exit 1
post() { curl -s -H 'Content-Type: application/json' -w '\n%{http_code}' --data-binary "$2" "$MOCK_URL$1"; }
body() { echo "$1" | sed '$d'; }
code() { echo "$1" | tail -1; }
TOOLS='[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},"metric":{"type":"boolean"}}}}},{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"type":"string"}}}}}]'
ATOOLS='[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]'
ASK='[{"role":"user","content":"weather in Paris?"}]'

r=$(post /v1/chat/completions "{\"model\":\"m\",\"messages\":$ASK,\"tools\":$TOOLS,\"max_tokens\":50}")
b=$(body "$r")
expect_eq "openai: a tool call" "$(echo "$b" | json_get - 'd["choices"][0]["message"]["tool_calls"][0]["function"]["name"]')" get_weather
expect_eq "openai: arguments from the schema" \
    "$(echo "$b" | json_get - 'd["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]')" \
    '{"city":"mock-city","days":42,"metric":true}'
expect_eq "openai: content null, finish_reason tool_calls" \
    "$(echo "$b" | json_get - 'str(d["choices"][0]["message"]["content"]) + " " + d["choices"][0]["finish_reason"]')" \
    "None tool_calls"
r=$(post /v1/chat/completions "{\"model\":\"m\",\"messages\":$ASK,\"tools\":$TOOLS,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}}")
expect_eq "openai: a named tool_choice" "$(body "$r" | json_get - 'd["choices"][0]["message"]["tool_calls"][0]["function"]["name"]')" get_time
r=$(post /v1/chat/completions "{\"model\":\"m\",\"messages\":$ASK,\"tools\":$TOOLS,\"tool_choice\":\"none\"}")
expect_eq "openai: tool_choice none answers text" "$(body "$r" | json_get - 'd["choices"][0]["finish_reason"]')" length
r=$(post /v1/chat/completions "{\"model\":\"m\",\"messages\":$ASK,\"n\":3,\"max_tokens\":5}")
expect_eq "openai: n = 3 choices, indexed" "$(body "$r" | json_get - '[c["index"] for c in d["choices"]]')" "[0, 1, 2]"
expect_eq "openai: usage sums the choices" "$(body "$r" | json_get - 'd["usage"]["completion_tokens"]')" 15

r=$(post /v1/chat/completions "{\"model\":\"m\",\"messages\":$ASK,\"tools\":$TOOLS,\"stream\":true}")
args=$(body "$r" | python3 -c '
import json, sys
a, n = "", 0
for l in sys.stdin:
    if l.startswith("data: {"):
        for c in json.loads(l[6:]).get("choices", []):
            for t in c["delta"].get("tool_calls", []):
                a += t["function"].get("arguments", ""); n += 1
print(n, a)')
expect_eq "openai stream: the arguments in deltas add up" "$args" '4 {"city":"mock-city","days":42,"metric":true}'

r=$(post /v1/messages "{\"model\":\"m\",\"max_tokens\":50,\"messages\":$ASK,\"tools\":$ATOOLS}")
b=$(body "$r")
expect_eq "anthropic: a tool_use block" "$(echo "$b" | json_get - 'd["content"][0]["type"] + " " + d["content"][0]["name"]')" "tool_use get_weather"
expect_eq "anthropic: input from the schema" "$(echo "$b" | json_get - 'd["content"][0]["input"]')" "{'city': 'mock-city'}"
expect_eq "anthropic: stop_reason tool_use" "$(echo "$b" | json_get - 'd["stop_reason"]')" tool_use
r=$(post /v1/messages "{\"model\":\"m\",\"max_tokens\":50,\"messages\":$ASK,\"tools\":$ATOOLS,\"stream\":true}")
got=$(body "$r" | python3 -c '
import json, sys
a, start = "", ""
for l in sys.stdin:
    if l.startswith("data: {"):
        e = json.loads(l[6:])
        if e["type"] == "content_block_start": start = e["content_block"]["type"]
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta": a += e["delta"]["partial_json"]
print(start, a)')
expect_eq "anthropic stream: tool_use then input_json_delta adding up" "$got" 'tool_use {"city":"mock-city"}'

HIST='[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":"sunny"}]'
r=$(post /v1/chat/completions "{\"model\":\"m\",\"messages\":$HIST,\"tools\":$TOOLS}")
expect_eq "openai: a tool result is answered with text quoting it" \
    "$(body "$r" | json_get - 'd["choices"][0]["message"]["content"]')" "Tool result received: sunny"
r=$(post /v1/chat/completions "{\"model\":\"m\",\"messages\":${HIST/tool_call_id\":\"call_1/tool_call_id\":\"call_X}}")
expect_eq "openai: a result answering no call is a 400" "$(code "$r")" 400
AHIST='[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"cloudy"}]}]'
r=$(post /v1/messages "{\"model\":\"m\",\"max_tokens\":50,\"messages\":$AHIST}")
expect_eq "anthropic: a tool_result is answered with text quoting it" \
    "$(body "$r" | json_get - 'd["content"][0]["text"]')" "Tool result received: cloudy"
r=$(post /v1/messages "{\"model\":\"m\",\"max_tokens\":50,\"messages\":${AHIST/tool_use_id\":\"toolu_1/tool_use_id\":\"toolu_X}}")
expect_eq "anthropic: a tool_result answering no tool_use is a 400" "$(code "$r")" 400

LONG=$(python3 -c 'print("x" * 400)')
r=$(post /v1/chat/completions "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"$LONG\"}]}")
expect_eq "openai: cache=0.5 reports half the prompt cached" \
    "$(body "$r" | json_get - '(d["usage"]["prompt_tokens"], d["usage"]["prompt_tokens_details"]["cached_tokens"])')" "(100, 50)"
r=$(post /v1/messages "{\"model\":\"c\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"$LONG\"}]}")
expect_eq "anthropic: cache reads and writes come out of input_tokens" \
    "$(body "$r" | json_get - '(d["usage"]["input_tokens"], d["usage"]["cache_read_input_tokens"], d["usage"]["cache_creation_input_tokens"])')" \
    "(25, 50, 25)"

# The prompt cache: a repeated prefix of >= 1024 tokens is reported cached, in steps of 128.
BIG=$(python3 -c 'print("y" * 4800)')   # 1200 tokens
req="{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"$BIG\"}]}"
r=$(post /v1/chat/completions "$req")
expect_eq "cache: a first prompt is not cached" "$(body "$r" | json_get - 'd["usage"]["prompt_tokens_details"]["cached_tokens"]')" 0
r=$(post /v1/chat/completions "$req")
expect_eq "cache: the same prompt again is cached to the 128 below" \
    "$(body "$r" | json_get - 'd["usage"]["prompt_tokens_details"]["cached_tokens"]')" 1152
r=$(post /v1/chat/completions "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"$BIG\"},{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":\"and then?\"}]}")
expect_eq "cache: a history that grows reads its old prefix from the cache" \
    "$(body "$r" | json_get - '(d["usage"]["prompt_tokens"], d["usage"]["prompt_tokens_details"]["cached_tokens"])')" "(1203, 1152)"
r=$(post /v1/chat/completions "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"z$BIG\"}]}")
expect_eq "cache: a different prompt is not" "$(body "$r" | json_get - 'd["usage"]["prompt_tokens_details"]["cached_tokens"]')" 0
areq="{\"model\":\"m\",\"max_tokens\":5,\"system\":[{\"type\":\"text\",\"text\":\"$BIG\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
r=$(post /v1/messages "$areq")
expect_eq "anthropic cache: a first prompt with cache_control is written" \
    "$(body "$r" | json_get - '(d["usage"]["cache_creation_input_tokens"], d["usage"]["cache_read_input_tokens"])')" "(1201, 0)"
r=$(post /v1/messages "$areq")
expect_eq "anthropic cache: then read" \
    "$(body "$r" | json_get - '(d["usage"]["input_tokens"], d["usage"]["cache_read_input_tokens"], d["usage"]["cache_creation_input_tokens"])')" \
    "(0, 1152, 49)"
r=$(post /v1/messages "{\"model\":\"m\",\"max_tokens\":5,\"system\":\"$BIG\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
expect_eq "anthropic cache: nothing without cache_control" "$(body "$r" | json_get - 'd["usage"]["cache_read_input_tokens"]')" 0
