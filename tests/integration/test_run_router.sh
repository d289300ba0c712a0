#!/usr/bin/env bash
# test_run_router.sh: budget downgrade to a cheaper model of the chain,
# `@cache` answering when the whole chain is down, and weighted choice
# between the providers of one model. About 5 s.
source "$(dirname "$0")/lib.sh"

start_mock --model pricey --model cheap --model cached-m
M1=$MOCK_URL
start_mock --model cached-m
M2=$MOCK_URL
cat > "$TMP/cfg.json" <<JSON
{"workers": 8,
 "providers": {"a": {"kind": "openai", "base_url": "$M1/v1", "weight": 3},
               "b": {"kind": "openai", "base_url": "$M2/v1", "weight": 1}},
 "models": {"pricey": {"providers": ["a"], "input_usd_per_mtok": 1000, "output_usd_per_mtok": 1000,
                       "fallback": ["cheap"]},
            "cheap":  {"providers": ["a"], "input_usd_per_mtok": 1, "output_usd_per_mtok": 1},
            "cached-m": {"providers": ["a"], "fallback": ["@cache"]},
            "split":  {"providers": ["a", "b"], "upstream_model": "cached-m"}},
 "retry": {"max_attempts": 2, "base_ms": 10, "cap_ms": 20},
 "budget": {"run_usd": 0.3, "on_exhausted": "downgrade"}}
JSON

# --- downgrade: pricey until the budget no longer fits it, then cheap
gen_jobs 40 pricey 16 > "$TMP/down.jsonl"
"$QT_BIN" run -c "$TMP/cfg.json" --headless --workers 1 -o "$TMP/down.out" --summary "$TMP/down.sum" "$TMP/down.jsonl" 2>"$TMP/down.err"
expect_eq "downgrade: exit 0 (nothing rejected)" "$?" 0
expect_eq "downgrade: 40 ok" "$(results_count "$TMP/down.out" ok)" 40
npricey=$(grep -c '"model_used":"pricey"' "$TMP/down.out")
ncheap=$(grep -c '"model_used":"cheap"' "$TMP/down.out")
echo "downgrade: $npricey on pricey, $ncheap on cheap"
expect_ge "downgrade: the expensive model served while it fit" "$npricey" 5
expect_ge "downgrade: the rest went to the cheaper model" "$ncheap" 20
expect_le "downgrade: spend within the run budget" "$(json_get "$TMP/down.sum" 'd["cost_usd"]')" 0.3

# --- @cache: an answer seen before comes back when the chain is down
msg='{"model": "cached-m", "messages": [{"role": "user", "content": "what is 2+2?"}], "max_tokens": 16'
mkfifo "$TMP/pipe"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/cache.out" - < "$TMP/pipe" 2>"$TMP/cache.err" &
pid=$!
exec 7>"$TMP/pipe"
echo "$msg, \"id\": \"first\"}" >&7
for i in $(seq 1 50); do grep -q '"first"' "$TMP/cache.out" 2>/dev/null && break; sleep 0.1; done
curl -s -X POST -d '{"model": "cached-m", "start_ms": 0, "duration_ms": 60000}' "$M1/control/outage" >/dev/null
echo "$msg, \"id\": \"second\"}" >&7
exec 7>&-
wait "$pid"
expect_eq "cache: both jobs ok" "$(results_count "$TMP/cache.out" ok)" 2
second=$(grep '"second"' "$TMP/cache.out")
expect_contains "cache: the second answer is marked cached" "$second" '"cached":true'
expect_contains "cache: it carries the first answer" "$second" \
    "$(grep '"first"' "$TMP/cache.out" | json_get - 'd["content"]')"
expect_ge "cache: the model was tried first" "$(mock_stat 'd["models"]["cached-m"]["status_5xx"]' "$M1")" 1

# --- weights: 3:1 between the providers of one model
curl -s -X POST -d '{"model": "cached-m", "start_ms": 0, "duration_ms": 0}' "$M1/control/outage" >/dev/null
curl -s -X POST "$M1/stats/reset" >/dev/null; curl -s -X POST "$M2/stats/reset" >/dev/null
gen_jobs 200 split 16 > "$TMP/split.jsonl"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/split.out" "$TMP/split.jsonl" 2>"$TMP/split.err"
expect_eq "weights: exit 0" "$?" 0
na=$(mock_stat 'd["total"]["ok"]' "$M1"); nb=$(mock_stat 'd["total"]["ok"]' "$M2")
echo "weights: provider a took $na, provider b took $nb"
expect_ge "weights: the weight-3 provider takes about 3/4" "$na" 125
expect_le "weights: ... and not all" "$na" 175
expect_eq "weights: every job answered once" "$((na + nb))" 200

# --- no head-of-line blocking: urgent jobs of a slow model (1 per second)
# outnumber the workers, yet the fast model's jobs behind them flow at once
# (a free worker skips queued jobs whose model is at its limit)
start_mock
cat > "$TMP/hol.json" <<JSON
{"workers": 3,
 "providers": {"p": {"kind": "openai", "base_url": "$MOCK_URL/v1", "rpm": 100000}},
 "models": {"slow": {"providers": ["p"], "rpm": 60}, "fast": {"providers": ["p"]}}}
JSON
python3 - > "$TMP/hol.jsonl" <<'PY'
import json
for i in range(6):
    print(json.dumps({"id": "s%d" % i, "priority": 1, "model": "slow", "max_tokens": 8,
                      "messages": [{"role": "user", "content": "x"}]}))
for i in range(30):
    print(json.dumps({"id": "f%d" % i, "priority": 9, "model": "fast", "max_tokens": 8,
                      "messages": [{"role": "user", "content": "y"}]}))
PY
"$QT_BIN" run -c "$TMP/hol.json" --headless -o "$TMP/hol.out" "$TMP/hol.jsonl" 2>"$TMP/hol.err" &
pid=$!
sleep 1.5
nfast=$(grep -c '"id":"f' "$TMP/hol.out")
expect_eq "no head-of-line blocking: the fast model's jobs finish while the slow one paces" "$nfast" 30
wait "$pid"
expect_eq "no head-of-line blocking: all 36 ok" "$(results_count "$TMP/hol.out" ok)" 36
