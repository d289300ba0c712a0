#!/usr/bin/env bash
# test_run_tools.sh: agents' jobs through `quotatop run`: result lines carry
# finish_reason and tool_calls (OpenAI shape) from both kinds, choices for
# n > 1, a tool result sent back reaches the model; a request no model of the
# chain can carry fails at once naming the field (the skip is an event); cost
# with cached and cache-write tokens at their own prices, in results and the
# summary; `check` prints those prices; max_completion_tokens is reserved.
source "$(dirname "$0")/lib.sh"

start_mock --model gpt-t --model claude-t --model cachey:cache=0.5 --model claudec:cache=0.4,cache_write=0.2 \
    --model pricey || exit 1
cat > "$TMP/cfg.json" <<JSON
{"workers": 4,
 "providers": {"oa": {"kind": "openai", "base_url": "$MOCK_URL/v1"},
               "an": {"kind": "anthropic", "base_url": "$MOCK_URL/v1"}},
 "models": {"gpt-t": {"providers": ["oa"]},
            "claude-t": {"providers": ["an"]},
            "claude-then-gpt": {"providers": ["an"], "upstream_model": "claude-t", "fallback": ["gpt-t"]},
            "cachey": {"providers": ["oa"], "input_usd_per_mtok": 2, "cached_input_usd_per_mtok": 0.5,
                       "output_usd_per_mtok": 8},
            "claudec": {"providers": ["an"], "input_usd_per_mtok": 3, "cached_input_usd_per_mtok": 0.3,
                        "cache_write_usd_per_mtok": 3.75, "output_usd_per_mtok": 15}},
 "retry": {"max_attempts": 2, "base_ms": 10, "cap_ms": 20}}
JSON

python3 - > "$TMP/jobs.jsonl" <<'PY'
import json
tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]
ask = [{"role": "user", "content": "What is the weather in Paris?"}]
big = [{"role": "system", "content": "You are a careful assistant. " * 40}] + ask
call = {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}
jobs = [
    {"id": "oa-tools", "model": "gpt-t", "messages": ask, "tools": tools, "max_tokens": 50},
    {"id": "an-tools", "model": "claude-t", "messages": ask, "tools": tools, "max_tokens": 50},
    {"id": "oa-n2", "model": "gpt-t", "messages": ask, "n": 2, "max_tokens": 10},
    {"id": "an-n2", "model": "claude-t", "messages": ask, "n": 2, "max_tokens": 10},
    {"id": "skip-n2", "model": "claude-then-gpt", "messages": ask, "n": 2, "max_tokens": 10},
    {"id": "oa-result", "model": "gpt-t", "tools": tools, "max_tokens": 50,
     "messages": ask + [call, {"role": "tool", "tool_call_id": "call_1", "content": "rain all week"}]},
    {"id": "an-result", "model": "claude-t", "tools": tools, "max_tokens": 50,
     "messages": ask + [call, {"role": "tool", "tool_call_id": "call_1", "content": "rain all week"}]},
    {"id": "cached-oa", "model": "cachey", "messages": big, "max_tokens": 20},
    {"id": "cached-an", "model": "claudec", "messages": big, "max_completion_tokens": 20},
]
print("\n".join(json.dumps(j) for j in jobs))
PY
"$QT_BIN" run -c "$TMP/cfg.json" --headless -v -o "$TMP/out.jsonl" --summary "$TMP/sum.json" "$TMP/jobs.jsonl" \
    2>"$TMP/err"
expect_eq "tools: exit 1 (one job cannot be carried)" "$?" 1
expect_eq "tools: one result per job" "$(wc -l < "$TMP/out.jsonl")" 9
r() { grep "\"id\":\"$1\"" "$TMP/out.jsonl" | json_get - "$2"; }
for id in oa-tools an-tools; do
    expect_eq "$id: ok" "$(r $id 'd["status"]')" ok
    expect_eq "$id: finish_reason tool_calls" "$(r $id 'd["finish_reason"]')" tool_calls
    expect_eq "$id: the tool call in OpenAI shape" \
        "$(r $id 'd["tool_calls"][0]["type"] + " " + d["tool_calls"][0]["function"]["name"]')" "function get_weather"
    expect_eq "$id: arguments intact" "$(r $id 'json.loads(d["tool_calls"][0]["function"]["arguments"])')" \
        "{'city': 'mock-city', 'days': 42}"
