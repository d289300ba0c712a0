#!/usr/bin/env bash
# test_spend.sh: the ledger and `quotatop spend` against `quotatop run` and
# `quotatop mock`: two runs' spend adds up in the ledger (by workflow, model
# and day, as a table and as JSON); a day budget survives a restart (the
# second run rejects what the first run's spend leaves no room for); an
# unusable state_dir warns and the run still succeeds; "state_dir": ""
# writes nothing; the default state dir follows $XDG_STATE_HOME; bad flags
# exit 2 and a missing ledger is not an error.
source "$(dirname "$0")/lib.sh"

start_mock --model gpt-x --model gpt-y

# config FILE STATE_DIR_JSON [DAY_USD]: a config on the mock; STATE_DIR_JSON
# is the JSON text of state_dir ("" leaves the key out).
config() {
    local state=""
    [ -n "$2" ] && state="\"state_dir\": $2,"
    cat > "$1" <<JSON
{"workers": 4, $state
 "providers": {"oa": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"gpt-x": {"providers": ["oa"], "input_usd_per_mtok": 1000, "output_usd_per_mtok": 1000},
            "gpt-y": {"providers": ["oa"], "input_usd_per_mtok": 500, "output_usd_per_mtok": 2000}},
 "budget": {"day_usd": ${3:-0}}}
JSON
}

# sum_json EXPR FILE...: the sum of a python expression on each JSON file's `d`.
sum_json() {
    local expr=$1; shift
    python3 - "$expr" "$@" <<'PY'
import json, sys
expr = sys.argv[1]
print(round(sum(eval(expr, {"d": json.load(open(f))}) for f in sys.argv[2:]), 6))
PY
}

# --- two runs, then the ledger adds them up
config "$TMP/cfg.json" "\"$TMP/ledger\""
out=$("$QT_BIN" spend -c "$TMP/cfg.json"); rc=$?
expect_eq "missing ledger: exit 0" "$rc" 0
expect_contains "missing ledger: says so and names the dir" "$out" "no spend recorded yet in $TMP/ledger"
check "missing ledger: a read does not create it" test ! -e "$TMP/ledger"

{ gen_jobs 8 gpt-x 12 support a; gen_jobs 4 gpt-y 20 nightly b; } > "$TMP/run1.jsonl"
{ gen_jobs 5 gpt-x 16 support c; gen_jobs 3 gpt-y 8 triage d; } > "$TMP/run2.jsonl"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/run1.out" --summary "$TMP/run1.sum" "$TMP/run1.jsonl" 2>"$TMP/run1.err"
expect_eq "run 1: exit 0" "$?" 0
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/run2.out" --summary "$TMP/run2.sum" "$TMP/run2.jsonl" 2>"$TMP/run2.err"
expect_eq "run 2: exit 0" "$?" 0
check "ledger: the database is in state_dir" test -f "$TMP/ledger/ledger.sqlite3"
expect_eq "ledger: state_dir is private (0700)" "$(stat -c %a "$TMP/ledger")" 700
# (the control socket line names the state_dir, which this test calls "ledger")
expect_not_contains "ledger: no warning on a good state_dir" \
    "$(cat "$TMP/run1.err" "$TMP/run2.err" | grep -v 'control socket')" "ledger"

"$QT_BIN" spend -c "$TMP/cfg.json" --by workflow --json > "$TMP/wf.json"
expect_eq "by workflow: exit 0" "$?" 0
expect_eq "by workflow: total cost = the two summaries' cost_usd" \
    "$(json_get "$TMP/wf.json" 'round(d["total"]["cost_usd"], 6)')" \
    "$(sum_json 'd["cost_usd"]' "$TMP/run1.sum" "$TMP/run2.sum")"
expect_eq "by workflow: total calls = ok jobs of both runs" "$(json_get "$TMP/wf.json" 'd["total"]["calls"]')" 20
expect_eq "by workflow: prompt tokens = the summaries'" \
    "$(json_get "$TMP/wf.json" 'd["total"]["prompt_tokens"]')" \
    "$(sum_json 'd["prompt_tokens"]' "$TMP/run1.sum" "$TMP/run2.sum" | sed 's/\.0$//')"
expect_eq "by workflow: completion tokens = the summaries'" \
    "$(json_get "$TMP/wf.json" 'd["total"]["completion_tokens"]')" \
    "$(sum_json 'd["completion_tokens"]' "$TMP/run1.sum" "$TMP/run2.sum" | sed 's/\.0$//')"
expect_eq "by workflow: the three workflows" \
    "$(json_get "$TMP/wf.json" '",".join(sorted(r["name"] for r in d["rows"]))')" "nightly,support,triage"
expect_eq "by workflow: support spans both runs" \
    "$(json_get "$TMP/wf.json" '[round(r["cost_usd"], 6) for r in d["rows"] if r["name"] == "support"][0]')" \
    "$(sum_json 'd["workflows"]["support"]["cost_usd"]' "$TMP/run1.sum" "$TMP/run2.sum")"
