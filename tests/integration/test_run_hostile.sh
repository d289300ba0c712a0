#!/usr/bin/env bash
# test_run_hostile.sh: `run` against a scripted upstream that misbehaves
# (tests/integration/hostile_upstream.py; issue 12): far rate-limit resets,
# Retry-After 0, absurd usage, error objects in a 200, keys echoed in errors.
# About 15 s.
source "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)

# start_hostile SCRIPT_JSON: sets H_URL.
start_hostile() {
    local port
    port=$(free_port)
    printf '%s' "$1" > "$TMP/script.$port.json"
    bg python3 "$here/hostile_upstream.py" "$port" "$TMP/script.$port.json"
    H_URL="http://127.0.0.1:$port"
    wait_port "$port" 10 || { fail "start_hostile" "no listener on $port"; exit 1; }
}
hstat() { curl -s "$H_URL/stats" | json_get - "$1"; }
job() { printf '{"id": "%s", "model": "%s", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}\n' "$1" "$2"; }

export QT_HOSTILE_KEY="sk-test-SECRET-$RANDOM$RANDOM-key"
FAR='{"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2000h"}'
start_hostile "{
  \"far200\": [{\"headers\": $FAR}],
  \"far429\": [{\"status\": 429, \"headers\": {\"retry-after\": \"999999999\", \"x-ratelimit-remaining-requests\": \"0\", \"x-ratelimit-reset-requests\": \"999999999\"},
               \"body\": {\"error\": {\"type\": \"rate_limit_error\", \"message\": \"slow down\"}}}],
  \"zero\": [{\"status\": 429, \"headers\": {\"retry-after\": \"0\"}, \"body\": {\"error\": {\"message\": \"again\"}}}],
  \"good\": [{}]
}"
cat > "$TMP/cfg.json" <<JSON
{"workers": 2,
 "providers": {"h": {"kind": "openai", "base_url": "$H_URL/v1", "api_key_env": "QT_HOSTILE_KEY"}},
 "models": {"far200": {"providers": ["h"], "fallback": ["good"]},
            "far429": {"providers": ["h"], "fallback": ["good"]},
            "alone200": {"providers": ["h"], "upstream_model": "far200"},
            "zero": {"providers": ["h"]},
            "good": {"providers": ["h"]}},
 "retry": {"max_attempts": 5, "base_ms": 400, "cap_ms": 2000, "max_retry_after_ms": 1500}}
JSON

# --- defect 1: a far reset (on a 200 and on a 429) must not hold a model for good
{ for i in 1 2 3 4 5 6; do job "a$i" far200; done; for i in 1 2 3 4 5 6; do job "b$i" far429; done; } > "$TMP/far.jsonl"
t0=$(date +%s.%N)
timeout 30 "$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/far.out" "$TMP/far.jsonl" 2>"$TMP/far.err"
rc=$?
t1=$(date +%s.%N)
expect_eq "far reset: run exits 0 (all answered)" "$rc" 0
expect_le "far reset: promptly (no hold beyond max_retry_after_ms)" "$(python3 -c "print($t1 - $t0)")" 8
expect_eq "far reset: 12 ok" "$(results_count "$TMP/far.out" ok)" 12
expect_ge "far reset: the fallback took the held model's jobs" "$(grep -c '"model_used":"good"' "$TMP/far.out")" 6
# without a fallback the hold ends after max_retry_after_ms (1.5 s), not 2000 h
{ job c1 alone200; job c2 alone200; job c3 alone200; } > "$TMP/alone.jsonl"
t0=$(date +%s.%N)
timeout 30 "$QT_BIN" run -c "$TMP/cfg.json" --headless --workers 1 -o "$TMP/alone.out" "$TMP/alone.jsonl" 2>"$TMP/alone.err"
rc=$?
t1=$(date +%s.%N)
expect_eq "far reset, no fallback: exit 0" "$rc" 0
expect_le "far reset, no fallback: each hold capped at 1.5 s" "$(python3 -c "print($t1 - $t0)")" 7

# --- defect 11: Retry-After: 0 is retried with the backoff floor (jittered), not at once
curl -s -X POST "$H_URL/stats/reset" >/dev/null
job z1 zero > "$TMP/zero.jsonl"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/zero.out" "$TMP/zero.jsonl" 2>/dev/null
expect_eq "retry-after 0: 5 attempts" "$(hstat 'd["zero"]["requests"]')" 5
gaps=$(hstat 'min(b - a for a, b in zip(d["zero"]["times"], d["zero"]["times"][1:]))')
expect_ge "retry-after 0: every retry waits the floor (base_ms/4 = 100 ms)" "$gaps" 0.095

