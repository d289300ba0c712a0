#!/usr/bin/env bash
# test_proxy_hostile.sh: `serve` in front of a scripted, misbehaving upstream
# (hostile_upstream.py; issue 12): streams that fail before the first byte
# are retried and fall back, an echoed API key never reaches the client, and
# backpressure estimates the wait over the whole fallback chain. About 10 s.
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)

start_hostile() {
    local port
    port=$(free_port)
    printf '%s' "$1" > "$TMP/script.$port.json"
    bg python3 "$here/hostile_upstream.py" "$port" "$TMP/script.$port.json"
    H_URL="http://127.0.0.1:$port"
    wait_port "$port" 10 || { fail "start_hostile" "no listener on $port"; exit 1; }
}
hstat() { curl -s "$H_URL/stats" | json_get - "$1"; }
start_serve() {
    SERVE_PORT=$(free_port)
    bg "$QT_BIN" serve -c "$1" --listen "127.0.0.1:$SERVE_PORT" --headless 2>>"$TMP/serve.log"
    SERVE_URL="http://127.0.0.1:$SERVE_PORT"
    wait_port "$SERVE_PORT" 10 || { fail "start_serve" "serve did not listen"; cat "$TMP/serve.log"; exit 1; }
}
# post MODEL STREAM: sets CODE and BODY
post() {
    CODE=$(curl -s -m 20 -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "{\"model\":\"$1\",\"stream\":$2,\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
        "$SERVE_URL/v1/chat/completions")
    BODY=$(cat "$TMP/body")
}

export QT_HOSTILE_KEY="sk-test-SECRET-$RANDOM$RANDOM-key"
GOOD='["data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"fallback says hi\"}}]}\n\n", "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n", "data: [DONE]\n\n"]'
LONG=$(python3 -c 'print("x" * 5000000)')
start_hostile "{
  \"empty\":   [{\"sse\": []}],
  \"garbage\": [{\"sse\": [\"data: {not json\\n\\n\"]}],
  \"plain\":   [{\"sse\": [\"{\\\"id\\\": \\\"x\\\", \\\"choices\\\": []}\"]}],
  \"stall\":   [{\"sse\": [\": just a comment\\n\\n\"], \"delay_ms\": 0}],
  \"good\":    [{\"sse\": $GOOD, \"sse_only_when_asked\": true}],
  \"echo\":    [{\"status\": 500, \"body\": \"server error; key $QT_HOSTILE_KEY rejected\"}],
  \"held\":    [{\"status\": 429, \"headers\": {\"retry-after\": \"60\"}, \"body\": {\"error\": {\"message\": \"slow down\", \"type\": \"requests\"}}}]
}"
printf '%s' "$LONG" > /dev/null
cat > "$TMP/cfg.json" <<JSON
{"workers": 4,
 "providers": {"h": {"kind": "openai", "base_url": "$H_URL/v1", "api_key_env": "QT_HOSTILE_KEY", "timeout_ms": 3000}},
 "models": {"empty": {"providers": ["h"], "fallback": ["good"]},
            "garbage": {"providers": ["h"], "fallback": ["good"]},
            "plain": {"providers": ["h"], "fallback": ["good"]},
            "stall": {"providers": ["h"], "fallback": ["good"]},
            "good": {"providers": ["h"]},
            "echo": {"providers": ["h"]},
            "held": {"providers": ["h"], "fallback": ["good"]}},
 "retry": {"max_attempts": 2, "base_ms": 20, "cap_ms": 50},
 "circuit": {"failure_threshold": 1000},
 "state_dir": "",
 "proxy": {"max_wait_ms": 5000}}
JSON
start_serve "$TMP/cfg.json"

# --- defect 3: nothing reached the client yet: retry, then the fallback
for m in empty garbage plain; do
    post "$m" true
    expect_eq "stream $m before the first byte: 200 from the fallback" "$CODE" 200
    expect_contains "stream $m: the fallback's answer" "$BODY" "fallback says hi"
    expect_eq "stream $m: retried once on the primary" "$(hstat "d[\"$m\"][\"requests\"]")" 2
done

# --- defect 4: an upstream error that quotes the key: the 502 body does not
post echo false
expect_eq "echoed key: 502" "$CODE" 502
expect_not_contains "echoed key: not in the 502 body" "$BODY" "$QT_HOSTILE_KEY"
expect_contains "echoed key: redacted in the 502 body" "$BODY" "key [redacted] rejected"

# --- defect 6: after a 429 Retry-After 60 on the primary, the fallback is free
post held false
expect_eq "backpressure: the first request is answered (fallback)" "$CODE" 200
for i in 1 2 3; do
    post held false
    expect_eq "backpressure over the chain: request $i accepted, not 429" "$CODE" 200
done
expect_eq "backpressure: the held primary saw one request" "$(hstat 'd["held"]["requests"]')" 1