done
expect_eq "oa-n2: two choices in the result" "$(r oa-n2 'len(d["choices"])')" 2
expect_eq "oa-n2: content is the first choice's" "$(r oa-n2 'd["content"] == d["choices"][0]["message"]["content"]')" True
expect_eq "oa-tools: no choices field for n = 1" "$(r oa-tools '"choices" in d')" False
expect_eq "an-n2: failed" "$(r an-n2 'd["status"]')" failed
expect_contains "an-n2: the error names the field" "$(r an-n2 'd["error"]')" '"n": 2 cannot be carried'
expect_eq "an-n2: nothing was sent" "$(r an-n2 'd["attempts"]')" 0
expect_eq "skip-n2: the anthropic model is skipped, the openai one answers" \
    "$(r skip-n2 'd["status"] + " " + d["model_used"] + " " + str(len(d["choices"]))')" "ok gpt-t 2"
expect_contains "skip-n2: the skip is an event" "$(cat "$TMP/err")" 'skips claude-then-gpt'
for id in oa-result an-result; do
    expect_contains "$id: the tool result reached the model" "$(r $id 'd["content"]')" 'rain all week'
    expect_eq "$id: finish_reason stop" "$(r $id 'd["finish_reason"]')" stop
done

# Costs: the mock reports cached = floor(prompt * ratio) tokens.
check_cost() {   # id in cached_in write out
    python3 - "$TMP/out.jsonl" "$@" <<'PY'
import json, sys
path, jid, pin, pcached, pwrite, pout = sys.argv[1:]
d = next(json.loads(l) for l in open(path) if json.loads(l)["id"] == jid)
p, c, w, o = d["prompt_tokens"], d.get("cached_tokens", 0), d.get("cache_write_tokens", 0), d["completion_tokens"]
want = ((p - c - w) * float(pin) + c * float(pcached) + w * float(pwrite) + o * float(pout)) / 1e6
print("ok" if abs(d["cost_usd"] - want) < 1e-9 and c > 0 else "got %r want %r (p=%d c=%d w=%d o=%d)" %
      (d["cost_usd"], want, p, c, w, o))
PY
}
prompt=$(r cached-oa 'd["prompt_tokens"]')
expect_eq "cached-oa: cached_tokens is half the prompt" "$(r cached-oa 'd["cached_tokens"]')" "$((prompt / 2))"
expect_eq "cached-oa: cost prices cached input apart" "$(check_cost cached-oa 2 0.5 2 8)" ok
prompt=$(r cached-an 'd["prompt_tokens"]')
expect_eq "cached-an: prompt counts cache reads and writes" \
    "$(r cached-an 'd["cached_tokens"] + d["cache_write_tokens"]')" "$(( prompt * 4 / 10 + prompt * 2 / 10 ))"
expect_eq "cached-an: cost prices cache reads and writes apart" "$(check_cost cached-an 3 0.3 3.75 15)" ok
cost=$(python3 -c 'import json,sys; print(round(sum(json.loads(l)["cost_usd"] for l in open(sys.argv[1])), 9))' \
       "$TMP/out.jsonl")
expect_eq "summary: spend is the sum of the result lines" "$(json_get "$TMP/sum.json" 'round(d["cost_usd"], 9)')" "$cost"

out=$("$QT_BIN" check -c "$TMP/cfg.json" 2>&1)
expect_contains "check: prints the cached input price" "$out" '$0.500 cached input'
expect_contains "check: prints the cache write price" "$out" '$3.750 cache write'

# max_completion_tokens is reserved like max_tokens (the larger of both).
cat > "$TMP/budget.json" <<JSON
{"workers": 2, "providers": {"oa": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"pricey": {"providers": ["oa"], "input_usd_per_mtok": 1, "output_usd_per_mtok": 1000,
                       "default_max_tokens": 10}},
 "budget": {"run_usd": 1.0, "on_exhausted": "reject"}}
