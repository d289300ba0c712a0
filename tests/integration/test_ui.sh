#!/usr/bin/env bash
# test_ui.sh: the dashboard's keys, driven in tmux against `quotatop run` and
# `quotatop mock`: p pauses (header says PAUSED, the mock's request count
# stops), + moves the selected job up, x cancels it (result `cancelled`),
# [ lowers the RPM limit (shown limit and measured rate follow), q asks and
# quits with every job given a result and the terminal restored; Ctrl-C
# (SIGINT) restores it too. About 40 s.
source "$(dirname "$0")/lib.sh"

use_tmux
reqs() { mock_stat "d['total']['requests']"; }
# queue_ids PANE: job ids of the queue panel in screen order, ">" marks the cursor
queue_ids() { cap "$1" | grep -oE '^[ >=]j[0-9]+ ' | tr -d ' '; }

start_mock --latency-ms 20
cat >"$TMP/cfg.json" <<EOF
{"workers": 4,
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"m": {"providers": ["mock"], "rpm": 600, "input_usd_per_mtok": 1, "output_usd_per_mtok": 2}},
 "limits": {"headroom": 1.0}, "queue": {"aging_ms": 0}}
EOF
gen_jobs 400 m 16 batch j >"$TMP/jobs.jsonl"

# ---- the run dashboard: p, +, x, [, q ----
tm new-session -d -s run -x 120 -y 40 \
    "cd $TMP && $QT_BIN run -c cfg.json -o results.jsonl jobs.jsonl 2>run.err; echo EXIT=\$? >exit; stty -a >stty; sleep 60"
if ! wait_for run "LIMITS" 10; then
    fail "ui: dashboard starts" "no LIMITS panel: $(cap run | head -5)"
    exit 0
fi
pass "ui: dashboard starts"
screen=$(cap run)
for p in LIMITS HISTORY JOBS WORKFLOWS EVENTS "quotatop run" RUNNING; do
    expect_contains "ui: run shows $p" "$screen" "$p"
done

for ((i = 0; i < 50; i++)); do [ "$(reqs)" -ge 20 ] && break; sleep 0.1; done
expect_ge "ui: requests flow before the pause" "$(reqs)" 20
tm send-keys -t run p
wait_for run "PAUSED" 3
expect_contains "p: header says PAUSED" "$(cap run)" "PAUSED"
expect_not_contains "p: no ETA while paused" "$(cap run | head -1)" "ETA"
sleep 1
r1=$(reqs); sleep 2; r2=$(reqs)
expect_le "p: mock request count stops growing while paused ($r1 -> $r2)" "$((r2 - r1))" 0

# While paused the queue holds still: Tab to JOBS, cursor to row 6, + raises it.
tm send-keys -t run Tab
for i in 1 2 3 4 5; do tm send-keys -t run j; done
sleep 0.6
before=$(queue_ids run)
sel=$(echo "$before" | grep '^>' | tr -d '>')
pos_before=$(echo "$before" | grep -n "^>" | cut -d: -f1)
expect_eq "+: cursor on the 6th queued job" "$pos_before" 6
tm send-keys -t run +
sleep 0.6
after=$(queue_ids run)
pos_after=$(echo "$after" | grep -n "^>\?$sel\$" | head -1 | cut -d: -f1)
expect_eq "+: job $sel moved to the top of the queue" "$pos_after" 1
expect_eq "+: the cursor follows job $sel" "$(echo "$after" | grep '^>' | tr -d '>')" "$sel"

tm send-keys -t run x
wait_for run "Cancel job $sel" 3
expect_contains "x: asks to confirm" "$(cap run)" "Cancel job $sel"
tm send-keys -t run y
sleep 0.6
line=$(grep "\"id\":\"$sel\"" "$TMP/results.jsonl")
expect_contains "x: result of $sel says cancelled" "$line" '"status":"cancelled"'
expect_not_contains "x: $sel left the queue" "$(queue_ids run | tr -d '>' | tr '\n' ' ')" " $sel "

# Resume, then [ x7 on the model row: 600 -> 287 RPM.
tm send-keys -t run p
if ! wait_for run "RUNNING" 3; then
    # A key can be lost to a slow terminal (sanitizer builds): ask once more.
    [[ "$(cap run)" == *PAUSED* ]] && tm send-keys -t run p
    wait_for run "RUNNING" 3
fi
expect_contains "p: a second p resumes (RUNNING)" "$(cap run)" "RUNNING"
tm send-keys -t run BTab
sleep 2
a=$(reqs); sleep 4; b=$(reqs)
rate1=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", (b-a)/4}')
for i in 1 2 3 4 5 6 7; do tm send-keys -t run '['; done
sleep 0.6
expect_contains "[: the shown RPM limit is 287" "$(cap run)" "/287*"
sleep 1.5
c=$(reqs); sleep 4; d=$(reqs)
rate2=$(awk -v a="$c" -v b="$d" 'BEGIN{printf "%.2f", (b-a)/4}')
expect_ge "[: rate before is near 600 RPM ($rate1/s)" "$rate1" 7.5
# 287/600 = 0.48 of the rate before; the bounds leave room for the
# limiter's one-second burst tolerance over a 4 s window.
expect_le "[: measured rate follows the lowered limit ($rate2/s, limit 4.8/s)" "$rate2" 7.5
expect_le "[: ... in proportion to the rate before ($rate1/s)" "$rate2" "$(awk -v r="$rate1" 'BEGIN{print r*0.62}')"
expect_contains "[: the change is in the events" "$(cap run)" "RPM limit lowered"

