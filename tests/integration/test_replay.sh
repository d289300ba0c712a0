#!/usr/bin/env bash
# test_replay.sh: record a real `run` against the mock, then replay it in
# virtual time through the real engine:
# - with its own config (fidelity): ok count exact, makespan and spend
#   within 5% of the recording;
# - with the limits halved: the makespan roughly doubles, no 429s;
# - with a tight budget: the rejections match a real run with that budget;
# - recorded with an outage of the primary model, replayed with the
#   fallback chain reordered: the fallbacks land on the new first fallback;
# and the command's refusals (no trace, bad flags) exit 2.
source "$(dirname "$0")/lib.sh"

start_mock --model gpt-x:rpm=1200,latency=150,jitter=100 --model gpt-y:latency=80 \
    --model gpt-z:latency=300 --model gpt-l:rpm=300,latency=100 || exit 1

# config FILE STATE_DIR RPM [EXTRA_TOP_JSON] [CHAIN_JSON]
config() {
    cat > "$1" <<JSON
{"workers": 16, "state_dir": "$2", ${4:-}
 "providers": {"oa": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"gpt-x": {"providers": ["oa"], "rpm": $3, "input_usd_per_mtok": 1000,
                      "output_usd_per_mtok": 1000, "fallback": ${5:-[\"gpt-y\", \"gpt-z\"]}},
            "gpt-y": {"providers": ["oa"], "input_usd_per_mtok": 500, "output_usd_per_mtok": 500},
            "gpt-z": {"providers": ["oa"], "input_usd_per_mtok": 2000, "output_usd_per_mtok": 2000}},
 "retry": {"max_attempts": 3, "base_ms": 100, "cap_ms": 1000},
 "circuit": {"failure_threshold": 3, "cooldown_ms": 1000}}
JSON
}

# jobs N: N gpt-x jobs, two workflows, priorities 3 and 7, various sizes.
jobs() {
    python3 - "$1" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"id": "j%d" % i, "workflow": "support" if i % 3 else "nightly",
                      "priority": 3 if i % 2 else 7, "model": "gpt-x",
                      "messages": [{"role": "user", "content": "q%d " % i + "x" * (40 + 7 * (i % 13))}],
                      "max_tokens": 24 + i % 40}))
PY
}

# field FILE EXPR: a python expression on the replay JSON `d`.
field() { json_get "$1" "$2"; }

# within NAME A B PCT: A within PCT% of B.
within() {
    if awk -v a="$2" -v b="$3" -v p="$4" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(b>0 && d <= b*p/100)}'; then
        pass "$1"; else fail "$1" "$2 is not within $4% of $3"; fi
}

jobs 120 > "$TMP/jobs.jsonl"
config "$TMP/rec.json" "$TMP/st" 1200
"$QT_BIN" run -c "$TMP/rec.json" --headless -o "$TMP/rec.out" --summary "$TMP/rec.sum" "$TMP/jobs.jsonl" 2>"$TMP/rec.err"
expect_eq "record: the run exits 0" "$?" 0
T="$TMP/st/trace.jsonl"
check "record: the run wrote its trace" test -s "$T"
rec_ok=$(json_get "$TMP/rec.sum" 'd["ok"]')
rec_cost=$(json_get "$TMP/rec.sum" 'd["cost_usd"]')

# ---- refusals
"$QT_BIN" replay --trace "$TMP/nope.jsonl" -c "$TMP/rec.json" >/dev/null 2>"$TMP/e"
expect_eq "refuse: a missing trace exits 2" "$?" 2
expect_contains "refuse: says it cannot read it" "$(cat "$TMP/e")" "cannot read"
"$QT_BIN" replay --speed 2 -c "$TMP/rec.json" >/dev/null 2>&1
expect_eq "refuse: --speed other than max exits 2" "$?" 2
"$QT_BIN" replay --bogus >/dev/null 2>&1
expect_eq "refuse: an unknown flag exits 2" "$?" 2

