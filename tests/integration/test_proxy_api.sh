#!/usr/bin/env bash
# test_proxy_api.sh: the API fronts beyond chat completions, driven by the
# official SDKs from npm against `quotatop serve` in front of `quotatop mock`:
# @anthropic-ai/sdk on POST /v1/messages (both provider kinds, plain and
# streamed, tools, errors, 30 concurrent clients paced under a
# per-second-enforced limit with zero upstream 429s), the openai SDK on
# /v1/responses (to both kinds: an Anthropic-kind model gets it translated,
# text and function tools, plain and streamed) and /v1/embeddings, @cache
# answers replaying tool calls (sdk_cache.mjs); then `run` with jobs of every endpoint
# and the per-endpoint counts on /metrics. npm packages as test_proxy_sdk.sh.
source "$(dirname "$0")/lib.sh"
PY=$(python3 -c 'import sys; print(sys.executable)')
python3() { "$PY" "$@"; }

npm_clients api || exit 0
check "api: @anthropic-ai/sdk installed" test -f "$NPM_DIR/node_modules/@anthropic-ai/sdk/package.json"

export QT_UP_KEY="sk-upstream-$RANDOM$RANDOM"
export QT_PX_TOKEN="px-token-$RANDOM$RANDOM"
# paced: the mock enforces 300 RPM as a bucket of 5 refilled every second.
start_mock --latency-ms 3 --require-key-env QT_UP_KEY --model paced:rpm=300 --model down:outage=0-100000 \
    --model claude-c || exit 1
SERVE_PORT=$(free_port)
cat > "$TMP/cfg.json" <<JSON
{
  "workers": 16,
  "providers": {
    "oa": {"kind": "openai", "base_url": "$MOCK_URL/v1", "api_key_env": "QT_UP_KEY"},
    "an": {"kind": "anthropic", "base_url": "$MOCK_URL/v1", "api_key_env": "QT_UP_KEY"}
  },
  "models": {
    "gpt-4o": {"providers": ["oa"], "input_usd_per_mtok": 2.5, "output_usd_per_mtok": 10},
    "claude": {"providers": ["an"], "input_usd_per_mtok": 3, "output_usd_per_mtok": 15},
    "emb":    {"providers": ["oa"], "input_usd_per_mtok": 0.02},
    "paced":  {"providers": ["an"], "rpm": 300, "input_usd_per_mtok": 1, "output_usd_per_mtok": 1},
    "gpt-down": {"providers": ["oa"], "upstream_model": "down", "fallback": ["claude"]},
    "claude-cache": {"providers": ["an"], "upstream_model": "claude-c", "fallback": ["@cache"]}
  },
  "limits": {"headroom": 0.9},
  "retry": {"max_attempts": 2, "base_ms": 10, "cap_ms": 50},
  "budget": {"workflows": {"capped": 0.0000001}},
  "state_dir": "$TMP/state",
  "proxy": {"listen": "127.0.0.1:$SERVE_PORT", "token_env": "QT_PX_TOKEN", "max_wait_ms": 30000}
}
JSON
bg "$QT_BIN" serve -c "$TMP/cfg.json" --headless 2>"$TMP/serve.log"
SERVE_PID=$BG_PID
wait_port "$SERVE_PORT" 10 || { fail "api: serve starts" "$(cat "$TMP/serve.log")"; exit 1; }
export QT_ROOT_URL="http://127.0.0.1:$SERVE_PORT" QT_BASE_URL="http://127.0.0.1:$SERVE_PORT/v1" QT_TOKEN=$QT_PX_TOKEN

(cd "$NPM_DIR" && QT_CLIENTS=30 QT_PACED=paced timeout 120 node sdk_anthropic.mjs) | tee "$TMP/anthropic.out"
expect_ge "api: the anthropic script reported" "$(grep -c '^PASS' "$TMP/anthropic.out")" 48
expect_eq "api: the anthropic script failed nothing" "$(grep -c '^FAIL' "$TMP/anthropic.out")" 0
expect_eq "api: 30 paced clients reached the mock" "$(mock_stat 'd["models"]["paced"]["requests"]')" 30
expect_eq "api: ... with zero upstream 429s" "$(mock_stat 'd["models"]["paced"]["rate_limited"]')" 0

(cd "$NPM_DIR" && timeout 90 node sdk_responses.mjs) | tee "$TMP/responses.out"
expect_ge "api: the responses script reported" "$(grep -c '^PASS' "$TMP/responses.out")" 26
expect_eq "api: the responses script failed nothing" "$(grep -c '^FAIL' "$TMP/responses.out")" 0

(cd "$NPM_DIR" && QT_MOCK_URL=$MOCK_URL timeout 90 node sdk_cache.mjs) | tee "$TMP/cache.out"
expect_ge "api: the cache script reported" "$(grep -c '^PASS' "$TMP/cache.out")" 10
expect_eq "api: the cache script failed nothing" "$(grep -c '^FAIL' "$TMP/cache.out")" 0