JSON
cat > "$TMP/budget.jsonl" <<'J'
{"id": "small", "model": "pricey", "messages": [{"role": "user", "content": "hi"}]}
{"id": "mct", "model": "pricey", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 2000}
{"id": "both", "model": "pricey", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "max_completion_tokens": 2000}
J
"$QT_BIN" run -c "$TMP/budget.json" --headless -o "$TMP/budget.out" "$TMP/budget.jsonl" 2>/dev/null
b() { grep "\"id\":\"$1\"" "$TMP/budget.out" | json_get - 'd["status"]'; }
expect_eq "reserve: a job within budget runs" "$(b small)" ok
expect_eq "reserve: max_completion_tokens 2000 x \$1000/Mtok is refused by a \$1 budget" "$(b mct)" rejected
expect_eq "reserve: the larger of max_tokens and max_completion_tokens counts" "$(b both)" rejected

# Cached tokens are counted apart: in the summary (total and per model) and,
# for serve, on /metrics, as the client's usage reported them.
expect_eq "summary: cached_tokens per model as the result line" \
    "$(json_get "$TMP/sum.json" 'd["models"]["cachey"]["cached_tokens"]')" "$(r cached-oa 'd["cached_tokens"]')"
expect_eq "summary: cache_write_tokens per model as the result line" \
    "$(json_get "$TMP/sum.json" 'd["models"]["claudec"]["cache_write_tokens"]')" "$(r cached-an 'd["cache_write_tokens"]')"
expect_eq "summary: cached_tokens in total" "$(json_get "$TMP/sum.json" 'd["cached_tokens"]')" \
    "$(( $(r cached-oa 'd["cached_tokens"]') + $(r cached-an 'd["cached_tokens"]') ))"
SERVE_PORT=$(free_port)
python3 - "$TMP/cfg.json" "$SERVE_PORT" "$TMP/state" > "$TMP/serve.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["proxy"] = {"listen": "127.0.0.1:" + sys.argv[2]}; c["state_dir"] = sys.argv[3]
print(json.dumps(c))
PY
bg "$QT_BIN" serve -c "$TMP/serve.json" --headless 2>"$TMP/serve.log"
SERVE_PID=$BG_PID
wait_port "$SERVE_PORT" 10 || fail "serve starts" "$(cat "$TMP/serve.log")"
big=$(python3 -c 'import json; print(json.dumps({"model": "claudec", "max_tokens": 10, "messages": [
    {"role": "system", "content": "You are a careful assistant. " * 40}, {"role": "user", "content": "hi"}]}))')
got_read=0 got_write=0
for m in cachey claudec; do
    body=${big/claudec/$m}
    u=$(curl -s "http://127.0.0.1:$SERVE_PORT/v1/chat/completions" -H 'Content-Type: application/json' -d "$body" \
        | json_get - '"%d %d" % (d["usage"]["prompt_tokens_details"]["cached_tokens"], d["usage"].get("cache_creation_input_tokens", 0))')
    eval "read_$m=${u% *} write_$m=${u#* }"
done
curl -s "http://127.0.0.1:$SERVE_PORT/metrics" > "$TMP/metrics.txt"
pc() { sed -n "s/^quotatop_prompt_cache_tokens_total{model=\"$1\",kind=\"$2\"} //p" "$TMP/metrics.txt"; }
expect_ge "serve: the client saw cached tokens" "$read_cachey" 1
expect_eq "/metrics: prompt cache reads of an openai-kind model as the client's usage" "$(pc cachey read)" "$read_cachey"
expect_eq "/metrics: prompt cache reads of an anthropic-kind model" "$(pc claudec read)" "$read_claudec"
expect_eq "/metrics: prompt cache writes of an anthropic-kind model" "$(pc claudec write)" "$write_claudec"
expect_ge "/metrics: ... which are not zero" "$write_claudec" 1
kill -TERM "$SERVE_PID"; wait "$SERVE_PID"