# ---- fidelity: the recording's own config, trace found in its state_dir
t0=$(date +%s.%N)
"$QT_BIN" replay -c "$TMP/rec.json" --json > "$TMP/same.json" 2>"$TMP/same.err"
rc=$?
t1=$(date +%s.%N)
expect_eq "fidelity: replay exits 0" "$rc" 0
expect_eq "fidelity: one entry per -c" "$(field "$TMP/same.json" 'len(d["configs"])')" 1
expect_eq "fidelity: the recorded column is the run's" "$(field "$TMP/same.json" 'd["recorded"]["ok"]')" "$rec_ok"
expect_eq "fidelity: ok count exact" "$(field "$TMP/same.json" 'd["configs"][0]["ok"]')" "$rec_ok"
within "fidelity: makespan within 5% of the recording" \
    "$(field "$TMP/same.json" 'd["configs"][0]["elapsed_s"]')" "$(field "$TMP/same.json" 'd["recorded"]["elapsed_s"]')" 5
within "fidelity: spend within 5% of the recording" \
    "$(field "$TMP/same.json" 'd["configs"][0]["cost_usd"]')" "$rec_cost" 5
expect_eq "fidelity: per-workflow jobs" \
    "$(field "$TMP/same.json" 'sorted((k, v["jobs"]) for k, v in d["configs"][0]["workflows"].items())')" \
    "[('nightly', 40), ('support', 80)]"
echo "INFO fidelity: recorded $(field "$TMP/same.json" 'd["recorded"]["elapsed_s"]') s / \$$rec_cost / $rec_ok ok; replayed $(field "$TMP/same.json" 'd["configs"][0]["elapsed_s"]') s / \$$(field "$TMP/same.json" 'd["configs"][0]["cost_usd"]') / $(field "$TMP/same.json" 'd["configs"][0]["ok"]') ok in $(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}') s of wall time"
expect_le "virtual time: the replay takes under 2 s of wall time" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" 2

# ---- limits halved: twice as long, never a 429
config "$TMP/half.json" "$TMP/st" 600
"$QT_BIN" replay --trace "$T" -c "$TMP/rec.json" -c "$TMP/half.json" --json > "$TMP/half.out" 2>"$TMP/half.err"
expect_eq "half: replay exits 0" "$?" 0
ratio=$(field "$TMP/half.out" 'round(d["configs"][1]["elapsed_s"] / d["configs"][0]["elapsed_s"], 2)')
echo "INFO half: makespan ratio $ratio"
expect_ge "half: the makespan roughly doubles (>= 1.7x)" "$ratio" 1.7
expect_le "half: the makespan roughly doubles (<= 2.3x)" "$ratio" 2.3
expect_eq "half: 0 upstream 429s" "$(field "$TMP/half.out" 'd["configs"][1]["upstream_429"]')" 0
expect_eq "half: all ok" "$(field "$TMP/half.out" 'd["configs"][1]["ok"]')" 120

# ---- a tight budget: replayed rejections match a real run with it
budget=$(python3 -c "print(round($rec_cost / 2, 6))")
config "$TMP/tight.json" "$TMP/st-tight" 1200 "\"budget\": {\"run_usd\": $budget},"
"$QT_BIN" run -c "$TMP/tight.json" --headless -o "$TMP/tight.out" --summary "$TMP/tight.sum" "$TMP/jobs.jsonl" 2>"$TMP/tight.err"
real_rej=$(json_get "$TMP/tight.sum" 'd["rejected"]')
expect_ge "budget: the real run rejects some" "$real_rej" 1
"$QT_BIN" replay --trace "$T" -c "$TMP/tight.json" --json > "$TMP/tight.json.out" 2>"$TMP/tight.rerr"
rep_rej=$(field "$TMP/tight.json.out" 'd["configs"][0]["rejected"]')
echo "INFO budget: real run rejected $real_rej, replay rejected $rep_rej"
expect_le "budget: replayed rejections match the real run's (|$rep_rej - $real_rej| <= 3)" \
    "$(python3 -c "print(abs($rep_rej - $real_rej))")" 3
within "budget: replayed spend matches the real run's" \
    "$(field "$TMP/tight.json.out" 'd["configs"][0]["cost_usd"]')" "$(json_get "$TMP/tight.sum" 'd["cost_usd"]')" 5

