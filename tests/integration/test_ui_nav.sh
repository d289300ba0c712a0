#!/usr/bin/env bash
# test_ui_nav.sh: moving around the dashboard, driven in tmux against a
# paused `quotatop run` (so every list holds still), each check against
# what the screen shows and what the process reports (`top --json`):
#  - sorting with > and < (next / previous column) and I (invert) on JOBS;
#  - the mouse, as xterm mouse reports written to the terminal (tmux
#    send-keys -H): a click selects the row under it and focuses its
#    panel, the wheel moves the selection by 3, a click on a LIMITS row
#    points HISTORY at it;
#  - EVENTS as a log: PgDn / PgUp / End / Home move through it, / searches
#    it, f filters it by type;
#  - acting in any state: + and x on a job in flight; Space pauses and
#    resumes a whole workflow (WORKFLOWS marks it).
# About 25 s.
source "$(dirname "$0")/lib.sh"

use_tmux
start_mock --latency-ms 60000   # the two jobs sent stay in flight: nothing moves
cat >"$TMP/cfg.json" <<EOF
{"workers": 2, "state_dir": "$TMP/state",
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1", "timeout_ms": 300000}},
 "models": {"m": {"providers": ["mock"], "rpm": 600}},
 "limits": {"headroom": 1.0}, "queue": {"aging_ms": 0}}
EOF
# ids in one order, priorities in another: the natural order (most urgent
# first) is not the order of the ids
python3 - >"$TMP/jobs.jsonl" <<'PY'
import json
for i in range(40):
    print(json.dumps({"id": "n%02d" % i, "priority": (i * 7) % 10 + 1, "model": "m", "workflow": "w%d" % (i % 2),
                      "messages": [{"role": "user", "content": "hello %d" % i}], "max_tokens": 8}))
PY
tm new-session -d -s nav -x 120 -y 40 "cd $TMP && $QT_BIN run -c cfg.json -o out.jsonl jobs.jsonl 2>run.err; sleep 60"
if ! wait_for nav "LIMITS" 10; then
    fail "nav: dashboard starts" "$(cap nav | head -5; cat "$TMP/run.err")"
    exit 0
fi
tm send-keys -t nav p
wait_for nav "PAUSED" 3
sleep 0.5
frame() { "$QT_BIN" top -c "$TMP/cfg.json" --json; }

# line (0-based, the terminal's y) of the panel title NAME
title_y() { cap nav | grep -n -m1 -E "^ $1 " | cut -d: -f1 | awk '{print $1 - 1}'; }
# job ids of JOBS in screen order (">" marks the cursor)
job_ids() { cap nav | cut -c1-40 | grep -oE '^[ >]n[0-9]+' | tr -d ' '; }
cursor_id() { job_ids | grep '^>' | tr -d '>'; }
footer() { cap nav | tail -1; }
hex() { printf '%x' "$1"; }
# press / release button B (0 left, 64 wheel up, 65 wheel down) at (x, y):
# an xterm (X10) mouse report, as the terminal sends it
mouse() {
    tm send-keys -t nav -H 1b 5b 4d "$(hex $((32 + $1)))" "$(hex $((33 + $2)))" "$(hex $((33 + $3)))"
    sleep 0.15
}
click() { mouse 0 "$1" "$2"; mouse 3 "$1" "$2"; sleep 0.3; }

# ---- sorting: > next column, < previous column, I inverts ----
tm send-keys -t nav Tab   # LIMITS -> JOBS
sleep 0.3
natural=$(job_ids | tr -d '>' | tr '\n' ' ')
expect_eq "natural order: most urgent first (the process's own order)" "$natural" \
    "$(frame | json_get - "' '.join(j['id'] for j in d['jobs'][:len('$natural'.split())]) + ' '")"