# ---- per-endpoint counts on /metrics
curl -s -H "Authorization: Bearer $QT_TOKEN" "$QT_ROOT_URL/metrics" > "$TMP/metrics.txt"
count_of() { sed -n "s/^quotatop_proxy_requests_total{endpoint=\"$1\"} //p" "$TMP/metrics.txt"; }
expect_ge "api: /metrics counts messages requests" "$(count_of messages)" 40
expect_ge "api: /metrics counts responses requests" "$(count_of responses)" 5
expect_ge "api: /metrics counts embeddings requests" "$(count_of embeddings)" 2
if grep -q "$QT_UP_KEY" "$TMP/metrics.txt" "$TMP/serve.log" "$TMP/anthropic.out" "$TMP/responses.out"; then
    fail "api: upstream key never leaves" "found"
else pass "api: upstream key never leaves"; fi
kill -TERM "$SERVE_PID"; wait "$SERVE_PID"
expect_eq "api: serve exits 0 on SIGTERM" "$?" 0

# ---- run: a job of every endpoint, and the ledger prices embeddings as input
cat > "$TMP/jobs.jsonl" <<'JOBS'
{"id":"chat","model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}
{"id":"msg-an","endpoint":"messages","model":"claude","max_tokens":40,"system":"brief","messages":[{"role":"user","content":"hi"}]}
{"id":"msg-oa","endpoint":"messages","model":"gpt-4o","max_tokens":40,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],"tool_choice":{"type":"any"}}
{"id":"resp","endpoint":"responses","model":"gpt-4o","input":"hello"}
{"id":"emb","endpoint":"embeddings","model":"emb","input":["abcd","efgh"],"dimensions":4}
{"id":"emb-an","endpoint":"embeddings","model":"claude","input":"x"}
{"id":"resp-an","endpoint":"responses","model":"claude","input":"weather in Rome?","tool_choice":"required","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}
{"id":"resp-an-text","endpoint":"responses","model":"claude","instructions":"be brief","input":[{"role":"user","content":[{"type":"input_text","text":"hello"}]}],"max_output_tokens":30}
{"id":"resp-an-prev","endpoint":"responses","model":"claude","input":"and then?","previous_response_id":"resp_abc"}
JOBS
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/res.jsonl" "$TMP/jobs.jsonl" 2>"$TMP/run.log"
expect_eq "api run: exit 1 (one job cannot be carried)" "$?" 1
field() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l)
    if d["id"]==sys.argv[2]: print(eval(sys.argv[3]))' "$TMP/res.jsonl" "$1" "$2"; }
expect_eq "api run: messages to anthropic ok" "$(field msg-an 'd["status"]')" ok
expect_eq "api run: ... says its endpoint" "$(field msg-an 'd["endpoint"]')" messages
expect_eq "api run: messages to openai-kind: a tool call" "$(field msg-oa 'd["tool_calls"][0]["function"]["name"]')" get_weather
expect_eq "api run: responses: response_id" "$(field resp 'd["response_id"][:5]')" resp_
expect_eq "api run: responses: content" "$(field resp '"simulated" in d["content"]')" True
expect_eq "api run: embeddings: one vector per input" "$(field emb 'len(d["embeddings"])')" 2
expect_eq "api run: embeddings: no completion tokens" "$(field emb 'd["completion_tokens"]')" 0
expect_eq "api run: embeddings: priced as input" "$(field emb 'round(d["cost_usd"]*1e9)')" "$(field emb 'round(d["prompt_tokens"]*20)')"
expect_eq "api run: responses to anthropic-kind: a function call" \
    "$(field resp-an 'd["status"]+" "+d["finish_reason"]+" "+d["tool_calls"][0]["function"]["name"]')" "ok tool_calls get_weather"
expect_eq "api run: ... no response_id (no state at an OpenAI upstream)" "$(field resp-an '"response_id" in d')" False
expect_eq "api run: responses to anthropic-kind: text" "$(field resp-an-text 'd["status"]+" "+str("simulated" in d["content"])')" "ok True"
expect_eq "api run: responses with previous_response_id to anthropic-kind: failed, not sent" \
    "$(field resp-an-prev 'd["status"]+"/"+str(d["attempts"])')" failed/0
expect_contains "api run: ... naming the field" "$(field resp-an-prev 'd["error"]')" '"previous_response_id" cannot be carried'
expect_eq "api run: embeddings to anthropic-kind: failed, not retried" "$(field emb-an 'd["status"]+"/"+str(d["attempts"])')" failed/0
expect_eq "api run: ... with the reason" "$(field emb-an '"openai-kind models only" in d["error"]')" True

# ---- the dashboard counts jobs by endpoint
use_tmux
tm new-session -d -s api -x 200 -y 40 "$QT_BIN run -c $TMP/cfg.json --stay -o $TMP/res2.jsonl $TMP/jobs.jsonl; sleep 5"
if wait_for api "chat 1 msg 2 resp 4 emb 2" 15; then pass "api dashboard: jobs by endpoint in the header"
else fail "api dashboard: jobs by endpoint in the header" "$(cap api | head -3)"; fi
tm send-keys -t api q