# ---- an outage of gpt-x, recorded; replayed with the chain reordered
config "$TMP/fb.json" "$TMP/st-fb" 1200
config "$TMP/fb2.json" "$TMP/st-fb" 1200 "" '["gpt-z", "gpt-y"]'
curl -s -o /dev/null -X POST -d '{"model": "gpt-x", "start_ms": 1000, "duration_ms": 2500}' "$MOCK_URL/control/outage"
"$QT_BIN" run -c "$TMP/fb.json" --headless -o "$TMP/fb.out" --summary "$TMP/fb.sum" "$TMP/jobs.jsonl" 2>"$TMP/fb.err"
rec_y=$(grep -c '"model_used":"gpt-y"' "$TMP/fb.out")
expect_ge "outage: the recording fell back to gpt-y" "$rec_y" 5
"$QT_BIN" replay --trace "$TMP/st-fb/trace.jsonl" -c "$TMP/fb.json" -c "$TMP/fb2.json" --json > "$TMP/fb.json.out" 2>"$TMP/fb.rerr"
expect_eq "outage: replay exits 0" "$?" 0
same_y=$(field "$TMP/fb.json.out" 'd["configs"][0]["answered_by_fallback"].get("gpt-x->gpt-y", 0)')
within "outage: its own chain falls back to gpt-y about as often (the outage replays at its time)" "$same_y" "$rec_y" 30
expect_ge "reordered: fallbacks now land on gpt-z" \
    "$(field "$TMP/fb.json.out" 'd["configs"][1]["answered_by_fallback"].get("gpt-x->gpt-z", 0)')" 5
expect_eq "reordered: none on gpt-y" \
    "$(field "$TMP/fb.json.out" 'd["configs"][1]["answered_by_fallback"].get("gpt-x->gpt-y", 0)')" 0
expect_ge "reordered: gpt-z costs more, so the spend rises" \
    "$(field "$TMP/fb.json.out" 'd["configs"][1]["cost_usd"] - d["configs"][0]["cost_usd"]')" 0.000001

# ---- the table
"$QT_BIN" replay --trace "$T" -c "$TMP/rec.json" -c "$TMP/half.json" > "$TMP/table.txt" 2>&1
out=$(cat "$TMP/table.txt")
expect_contains "table: a column per config after the recording" "$out" "recorded            rec.json            half.json"
expect_contains "table: makespan row" "$out" "elapsed (makespan)"
expect_contains "table: wait percentiles per priority" "$out" "priority 3"
expect_contains "table: peak RPM against the limit the headers announced" "$out" "oa/gpt-x RPM (1200, from headers)"
expect_contains "table: a sparkline per config" "$out" "half.json            RPM   |"

# ---- the provider's real limits, learned from the recording's headers: the
# config claims 1200 RPM for gpt-l, the mock enforces (and announces) 300.
cat > "$TMP/liar.json" <<JSON
{"workers": 16, "state_dir": "$TMP/st-liar",
 "providers": {"oa": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"gpt-l": {"providers": ["oa"], "rpm": 1200, "input_usd_per_mtok": 1, "output_usd_per_mtok": 1}},
 "retry": {"max_attempts": 8, "base_ms": 100, "cap_ms": 2000}}
JSON
gen_jobs 60 gpt-l 20 > "$TMP/liar.jsonl"
"$QT_BIN" run -c "$TMP/liar.json" --headless -o "$TMP/liar.out" --summary "$TMP/liar.sum" "$TMP/liar.jsonl" 2>/dev/null
rec_429=$(json_get "$TMP/liar.sum" 'd["upstream_429"]')
expect_ge "learned: the recording met the real limit (429s)" "$rec_429" 10
expect_eq "learned: the trace records the limit the headers announced" \
    "$(sed -n 2p "$TMP/st-liar/trace.jsonl" | json_get - 'd["attempts"][0]["limit_rpm"]')" 300
"$QT_BIN" replay --trace "$TMP/st-liar/trace.jsonl" -c "$TMP/liar.json" --json > "$TMP/liar.rep" 2>/dev/null
expect_eq "learned: the simulated upstream enforces 300 RPM, from the headers" \
    "$(field "$TMP/liar.rep" '[(l["upstream_rpm"], l["upstream_source"]) for l in d["configs"][0]["limits"] if l["name"] == "oa/gpt-l"]')" \
    "[(300, 'headers')]"
within "learned: makespan within 5% of the recording" \
    "$(field "$TMP/liar.rep" 'd["configs"][0]["elapsed_s"]')" "$(json_get "$TMP/liar.sum" 'd["elapsed_s"]')" 5
