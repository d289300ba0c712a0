#!/usr/bin/env bash
# test_proxy_sdk.sh: clients nobody here wrote, against `quotatop serve` in
# front of `quotatop mock`: the official `openai` npm package (plain and
# streamed completions, quotatop's headers, fallback, errors as the SDK's
# exception types, tool calls plain and streamed on both kinds and across
# fallbacks, n: 2, tool-result round trips, the 400 for what cannot cross
# (sdk_tools.mjs), 50 concurrent clients paced under a per-second-enforced
# limit with zero upstream 429s) and a Prometheus text-format parser from
# npm over /metrics (plus `promtool check metrics` when installed).
# The npm packages are installed on first use into tests/integration/.npm/
# (ignored by git). About 20 s after the first install.
source "$(dirname "$0")/lib.sh"
PY=$(python3 -c 'import sys; print(sys.executable)')
python3() { "$PY" "$@"; }

npm_clients sdk || exit 0
check "sdk: openai package installed" test -f "$NPM_DIR/node_modules/openai/package.json"

export QT_UP_KEY="sk-upstream-$RANDOM$RANDOM"
export QT_PX_TOKEN="px-token-$RANDOM$RANDOM"
# paced: the mock enforces 600 RPM as a bucket of 10 refilled every second.
start_mock --latency-ms 3 --require-key-env QT_UP_KEY --model broken:fail=1 --model primary:outage=0-100000 \
    --model paced:rpm=600 --model claude-down:outage=0-100000 || exit 1
SERVE_PORT=$(free_port)
cat > "$TMP/cfg.json" <<JSON
{
  "workers": 8,
  "providers": {
    "oa": {"kind": "openai", "base_url": "$MOCK_URL/v1", "api_key_env": "QT_UP_KEY"},
    "an": {"kind": "anthropic", "base_url": "$MOCK_URL/v1", "api_key_env": "QT_UP_KEY"}
  },
  "models": {
    "gpt-4o":  {"providers": ["oa"], "input_usd_per_mtok": 2.5, "output_usd_per_mtok": 10},
    "claude":  {"providers": ["an"], "input_usd_per_mtok": 3, "output_usd_per_mtok": 15},
    "primary": {"providers": ["oa"], "fallback": ["claude"]},
    "claude-first": {"providers": ["an"], "upstream_model": "claude-down", "fallback": ["gpt-4o"]},
    "broken":  {"providers": ["oa"]},
    "slow":    {"providers": ["oa"], "rpm": 1},
    "paced":   {"providers": ["oa"], "rpm": 600, "input_usd_per_mtok": 1, "output_usd_per_mtok": 1}
  },
  "limits": {"headroom": 0.9},
  "retry": {"max_attempts": 2, "base_ms": 10, "cap_ms": 50},
  "circuit": {"failure_threshold": 1000},
  "budget": {"workflows": {"capped": 0.0000001}},
  "state_dir": "$TMP/state",
  "proxy": {"listen": "127.0.0.1:$SERVE_PORT", "token_env": "QT_PX_TOKEN", "max_wait_ms": 20000}
}
JSON
bg "$QT_BIN" serve -c "$TMP/cfg.json" --headless 2>"$TMP/serve.log"
SERVE_PID=$BG_PID
wait_port "$SERVE_PORT" 10 || { fail "sdk: serve starts" "$(cat "$TMP/serve.log")"; exit 1; }
export QT_BASE_URL="http://127.0.0.1:$SERVE_PORT/v1" QT_TOKEN=$QT_PX_TOKEN

# ---- the SDK, one call at a time
(cd "$NPM_DIR" && timeout 90 node sdk_basic.mjs) | tee "$TMP/basic.out"
expect_ge "sdk: the basic script reported" "$(grep -c '^PASS' "$TMP/basic.out")" 28

# ---- agents' traffic: tools, n, tool results, fallbacks across kinds, the 400
(cd "$NPM_DIR" && timeout 120 node sdk_tools.mjs) | tee "$TMP/tools.out"
expect_ge "sdk: the tools script reported" "$(grep -c '^PASS' "$TMP/tools.out")" 60
expect_eq "sdk: the tools script failed nothing" "$(grep -c '^FAIL' "$TMP/tools.out")" 0

# ---- 50 concurrent clients under a per-second-enforced limit
n0=$(mock_stat 'd["models"].get("paced", {}).get("requests", 0)')
out=$(cd "$NPM_DIR" && QT_MODEL=paced QT_CLIENTS=50 timeout 90 node sdk_concurrent.mjs)
echo "$out"
expect_eq "sdk: 50 concurrent clients all answered" "$(echo "$out" | json_get - 'd["ok"]')" 50
expect_eq "sdk: ... none failed" "$(echo "$out" | json_get - 'd["failed"]')" 0
expect_eq "sdk: mock got the 50 requests" "$(mock_stat 'd["models"]["paced"]["requests"]')" "$((n0 + 50))"
expect_eq "sdk: zero upstream 429s" "$(mock_stat 'd["models"]["paced"]["rate_limited"]')" 0
expect_le "sdk: at most 10 requests in any second at the mock" "$(mock_stat 'd["models"]["paced"]["max_1s"]')" 10
# 50 requests at 9/s (600 RPM x headroom 0.9) cannot take less than ~4.4 s.
expect_ge "sdk: paced, not burst (elapsed ms)" "$(echo "$out" | json_get - 'd["elapsed_ms"]')" 3500

# ---- /metrics through real parsers
curl -s -o /dev/null -H "Authorization: Bearer $QT_TOKEN" -H 'X-Quotatop-Workflow: odd"wf"\here' \
    "$QT_BASE_URL/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
curl -s -H "Authorization: Bearer $QT_TOKEN" "http://127.0.0.1:$SERVE_PORT/metrics" > "$TMP/metrics.txt"
(cd "$NPM_DIR" && node metrics.mjs "$TMP/metrics.txt")
if command -v promtool >/dev/null; then
    if promtool check metrics < "$TMP/metrics.txt" >"$TMP/promtool" 2>&1; then pass "metrics: promtool check metrics"
    else fail "metrics: promtool check metrics" "$(head -3 "$TMP/promtool")"; fi
fi
if grep -q "$QT_UP_KEY" "$TMP/metrics.txt" "$TMP/serve.log" "$TMP/basic.out"; then
    fail "sdk: upstream key never leaves" "found"
else pass "sdk: upstream key never leaves"; fi

kill -TERM "$SERVE_PID"; wait "$SERVE_PID"
expect_eq "sdk: serve exits 0 on SIGTERM" "$?" 0