tm send-keys -t nav '>'
sleep 0.4
expect_contains ">: JOBS sorted by its first column, id (the title says so)" "$(cap nav | grep '^ JOBS')" "sort id ^"
shown=$(job_ids | tr -d '>' | tr '\n' ' ')
expect_eq ">: ... the rows are in id order" "$shown" "$(echo "$shown" | tr ' ' '\n' | grep . | sort | tr '\n' ' ')"
expect_eq ">: ... starting at the smallest id" "$(job_ids | head -1 | tr -d '>')" n00
tm send-keys -t nav '>'
sleep 0.4
expect_contains ">: again: the next column, state" "$(cap nav | grep '^ JOBS')" "sort state"
tm send-keys -t nav '<'
sleep 0.4
expect_contains "<: back to the previous column, id" "$(cap nav | grep '^ JOBS')" "sort id ^"
before=$(cursor_id)
tm send-keys -t nav I
sleep 0.4
expect_contains "I: inverted (the title says so)" "$(cap nav | grep '^ JOBS')" "sort id v"
shown=$(job_ids | tr -d '>' | tr '\n' ' ')
expect_eq "I: ... the rows in falling id order" "$shown" "$(echo "$shown" | tr ' ' '\n' | grep . | sort -r | tr '\n' ' ')"
expect_eq "I: ... the cursor stays on its job" "$(cursor_id)" "$before"
tm send-keys -t nav Home
sleep 0.3
expect_eq "I, Home: the largest id first" "$(job_ids | head -1 | tr -d '>')" n39
tm send-keys -t nav '<'
sleep 0.4
expect_not_contains "<: before the first column: the natural order again" "$(cap nav | grep '^ JOBS')" "sort "
tm send-keys -t nav g   # (the cursor stayed on n39: back to the top)
sleep 0.3
expect_eq "<: ... rows as at first" "$(job_ids | tr -d '>' | tr '\n' ' ')" "$natural"

# ---- the mouse ----
tm send-keys -t nav BTab   # JOBS -> LIMITS
sleep 0.3
expect_contains "mouse: LIMITS focused first (its keys in the footer)" "$(footer)" "[] RPM"
jy=$(title_y JOBS)
rows=($(job_ids | tr -d '>'))
click 5 $((jy + 2 + 3))   # the fourth row of JOBS
expect_eq "click: selects the row under the pointer" "$(cursor_id)" "${rows[3]}"
expect_contains "click: ... and focuses its panel (JOBS keys in the footer)" "$(footer)" "Enter Detail"
mouse 65 5 $((jy + 4))
sleep 0.4
expect_eq "wheel down: the selection moves 3 rows down" "$(cursor_id)" "${rows[6]}"
mouse 64 5 $((jy + 4))
sleep 0.4
expect_eq "wheel up: ... and 3 back up" "$(cursor_id)" "${rows[3]}"
py=$(cap nav | grep -n -m1 -E '^(»|>) mock' | cut -d: -f1)
click 3 $((py - 1))   # the provider row of LIMITS
expect_contains "click on a LIMITS row: HISTORY shows that row" "$(cap nav | grep '^ HISTORY')" "provider mock"
expect_contains "click on a LIMITS row: LIMITS focused" "$(footer)" "[] RPM"
ey=$(title_y EVENTS)
click 5 $((ey + 1))
expect_contains "click in EVENTS: EVENTS focused (its keys in the footer)" "$(footer)" "Full text"

# ---- EVENTS: a log to move through ----
# 24 limit changes (each its own text: 600 -> 660 -> 726 ...) on the model row
click 3 $(($(cap nav | grep -n -m1 -E '^ m ' | cut -d: -f1) - 1))
for i in $(seq 1 24); do tm send-keys -t nav ']'; sleep 0.05; done
sleep 0.6
tm send-keys -t nav BTab   # LIMITS -> EVENTS
sleep 0.6
# what the log holds, newest first (as the panel lists it)
frame | json_get - "'\n'.join(e['msg'] for e in reversed(d['events']))" >"$TMP/events.txt"
n=$(wc -l <"$TMP/events.txt")
ev_cursor() { cap nav | sed -n "$((ey + 2)),\$p" | grep -m1 '^>' ; }
nth_event() { sed -n "$(($1 + 1))p" "$TMP/events.txt"; }
ey=$(title_y EVENTS)
page=$(( $(cap nav | wc -l) - 1 - ey - 1 ))   # EVENTS rows: title to footer
expect_ge "EVENTS: more events than fit (so paging means something)" "$n" $((page + 2))
expect_contains "EVENTS: the cursor starts on the newest event" "$(ev_cursor)" "$(nth_event 0)"
tm send-keys -t nav NPage
sleep 0.4
expect_contains "PgDn: the cursor moves a page down the log" "$(ev_cursor)" "$(nth_event "$page")"
tm send-keys -t nav End
sleep 0.4
expect_contains "End: the oldest event" "$(ev_cursor)" "$(nth_event $((n - 1)))"
expect_not_contains "End: ... the newest has scrolled away" "$(cap nav | sed -n "$((ey + 2)),\$p")" "$(nth_event 0)"
tm send-keys -t nav PPage
sleep 0.4
expect_contains "PgUp: a page back up" "$(ev_cursor)" "$(nth_event $((n - 1 - page)))"
tm send-keys -t nav Home
sleep 0.4
expect_contains "Home: the newest again" "$(ev_cursor)" "$(nth_event 0)"