within "learned: upstream 429s within 20% of the recording's" "$(field "$TMP/liar.rep" 'd["configs"][0]["upstream_429"]')" "$rec_429" 20
"$QT_BIN" replay --trace "$TMP/st-liar/trace.jsonl" -c "$TMP/liar.json" --upstream config --json > "$TMP/liar.cfg" 2>/dev/null
echo "INFO learned: recorded $(json_get "$TMP/liar.sum" 'd["elapsed_s"]') s / $rec_429 429s; replayed (headers) $(field "$TMP/liar.rep" 'd["configs"][0]["elapsed_s"]') s / $(field "$TMP/liar.rep" 'd["configs"][0]["upstream_429"]'); (--upstream config, the config's 1200) $(field "$TMP/liar.cfg" 'd["configs"][0]["elapsed_s"]') s / $(field "$TMP/liar.cfg" 'd["configs"][0]["upstream_429"]')"
expect_eq "learned: --upstream config still trusts the config instead (no 429s)" \
    "$(field "$TMP/liar.cfg" 'd["configs"][0]["upstream_429"]')" 0

# ---- serve traffic: streamed requests and every endpoint replay as recorded
PORT=$(free_port)
cat > "$TMP/srv.json" <<JSON
{"workers": 8, "state_dir": "$TMP/st-srv", "proxy": {"listen": "127.0.0.1:$PORT"},
 "providers": {"oa": {"kind": "openai", "base_url": "$MOCK_URL/v1"},
               "an": {"kind": "anthropic", "base_url": "$MOCK_URL/v1"}},
 "models": {"gpt-y": {"providers": ["oa"], "input_usd_per_mtok": 1, "output_usd_per_mtok": 2},
            "claude-y": {"providers": ["an"], "upstream_model": "gpt-y", "input_usd_per_mtok": 3, "output_usd_per_mtok": 4}}}
JSON
bg "$QT_BIN" serve -c "$TMP/srv.json" --headless 2>"$TMP/srv.err"
SRV=$BG_PID
wait_port "$PORT" 10 || fail "serve starts" "$(cat "$TMP/srv.err")"
U="http://127.0.0.1:$PORT/v1"
for i in 1 2 3 4; do
    for m in gpt-y claude-y; do
        for s in true false; do
            curl -s -o /dev/null "$U/chat/completions" -H 'Content-Type: application/json' \
                -d "{\"model\":\"$m\",\"stream\":$s,\"max_tokens\":20,\"messages\":[{\"role\":\"user\",\"content\":\"hello $i\"}]}"
            curl -s -o /dev/null "$U/messages" -H 'Content-Type: application/json' \
                -d "{\"model\":\"$m\",\"stream\":$s,\"max_tokens\":20,\"messages\":[{\"role\":\"user\",\"content\":\"hi $i\"}]}"
            curl -s -o /dev/null "$U/responses" -H 'Content-Type: application/json' \
                -d "{\"model\":\"$m\",\"stream\":$s,\"max_output_tokens\":20,\"input\":\"hey $i\"}"
        done
    done
    curl -s -o /dev/null "$U/embeddings" -H 'Content-Type: application/json' -d '{"model":"gpt-y","input":["a b","c d"]}'
done
kill -TERM "$SRV"; wait "$SRV" 2>/dev/null
ST="$TMP/st-srv/trace.jsonl"
expect_eq "serve trace: 52 requests, 24 of them streamed, every endpoint" \
    "$(sed 1d "$ST" | python3 -c 'import json,sys; L=[json.loads(l) for l in sys.stdin]; print(len(L), sum(l["stream"] for l in L), sorted({l["endpoint"] for l in L}), sum(l["status"]=="ok" for l in L))')" \
    "52 24 ['chat', 'embeddings', 'messages', 'responses'] 52"
"$QT_BIN" replay --trace "$ST" -c "$TMP/srv.json" --json > "$TMP/srv.rep" 2>"$TMP/srv.rerr"
expect_eq "serve replay: exits 0" "$?" 0
expect_eq "serve replay: every request ok, one upstream request each" \
    "$(field "$TMP/srv.rep" '(d["configs"][0]["ok"], d["configs"][0]["failed"], d["configs"][0]["requests"])')" "(52, 0, 52)"
within "serve replay: spend within 5% of the recording" \
    "$(field "$TMP/srv.rep" 'd["configs"][0]["cost_usd"]')" "$(field "$TMP/srv.rep" 'd["recorded"]["cost_usd"]')" 5