# --- defects 2, 4, 12: hostile bodies
OKMSG='"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}]'
start_hostile "{
  \"huge\": [{\"body\": {$OKMSG, \"usage\": {\"prompt_tokens\": 1e300, \"completion_tokens\": 5}}}],
  \"bill\": [{\"body\": {$OKMSG, \"usage\": {\"prompt_tokens\": 5, \"completion_tokens\": 1e15}}}],
  \"neg\":  [{\"body\": {$OKMSG, \"usage\": {\"prompt_tokens\": -3, \"completion_tokens\": 5}}}],
  \"err200\": [{\"body\": {\"error\": {\"message\": \"The engine is currently overloaded\", \"type\": \"server_error\"}}}],
  \"echo\": [{\"status\": 401, \"body\": {\"error\": {\"message\": \"Incorrect API key provided: $QT_HOSTILE_KEY. You can find your key at ...\", \"type\": \"invalid_request_error\", \"code\": \"invalid_api_key\"}}}],
  \"echo500\": [{\"status\": 500, \"body\": \"internal error for key=$QT_HOSTILE_KEY\"}]
}"
cat > "$TMP/cfg2.json" <<JSON
{"workers": 4,
 "providers": {"h": {"kind": "openai", "base_url": "$H_URL/v1", "api_key_env": "QT_HOSTILE_KEY"}},
 "models": {"huge": {"providers": ["h"], "input_usd_per_mtok": 3, "output_usd_per_mtok": 3},
            "bill": {"providers": ["h"], "input_usd_per_mtok": 3, "output_usd_per_mtok": 3},
            "neg": {"providers": ["h"]}, "err200": {"providers": ["h"]},
            "echo": {"providers": ["h"]}, "echo500": {"providers": ["h"]}},
 "budget": {"run_usd": 5},
 "retry": {"max_attempts": 2, "base_ms": 20, "cap_ms": 50}}
JSON
{ job u1 huge; job u2 bill; job u3 neg; job e1 err200; job k1 echo; job k2 echo500; } > "$TMP/bodies.jsonl"
timeout 60 "$QT_BIN" run -c "$TMP/cfg2.json" --headless -o "$TMP/bodies.out" --summary "$TMP/bodies.sum" \
    "$TMP/bodies.jsonl" > "$TMP/bodies.stdout" 2>"$TMP/bodies.err"
expect_eq "absurd usage: run finishes (exit 1: jobs failed), no UB abort" "$?" 1
expect_eq "absurd usage: a result line per job" "$(wc -l < "$TMP/bodies.out")" 6
field() { grep "\"id\":\"$1\"" "$TMP/bodies.out" | json_get - "d[\"$2\"]"; }
expect_eq "1e300 tokens: failed" "$(field u1 status)" failed
expect_contains "1e300 tokens: a clear error" "$(field u1 error)" "malformed usage: usage.prompt_tokens is 1e+300"
expect_eq "1e15 tokens: failed, not billed" "$(field u2 status) $(field u2 cost_usd)" "failed 0.0"
expect_contains "1e15 tokens: a clear error" "$(field u2 error)" "usage.completion_tokens is 1e+15"
expect_contains "negative tokens: a clear error" "$(field u3 error)" "usage.prompt_tokens is -3"
expect_le "absurd usage: nothing billed in the summary" "$(json_get "$TMP/bodies.sum" 'd["cost_usd"]')" 0
expect_contains "error object in a 200: the upstream's error is quoted" "$(field e1 error)" \
    "server_error: The engine is currently overloaded"
expect_not_contains "error object in a 200: not 'choices missing'" "$(field e1 error)" "choices missing"
all_out=$(cat "$TMP/bodies.out" "$TMP/bodies.err" "$TMP/bodies.stdout" "$TMP/bodies.sum")
expect_not_contains "echoed key: never in results, summary or stderr" "$all_out" "$QT_HOSTILE_KEY"
expect_contains "echoed key: the error says it was redacted" "$(field k1 error)" "Incorrect API key provided: [redacted]"
expect_contains "echoed key (500 text): redacted" "$(field k2 error)" "key=[redacted]"

# --- defect 2 (rest): usage above what the request allowed is billed as
# reported and said; once spend passes the limit nothing more is sent, and
# the summary shows the overshoot and its cause
start_hostile "{\"over\": [{\"body\": {$OKMSG, \"usage\": {\"prompt_tokens\": 5, \"completion_tokens\": 5000000}}}]}"
cat > "$TMP/cfg3.json" <<JSON
{"workers": 1,
 "providers": {"h": {"kind": "openai", "base_url": "$H_URL/v1"}},
 "models": {"over": {"providers": ["h"], "input_usd_per_mtok": 1, "output_usd_per_mtok": 10}},
 "budget": {"run_usd": 1},
 "state_dir": ""}
JSON
for i in 1 2 3 4; do job "o$i" over; done > "$TMP/over.jsonl"
"$QT_BIN" run -c "$TMP/cfg3.json" --headless -v -o "$TMP/over.out" --summary "$TMP/over.sum" "$TMP/over.jsonl" 2>"$TMP/over.err"
expect_eq "overuse: the first answer is billed as reported" "$(results_count "$TMP/over.out" ok)" 1
expect_eq "overuse: nothing more is sent once spend passed the limit" "$(hstat 'd["over"]["requests"]')" 1
expect_eq "overuse: the rest are rejected" "$(results_count "$TMP/over.out" rejected)" 3
expect_contains "overuse: an event says so" "$(cat "$TMP/over.err")" "usage above the request"
expect_ge "overuse: the summary shows the run overshoot" "$(json_get "$TMP/over.sum" 'd["overshoot"]["run_usd"]')" 48
expect_contains "overuse: and its cause" "$(json_get "$TMP/over.sum" 'd["overshoot"]["cause"]')" \
    "over reported 5000000 completion tokens for job o1 (max_tokens 16)"