expect_eq "by workflow: support calls" \
    "$(json_get "$TMP/wf.json" '[r["calls"] for r in d["rows"] if r["name"] == "support"][0]')" 13

table=$("$QT_BIN" spend -c "$TMP/cfg.json")
expect_contains "table: default grouping is by workflow" "$table" "WORKFLOW"
expect_contains "table: has the token columns" "$table" "TOKENS IN"
total_line=$(grep '^TOTAL' <<<"$table")
expect_contains "table: total line counts every call" "$total_line" " 20 "
expect_contains "table: total line carries the cost" "$total_line" \
    "$(python3 -c "print('%.6f' % $(json_get "$TMP/wf.json" 'd["total"]["cost_usd"]'))")"
widths=$(grep -E '^(WORKFLOW|support|nightly|triage|TOTAL) ' <<<"$table" | awk '{ print length($0) }' | sort -u | wc -l)
expect_eq "table: rows are aligned (one line length)" "$widths" 1

"$QT_BIN" spend -c "$TMP/cfg.json" --by model --json > "$TMP/model.json"
expect_eq "by model: exit 0" "$?" 0
for m in gpt-x gpt-y; do
    expect_eq "by model: $m cost = the summaries'" \
        "$(json_get "$TMP/model.json" "[round(r['cost_usd'], 6) for r in d['rows'] if r['name'] == '$m'][0]")" \
        "$(sum_json "d['models']['$m']['cost_usd']" "$TMP/run1.sum" "$TMP/run2.sum")"
done
expect_contains "by model: table header" "$("$QT_BIN" spend -c "$TMP/cfg.json" --by model)" "MODEL"

"$QT_BIN" spend -c "$TMP/cfg.json" --by=day --since 1 --json > "$TMP/day.json"
expect_eq "by day: exit 0" "$?" 0
expect_eq "by day: one row, today (UTC)" "$(json_get "$TMP/day.json" '[r["name"] for r in d["rows"]]')" \
    "['$(date -u +%Y-%m-%d)']"
expect_eq "by day: today's calls" "$(json_get "$TMP/day.json" 'd["rows"][0]["calls"]')" 20
expect_contains "by day: table" "$("$QT_BIN" spend -c "$TMP/cfg.json" --by day --since 0)" "$(date -u +%Y-%m-%d)"
expect_eq "since 0: everything" "$("$QT_BIN" spend -c "$TMP/cfg.json" --since 0 --json | json_get - 'd["total"]["calls"]')" 20

# --- a day budget survives a restart
config "$TMP/day.json.cfg" "\"$TMP/ledger-day\"" 0.5
gen_jobs 12 gpt-x 16 support e > "$TMP/day1.jsonl"
gen_jobs 12 gpt-x 16 support f > "$TMP/day2.jsonl"
"$QT_BIN" run -c "$TMP/day.json.cfg" --headless -o "$TMP/day1.out" --summary "$TMP/day1.sum" "$TMP/day1.jsonl" 2>/dev/null
spent1=$(json_get "$TMP/day1.sum" 'd["cost_usd"]')
echo "day budget: first run spent \$$spent1 of \$0.50"
expect_ge "day budget: the first run used most of the day budget" "$spent1" 0.3
"$QT_BIN" run -c "$TMP/day.json.cfg" --headless -o "$TMP/day2.out" --summary "$TMP/day2.sum" "$TMP/day2.jsonl" 2>/dev/null
expect_eq "day budget: the second run exits 1" "$?" 1
expect_ge "day budget: the second run rejects jobs after a restart" "$(results_count "$TMP/day2.out" rejected)" 1
expect_contains "day budget: the rejection names the day budget" "$(grep -m1 rejected "$TMP/day2.out")" "day budget"
expect_le "day budget: both runs together stay within it" \
    "$(sum_json 'd["cost_usd"]' "$TMP/day1.sum" "$TMP/day2.sum")" 0.5
expect_eq "day budget: the ledger holds both runs' ok calls" \
    "$("$QT_BIN" spend -c "$TMP/day.json.cfg" --json | json_get - 'd["total"]["calls"]')" \
    "$(( $(results_count "$TMP/day1.out" ok) + $(results_count "$TMP/day2.out" ok) ))"
# Control: the same second run with an empty ledger rejects nothing.
config "$TMP/day-fresh.cfg" "\"$TMP/ledger-fresh\"" 0.5
"$QT_BIN" run -c "$TMP/day-fresh.cfg" --headless -o "$TMP/fresh.out" "$TMP/day2.jsonl" 2>/dev/null
expect_eq "day budget: with no prior spend nothing is rejected" "$(results_count "$TMP/fresh.out" rejected)" 0

