#!/usr/bin/env bash
# test_proxy_hostile.sh: `serve` in front of a scripted, misbehaving upstream
# (hostile_upstream.py; issue 12): streams that fail before the first byte
# (empty, garbage, a plain body, an over-long line, a stall past the timeout)
# are retried and fall back, far rate-limit resets do not hold a model,
# absurd usage neither kills serve nor blocks the day budget, an echoed API
# key never reaches the client, and backpressure estimates the wait over the
# whole fallback chain. About 15 s.
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
LONG=$(python3 -c 'print("x" * 5000000)')   # one event line past the parser's 4 MiB
OKMSG='"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}]'
start_hostile "{
  \"empty\":   [{\"sse\": []}],
  \"overlong\": [{\"sse\": [\"data: $LONG\"]}],
  \"stall\":   [{\"sse\": [\": just a comment\\n\\n\"], \"sse_hang_ms\": 3000}],
  \"far200\":  [{\"headers\": {\"x-ratelimit-remaining-requests\": \"0\", \"x-ratelimit-reset-requests\": \"2000h\"}}],
  \"far429\":  [{\"status\": 429, \"headers\": {\"retry-after\": \"999999999\"}, \"body\": {\"error\": {\"message\": \"slow\", \"type\": \"requests\"}}}],
  \"huge\":    [{\"body\": {$OKMSG, \"usage\": {\"prompt_tokens\": 1e300, \"completion_tokens\": 5}}}],
  \"bill\":    [{\"body\": {$OKMSG, \"usage\": {\"prompt_tokens\": 5, \"completion_tokens\": 1e15}}}],
  \"garbage\": [{\"sse\": [\"data: {not json\\n\\n\"]}],
  \"plain\":   [{\"sse\": [\"{\\\"id\\\": \\\"x\\\", \\\"choices\\\": []}\"]}],
  \"good\":    [{\"sse\": $GOOD, \"sse_only_when_asked\": true}],
  \"echo\":    [{\"status\": 500, \"body\": \"server error; key $QT_HOSTILE_KEY rejected\"}],
  \"held\":    [{\"status\": 429, \"headers\": {\"retry-after\": \"60\"}, \"body\": {\"error\": {\"message\": \"slow down\", \"type\": \"requests\"}}}]
}"
cat > "$TMP/cfg.json" <<JSON
{"workers": 4,
 "providers": {"h": {"kind": "openai", "base_url": "$H_URL/v1", "api_key_env": "QT_HOSTILE_KEY", "timeout_ms": 3000},
               "hs": {"kind": "openai", "base_url": "$H_URL/v1", "api_key_env": "QT_HOSTILE_KEY", "timeout_ms": 600}},
 "models": {"empty": {"providers": ["h"], "fallback": ["good"]},
            "overlong": {"providers": ["h"], "fallback": ["good"]},
            "stall": {"providers": ["hs"], "fallback": ["good"]},
            "far200": {"providers": ["h"], "fallback": ["good"]},
            "far429": {"providers": ["h"], "fallback": ["good"]},
            "huge": {"providers": ["h"], "input_usd_per_mtok": 3, "output_usd_per_mtok": 3},
            "bill": {"providers": ["h"], "input_usd_per_mtok": 3, "output_usd_per_mtok": 3},
            "garbage": {"providers": ["h"], "fallback": ["good"]},
            "plain": {"providers": ["h"], "fallback": ["good"]},
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
# an event line past 4 MiB, and a stall past timeout_ms (0.6 s) before any event
for m in overlong stall; do
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

# --- defect 1: a far reset (2000 h on a 200, Retry-After 999999999 on a
# 429) holds the model at most max_retry_after_ms (default 120 s; the
# config keeps it so that "held" above stays held for its 60 s); the
# fallback answers, and no answer asks the client to wait longer
for m in far200 far429; do
    for i in 1 2 3; do
        CODE=$(curl -s -m 20 -D "$TMP/hdr" -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' \
            --data-binary "{\"model\":\"$m\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
            "$SERVE_URL/v1/chat/completions")
        expect_eq "far reset ($m) request $i: 200" "$CODE" 200
        ra=$(grep -i '^retry-after:' "$TMP/hdr" | tr -dc '0-9')
        expect_le "far reset ($m) request $i: no retry-after beyond max_retry_after_ms" "${ra:-0}" 120
    done
done

# --- defect 2: absurd usage is a malformed answer: serve survives it, bills
# nothing, and the day budget (seeded from the ledger) stays open, also
# after a restart
stop_bg() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
sed -e 's|"state_dir": ""|"state_dir": "'"$TMP"'/state"|' -e 's|"circuit"|"budget": {"day_usd": 10}, "circuit"|' \
    "$TMP/cfg.json" > "$TMP/cfg_day.json"
start_serve "$TMP/cfg_day.json"
day_pid=$BG_PID
for m in huge bill; do
    post "$m" false
    expect_contains "usage $m: an error naming the figure" "$BODY" "malformed usage"
done
check "usage: serve is still up" curl -sf -o /dev/null "$SERVE_URL/healthz"
post good false
expect_eq "usage: the day budget still admits" "$CODE" 200
stop_bg "$day_pid"
start_serve "$TMP/cfg_day.json"
post good false
expect_eq "usage: after a restart (day spend from the ledger) still admitted" "$CODE" 200
spent=$("$QT_BIN" spend -c "$TMP/cfg_day.json" --json | json_get - 'd["total"]["cost_usd"]')
expect_le "usage: the ledger holds cents, not billions" "$spent" 0.01