# / searches the log
tm send-keys -t nav / 7 2 6 Enter
sleep 0.5
want=$(grep -c '726' "$TMP/events.txt")
expect_contains "/726: the search in the title" "$(cap nav | grep '^ EVENTS')" "/726"
expect_contains "/726: ... as many shown as the log holds" "$(cap nav | grep '^ EVENTS')" "$want shown"
shown=$(cap nav | sed -n "$((ey + 2)),\$p" | head -n -1 | grep -c '726')
expect_eq "/726: ... every row shown matches" "$shown" "$want"
tm send-keys -t nav / Escape
sleep 0.4
expect_contains "/ Esc: the whole log again" "$(cap nav | grep '^ EVENTS')" "$n shown"

# f filters it by type (from every type: info, retry, ... limit_change)
want=$(frame | json_get - "len([e for e in d['events'] if e['type'] == 'limit_change'])")
for ((i = 0; i < 14; i++)); do
    [[ "$(cap nav | grep '^ EVENTS')" == *"[type limit_change]"* ]] && break
    tm send-keys -t nav f
    sleep 0.25
done
expect_contains "f: the type filter in the title" "$(cap nav | grep '^ EVENTS')" "$want shown, newest first  [type limit_change]"
tm send-keys -t nav f
sleep 0.4
expect_contains "f: the next type, pause: the one pause" "$(cap nav | grep '^ EVENTS')" "1 shown, newest first  [type pause]"

tm send-keys -t nav f f f f f f   # back to every type

# ---- acting in any state: + and x on a job in flight ----
tm send-keys -t nav Tab   # EVENTS -> LIMITS
sleep 0.2
tm send-keys -t nav Tab / s t a t e : i n - f l i g h t Enter
sleep 0.5
fl=$(cursor_id)
jprio() { frame | json_get - "[j['priority'] for j in d['jobs'] if j['id'] == '$1'] or ['gone']"; }
jstate() { frame | json_get - "[j['state'] for j in d['jobs'] if j['id'] == '$1'] or ['gone']"; }
expect_eq "in flight: the filter selects a job on the wire" "$(jstate "$fl")" "['in-flight']"
p0=$(jprio "$fl" | tr -d '[]')
tm send-keys -t nav +
sleep 0.5
expect_eq "+ on a job in flight: its priority is raised" "$(jprio "$fl")" "[$((p0 > 1 ? p0 - 1 : 1))]"
tm send-keys -t nav x
wait_for nav "Cancel job $fl" 3
tm send-keys -t nav y
sleep 1
expect_eq "x on a job in flight: it is gone from the process" "$(jprio "$fl")" "['gone']"
expect_contains "x on a job in flight: its result says cancelled" "$(grep "\"$fl\"" "$TMP/out.jsonl")" '"status":"cancelled"'
tm send-keys -t nav / Escape

# ---- a whole workflow: Space pauses it, again resumes ----
wfp() { frame | json_get - "[w['paused'] for w in d['snapshot']['workflows'] if w['name'] == 'w1']"; }
tm send-keys -t nav Tab / w 1 Enter   # JOBS -> WORKFLOWS, only w1 listed
sleep 0.5
tm send-keys -t nav Space
sleep 0.6
expect_eq "Space: workflow w1 is paused in the process" "$(wfp)" "[1]"
expect_contains "Space: WORKFLOWS marks it (= and PAUS)" "$(cap nav | grep -oE '=w1 .*')" "PAUS"
tm send-keys -t nav Space
sleep 0.6
expect_eq "Space again: w1 resumed" "$(wfp)" "[0]"

tm send-keys -t nav q
wait_for nav "Quit" 3
tm send-keys -t nav y
