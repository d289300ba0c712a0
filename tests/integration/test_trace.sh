#!/usr/bin/env bash
# test_trace.sh: `run` and `serve` append the request trace that `replay`
# reads: a header naming the config, then one line per job with its sizes
# and outcome, never the prompt text; "trace": false writes none.
source "$(dirname "$0")/lib.sh"

start_mock --model gpt-x:latency=20 || exit 1

# config FILE STATE_DIR TRACE_JSON
config() {
    cat > "$1" <<JSON
{"workers": 4, "state_dir": "$2", ${3:-}
 "providers": {"oa": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"gpt-x": {"providers": ["oa"], "input_usd_per_mtok": 1, "output_usd_per_mtok": 2}}}
JSON
}

config "$TMP/on.json" "$TMP/st1"
{ gen_jobs 6 gpt-x 16 support a 80; gen_jobs 3 gpt-x 8 nightly b 40; } > "$TMP/jobs.jsonl"
sed -i 's/"content": "job /"content": "SECRETPROMPT job /' "$TMP/jobs.jsonl"
"$QT_BIN" run -c "$TMP/on.json" --headless -o "$TMP/out.jsonl" "$TMP/jobs.jsonl" 2>"$TMP/run.err"
expect_eq "run: exit 0" "$?" 0
T="$TMP/st1/trace.jsonl"
check "run: trace.jsonl in state_dir" test -f "$T"
expect_eq "run: a header and one line per job" "$(wc -l < "$T")" 10
expect_eq "header: names the config by absolute path" \
    "$(head -1 "$T" | json_get - 'd["config"]')" "$(realpath "$TMP/on.json")"
expect_eq "header: has a 16-digit hash of the config" "$(head -1 "$T" | json_get - 'len(d["config_fnv1a"])')" 16
expect_eq "header: carries the models' prices" \
    "$(head -1 "$T" | json_get - 'd["models"]["gpt-x"]["output_usd_per_mtok"]')" 2
expect_not_contains "no prompt text in the trace" "$(cat "$T")" "SECRETPROMPT"
expect_not_contains "no answer text in the trace" "$(cat "$T")" "simulated"
expect_eq "lines: workflows as run" \
    "$(sed 1d "$T" | python3 -c 'import json,sys; print(sorted({json.loads(l)["wf"] for l in sys.stdin}))')" \
    "['nightly', 'support']"
expect_eq "lines: ok with the tokens and cost of the results" \
    "$(sed 1d "$T" | python3 -c 'import json,sys; L=[json.loads(l) for l in sys.stdin]; print(sum(l["status"]=="ok" for l in L), round(sum(l["cost_usd"] for l in L),9))')" \
    "$(python3 -c 'import json,sys; L=[json.loads(l) for l in open(sys.argv[1])]; print(sum(l["status"]=="ok" for l in L), round(sum(l["cost_usd"] for l in L),9))' "$TMP/out.jsonl")"
expect_eq "lines: prompt characters (80 + the 13 of SECRETPROMPT) and max_tokens of the job" \
    "$(grep '"id":"a0"' "$T" | json_get - '(d["chars"], d["max_tokens"], d["msgs"])')" "(93, 16, 1)"
expect_eq "lines: arrival before completion" \
    "$(sed 1d "$T" | python3 -c 'import json,sys; print(all(json.loads(l)["t"] <= json.loads(l)["done_ms"] for l in sys.stdin))')" True

expect_eq "attempts: when each was sent (at_ms) and ended by the result" \
    "$(sed 1d "$T" | python3 -c 'import json,sys
L=[json.loads(l) for l in sys.stdin]
print(all(a["at_ms"] >= 0 and l["t"] + a["at_ms"] + a["total_ms"] <= l["done_ms"] + 5 for l in L for a in l["attempts"]))')" True
expect_eq "attempts: time to first byte of a plain answer, within its total" \
    "$(sed 1d "$T" | python3 -c 'import json,sys
L=[json.loads(l) for l in sys.stdin]
print(all(0 < a["ttfb_ms"] <= a["total_ms"] for l in L for a in l["attempts"]))')" True
"$QT_BIN" run -c "$TMP/on.json" --headless -o "$TMP/out2.jsonl" "$TMP/jobs.jsonl" 2>>"$TMP/run.err"
expect_eq "second run: appends a header and its jobs" "$(grep -c quotatop_trace "$T") $(wc -l < "$T")" "2 20"

config "$TMP/off.json" "$TMP/st2" '"trace": false,'
"$QT_BIN" run -c "$TMP/off.json" --headless -o "$TMP/out3.jsonl" "$TMP/jobs.jsonl" 2>"$TMP/off.err"
expect_eq "trace false: run ok" "$?" 0
check "trace false: no trace written" test ! -e "$TMP/st2/trace.jsonl"

# serve: one line per proxied request
config "$TMP/srv.json" "$TMP/st3"
PORT=$(free_port)
bg "$QT_BIN" serve -c "$TMP/srv.json" --listen "127.0.0.1:$PORT" --headless 2>"$TMP/serve.err"
SPID=$BG_PID
wait_port "$PORT" 10 || fail "serve" "did not listen"
for i in 1 2 3; do
    curl -s -o /dev/null -H 'X-Quotatop-Workflow: agents' -H 'Content-Type: application/json' \
        -d '{"model": "gpt-x", "max_tokens": 8, "messages": [{"role": "user", "content": "SECRETPROMPT hi"}]}' \
        "http://127.0.0.1:$PORT/v1/chat/completions"
done
kill "$SPID"; wait "$SPID" 2>/dev/null
expect_eq "serve: a header and one line per request" "$(wc -l < "$TMP/st3/trace.jsonl" 2>/dev/null)" 4
expect_eq "serve: header says serve" "$(head -1 "$TMP/st3/trace.jsonl" | json_get - 'd["command"]')" serve
expect_eq "serve: the workflow header is recorded" "$(sed -n 2p "$TMP/st3/trace.jsonl" | json_get - 'd["wf"]')" agents
expect_not_contains "serve: no prompt text" "$(cat "$TMP/st3/trace.jsonl")" "SECRETPROMPT"