tm send-keys -t run q
wait_for run "Quit?" 3
expect_contains "q: asks first while jobs are pending" "$(cap run)" "Quit?"
tm send-keys -t run y
for ((i = 0; i < 100; i++)); do [ -s "$TMP/exit" ] && break; sleep 0.1; done
expect_eq "q: run exits with 1 (some jobs cancelled)" "$(cat "$TMP/exit" 2>/dev/null)" "EXIT=1"
expect_eq "q: every job has a result line" "$(wc -l <"$TMP/results.jsonl" | tr -d ' ')" 400
expect_eq "q: ... exactly one per job" "$(unique_ids "$TMP/results.jsonl")" 400
expect_ge "q: pending jobs got cancelled results" "$(results_count "$TMP/results.jsonl" cancelled)" 2
expect_eq "q: alternate screen left" "$(tm display -p -t run '#{alternate_on}')" 0
st=$(cat "$TMP/stty" 2>/dev/null)
expect_contains "q: terminal back in canonical mode" " $st " " icanon "
expect_contains "q: echo restored" " $st " " echo "
expect_contains "q: summary printed after the dashboard" "$(cat "$TMP/run.err")" "quotatop: 400 jobs"
expect_not_contains "q: dashboard gone from the screen" "$(cap run)" "WORKFLOWS"

# ---- SIGINT (Ctrl-C) while the dashboard is up ----
gen_jobs 300 m 16 batch k >"$TMP/jobs2.jsonl"
tm new-session -d -s sig -x 100 -y 30 \
    "cd $TMP && $QT_BIN run -c cfg.json -o results2.jsonl jobs2.jsonl 2>run2.err; echo EXIT=\$? >exit2; stty -a >stty2; sleep 60"
wait_for sig "LIMITS" 10
tm send-keys -t sig C-c
for ((i = 0; i < 100; i++)); do [ -s "$TMP/exit2" ] && break; sleep 0.1; done
expect_eq "SIGINT: run exits" "$(cut -c1-5 "$TMP/exit2" 2>/dev/null)" "EXIT="
expect_eq "SIGINT: every job has a result line" "$(unique_ids "$TMP/results2.jsonl")" 300
expect_eq "SIGINT: alternate screen left" "$(tm display -p -t sig '#{alternate_on}')" 0
expect_contains "SIGINT: terminal back in canonical mode" " $(cat "$TMP/stty2") " " icanon "

# ---- run: exits by itself when every job is done; --stay keeps DONE up until q ----
gen_jobs 5 m 16 batch d >"$TMP/jobs3.jsonl"
tm new-session -d -s auto -x 100 -y 30 \
    "cd $TMP && $QT_BIN run -c cfg.json -o results3a.jsonl jobs3.jsonl 2>run3a.err; echo EXIT=\$? >exit3a; sleep 60"
for ((i = 0; i < 100; i++)); do [ -s "$TMP/exit3a" ] && break; sleep 0.1; done
expect_eq "run: exits by itself when every job is done, exit 0" "$(cat "$TMP/exit3a" 2>/dev/null)" "EXIT=0"
expect_eq "run: ... with every result written" "$(unique_ids "$TMP/results3a.jsonl")" 5
expect_contains "run: ... and the summary printed" "$(cat "$TMP/run3a.err")" "quotatop: 5 jobs"
tm new-session -d -s done -x 100 -y 30 \
    "cd $TMP && NO_COLOR=1 $QT_BIN run --stay -c cfg.json -o results3.jsonl jobs3.jsonl 2>run3.err; echo EXIT=\$? >exit3; sleep 60"
wait_for done "DONE" 10
expect_contains "run --stay: DONE when every job has its result" "$(cap done)" "DONE"
sleep 0.5
expect_contains "run --stay: ... and the dashboard stays (NO_COLOR)" "$(cap done)" "WORKFLOWS"
expect_contains "run --stay: header counts each status" "$(cap done)" "ok 5 failed 0 rejected 0 cancelled 0 invalid 0"
tm send-keys -t done '?'
wait_for done "any key closes" 3
helpscr=$(cap done)
expect_contains "?: the help's first line is whole" "$helpscr" "quit (asks first when jobs are pending; they get"
expect_contains "?: lists g / G" "$helpscr" "g / G"
tm send-keys -t done j j j j j j j j j j j j j j j j j j j j j j j j j j j j j j
sleep 0.5
helpscr2=$(cap done)
expect_contains "?: scrolls down to the notation (provider rows)" "$helpscr2" "a provider row"
expect_contains "?: explains the aged priority 3^2" "$helpscr2" "3^2"
tm send-keys -t done Escape
sleep 0.3
tm send-keys -t done q
for ((i = 0; i < 50; i++)); do [ -s "$TMP/exit3" ] && break; sleep 0.1; done
expect_eq "run --stay: q quits without asking when done, exit 0" "$(cat "$TMP/exit3" 2>/dev/null)" "EXIT=0"

# ---- no usable terminal: progress lines instead of the dashboard ----
tm new-session -d -s dumb -x 100 -y 30 \
    "cd $TMP && TERM=dumb $QT_BIN run -c cfg.json -o results4.jsonl jobs3.jsonl 2>run4.err; echo EXIT=\$? >exit4; sleep 60"
for ((i = 0; i < 100; i++)); do [ -s "$TMP/exit4" ] && break; sleep 0.1; done
expect_eq "TERM=dumb: run finishes on its own" "$(cat "$TMP/exit4" 2>/dev/null)" "EXIT=0"
expect_contains "TERM=dumb: summary on stderr" "$(cat "$TMP/run4.err")" "quotatop: 5 jobs"
