#!/usr/bin/env bash
# test_run_faults.sh: a primary that is down opens its circuit and the rest
# goes straight to the fallback without hammering it; context windows fall
# back (known window: before sending; upstream 400: at once); random 5xx are
# retried to completion and the summary agrees with the upstream. About 15 s.
source "$(dirname "$0")/lib.sh"

start_mock --model primary:outage=0-3600 --model backup --model ctx:context=60 \
           --model flaky:fail=0.2 --model big
cat > "$TMP/cfg.json" <<JSON
{"workers": 8,
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"primary": {"providers": ["mock"], "fallback": ["backup"]},
            "backup":  {"providers": ["mock"]},
            "small":   {"providers": ["mock"], "context_window": 50, "upstream_model": "small", "fallback": ["big"]},
            "ctx":     {"providers": ["mock"], "fallback": ["big"]},
            "flaky":   {"providers": ["mock"]},
            "big":     {"providers": ["mock"]}},
 "retry": {"max_attempts": 8, "base_ms": 20, "cap_ms": 200},
 "circuit": {"failure_threshold": 3, "failure_ratio": 0.5, "window_ms": 10000, "cooldown_ms": 60000}}
JSON

# --- a primary that is down
gen_jobs 80 primary 16 > "$TMP/down.jsonl"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/down.out" --summary "$TMP/down.sum" "$TMP/down.jsonl" 2>"$TMP/down.err"
expect_eq "down: exit 0 (every job answered by the fallback)" "$?" 0
expect_eq "down: 80 ok" "$(results_count "$TMP/down.out" ok)" 80
expect_eq "down: every answer came from backup" "$(grep -c '"model_used":"backup"' "$TMP/down.out")" 80
prim=$(mock_stat 'd["models"]["primary"]["requests"]')
echo "primary saw $prim requests for 80 jobs"
expect_le "down: the dead primary is not hammered (threshold 3 + 8 in flight)" "$prim" 11
expect_ge "down: the circuit opened (a transition recorded)" "$(json_get "$TMP/down.sum" 'd["circuit_transitions"]')" 1
expect_eq "down: the summary shows the primary's circuit OPEN" "$(json_get "$TMP/down.sum" 'd["models"]["primary"]["circuit"]')" "OPEN"
expect_ge "down: fallbacks counted" "$(json_get "$TMP/down.sum" 'd["fallbacks"]')" 1

# --- context windows
python3 - > "$TMP/ctx.jsonl" <<'PY'
import json
long = "y" * 400    # ~100 prompt tokens
print(json.dumps({"id": "known", "model": "small", "messages": [{"role": "user", "content": long}], "max_tokens": 16}))
print(json.dumps({"id": "upstream", "model": "ctx", "messages": [{"role": "user", "content": long}], "max_tokens": 16}))
PY
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/ctx.out" --summary "$TMP/ctx.sum" "$TMP/ctx.jsonl" 2>"$TMP/ctx.err"
expect_eq "context: exit 0" "$?" 0
expect_eq "context: both answered by the bigger model" "$(grep -c '"model_used":"big"' "$TMP/ctx.out")" 2
expect_eq "context: a known window is not sent to the small model" \
    "$(mock_stat 'd["models"].get("small", {}).get("requests", 0)')" 0
expect_eq "context: the upstream's 400 is tried once, not retried" "$(mock_stat 'd["models"]["ctx"]["requests"]')" 1
expect_eq "context: the 400 job made 2 attempts" \
    "$(grep '"id":"upstream"' "$TMP/ctx.out" | json_get - 'd["attempts"]')" 2

# --- random 5xx retried to completion: 20% errors must not open a breaker
# that needs 10 failures and a 50% failure ratio (as resilience4j's minimum
# number of calls), so retries absorb them
sed -i 's/"failure_threshold": 3/"failure_threshold": 10/' "$TMP/cfg.json"
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
gen_jobs 100 flaky 16 > "$TMP/flaky.jsonl"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/flaky.out" --summary "$TMP/flaky.sum" "$TMP/flaky.jsonl" 2>"$TMP/flaky.err"
expect_eq "flaky: exit 0" "$?" 0
expect_eq "flaky: 100 ok" "$(results_count "$TMP/flaky.out" ok)" 100
errs=$(mock_stat 'd["models"]["flaky"]["status_5xx"]')
echo "flaky: the upstream answered $errs 5xx"
expect_ge "flaky: the upstream did fail (the test can fail)" "$errs" 8
expect_eq "flaky: every 5xx was retried" "$(json_get "$TMP/flaky.sum" 'd["retries"]')" "$errs"
expect_eq "flaky: requests agree with the upstream" \
    "$(json_get "$TMP/flaky.sum" 'd["requests"]')" "$(mock_stat 'd["models"]["flaky"]["requests"]')"
expect_eq "flaky: the circuit stayed closed" "$(json_get "$TMP/flaky.sum" 'd["models"]["flaky"]["circuit"]')" "CLOSED"

# --- jobs that wait on an open circuit are counted: a chain with no
# fallback whose only model is down holds its jobs for the probe (cooldown
# 60 s); the progress line, the attached dashboard's snapshot and the
# results on shutdown all account for them
python3 - "$TMP/cfg.json" "$TMP/lone.json" "$TMP/st" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["state_dir"] = sys.argv[3]
c["models"]["lone"] = {"providers": ["mock"], "upstream_model": "primary"}
c["retry"]["max_attempts"] = 1
json.dump(c, open(sys.argv[2], "w"))
PY
gen_jobs 50 lone 16 > "$TMP/lone.jsonl"
bg "$QT_BIN" run -c "$TMP/lone.json" --headless -o "$TMP/lone.out" "$TMP/lone.jsonl" 2>"$TMP/lone.err"
lone_pid=$BG_PID
for i in $(seq 1 60); do grep -q "OPEN probe in" "$TMP/lone.err" 2>/dev/null && break; sleep 0.1; done
sleep 1.2
line=$(grep "OPEN probe in" "$TMP/lone.err" | tail -1)
echo "lone: $line"
done_n=$(echo "$line" | sed -n 's/.*done \([0-9]*\)\/50.*/\1/p')
waiting=$(echo "$line" | sed -n 's/.* waiting \([0-9]*\) .*/\1/p')
expect_ge "lone: some jobs failed before the circuit opened" "${done_n:-0}" 1
expect_eq "lone: the progress line counts every job held for the probe as waiting" "${waiting:-}" "$((50 - ${done_n:-0}))"
expect_contains "lone: it says when the probe goes" "$line" "OPEN probe in 5"
expect_contains "lone: the queue itself is empty" "$line" "queue 0 "
snap=$("$QT_BIN" top -c "$TMP/lone.json" --json 2>&1)
expect_eq "lone: an attached dashboard's snapshot has the same count" \
    "$(echo "$snap" | json_get - 'd["snapshot"]["waiting"] + d["snapshot"]["done"]')" 50
expect_eq "lone: each of them is listed as wait-probe" \
    "$(echo "$snap" | json_get - 'sum(1 for j in d["jobs"] if j["state"] == "wait-probe")')" \
    "$(echo "$snap" | json_get - 'd["snapshot"]["waiting"]')"
kill -TERM "$lone_pid"; wait "$lone_pid" 2>/dev/null
expect_eq "lone: on shutdown every job has exactly one result" "$(unique_ids "$TMP/lone.out"):$(wc -l < "$TMP/lone.out")" "50:50"
expect_eq "lone: the waiting ones are cancelled" "$(results_count "$TMP/lone.out" cancelled)" "$((50 - ${done_n:-0}))"