# --- an unusable state_dir warns, and the run still succeeds
echo "a file" > "$TMP/plain"
config "$TMP/bad.cfg" "\"$TMP/plain/state\""
gen_jobs 3 gpt-x 8 support g > "$TMP/small.jsonl"
"$QT_BIN" run -c "$TMP/bad.cfg" --headless -o "$TMP/bad.out" "$TMP/small.jsonl" 2>"$TMP/bad.err"
expect_eq "bad state_dir: the run still succeeds" "$?" 0
expect_eq "bad state_dir: every job ok" "$(results_count "$TMP/bad.out" ok)" 3
expect_contains "bad state_dir: one warning naming the path" "$(cat "$TMP/bad.err")" "$TMP/plain/state"
expect_eq "bad state_dir: warned once" "$(grep -c 'ledger' "$TMP/bad.err")" 1
if [ "$(id -u)" -ne 0 ]; then
    mkdir -p "$TMP/ro" && chmod 500 "$TMP/ro"
    config "$TMP/ro.cfg" "\"$TMP/ro/state\""
    "$QT_BIN" run -c "$TMP/ro.cfg" --headless -o "$TMP/ro.out" "$TMP/small.jsonl" 2>"$TMP/ro.err"
    expect_eq "read-only parent: the run still succeeds" "$?" 0
    expect_contains "read-only parent: warns naming the path" "$(cat "$TMP/ro.err")" "$TMP/ro/state"
    chmod 700 "$TMP/ro"
fi

# --- "state_dir": "" disables the ledger
config "$TMP/none.cfg" '""'
"$QT_BIN" run -c "$TMP/none.cfg" --headless -o "$TMP/none.out" "$TMP/small.jsonl" 2>"$TMP/none.err"
expect_eq "no ledger: the run succeeds" "$?" 0
expect_not_contains "no ledger: no warning" "$(cat "$TMP/none.err")" "ledger"
check "no ledger: nothing written to the default state dir" test ! -e "$XDG_STATE_HOME/quotatop"
expect_contains "no ledger: check says so" "$("$QT_BIN" check -c "$TMP/none.cfg")" "state_dir: none (no ledger)"
out=$("$QT_BIN" spend -c "$TMP/none.cfg" 2>&1); rc=$?
expect_eq "no ledger: spend exits 0" "$rc" 0
expect_contains "no ledger: spend says the ledger is disabled" "$out" "disables the ledger"

# --- the default state dir follows $XDG_STATE_HOME
config "$TMP/default.cfg" ""
expect_contains "default state_dir: check shows \$XDG_STATE_HOME/quotatop" \
    "$("$QT_BIN" check -c "$TMP/default.cfg")" "state_dir: $XDG_STATE_HOME/quotatop"
"$QT_BIN" run -c "$TMP/default.cfg" --headless -o "$TMP/default.out" "$TMP/small.jsonl" 2>/dev/null
expect_eq "default state_dir: the run succeeds" "$?" 0
check "default state_dir: ledger under \$XDG_STATE_HOME" test -f "$XDG_STATE_HOME/quotatop/ledger.sqlite3"
expect_eq "default state_dir: spend without -c reads it" \
    "$("$QT_BIN" spend --json | json_get - 'd["total"]["calls"]')" 3

# --- usage
for bad in "--by provider" "--since -3" "--since x" "--by" "-c" "--nope" "extra"; do
    # shellcheck disable=SC2086
    err=$("$QT_BIN" spend $bad 2>&1 >/dev/null); rc=$?
    expect_eq "usage: 'spend $bad' exits 2" "$rc" 2
    expect_contains "usage: 'spend $bad' prints the usage" "$err" "usage: quotatop spend"
done
expect_eq "usage: --help exits 0" "$("$QT_BIN" spend --help >/dev/null; echo $?)" 0
echo '{"workers": "many"}' > "$TMP/invalid.cfg"
"$QT_BIN" spend -c "$TMP/invalid.cfg" >/dev/null 2>&1
expect_eq "usage: an invalid config exits 2" "$?" 2

# --- a ledger locked by another process: the calls still get their results,
# one warning, and the ledger is usable again afterwards
python3 - "$TMP/ledger/ledger.sqlite3" "$TMP/locked" <<'PY' &
import sqlite3, sys, time, os
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(12)
db.execute("ROLLBACK")
PY
locker=$!
_pids+=("$locker")
for _ in $(seq 100); do [ -e "$TMP/locked" ] && break; sleep 0.05; done
before=$("$QT_BIN" spend -c "$TMP/cfg.json" --since 0 --json | json_get - 'd["total"]["calls"]')
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/locked.out" "$TMP/small.jsonl" 2>"$TMP/locked.err"
expect_eq "locked ledger: the run still succeeds" "$?" 0
expect_eq "locked ledger: every job has its ok result" "$(results_count "$TMP/locked.out" ok)" 3
expect_eq "locked ledger: one warning" "$(grep -c 'cannot record spend' "$TMP/locked.err")" 1
wait "$locker"
expect_eq "locked ledger: nothing half-written" \
    "$("$QT_BIN" spend -c "$TMP/cfg.json" --since 0 --json | json_get - 'd["total"]["calls"]')" "$before"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/after.out" "$TMP/small.jsonl" 2>/dev/null
expect_eq "locked ledger: recorded again once the lock is gone" \
    "$("$QT_BIN" spend -c "$TMP/cfg.json" --since 0 --json | json_get - 'd["total"]["calls"]')" "$((before + 3))"
