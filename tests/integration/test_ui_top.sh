#!/usr/bin/env bash
# test_ui_top.sh: `quotatop top` attached to a headless `serve` through its
# control socket: the socket is private (0600) and announced at start; the
# JOBS panel lists the waiting requests; keys act on the server (p pauses it,
# x cancels a job whose client then gets its answer); Enter opens a job's
# detail; / filters and s sorts; F shows FAILED with the error of a job that
# failed; EVENTS searches and shows an event's full text; a second viewer
# attaches at once; q detaches and the server keeps running; the narrow
# sizes keep numbers whole; another host reaches it over HTTP with the token.
# About 40 s.
source "$(dirname "$0")/lib.sh"

use_tmux
start_mock --latency-ms 100
PORT=$(free_port)
DEAD=$(free_port)
cat >"$TMP/cfg.json" <<EOF
{"workers": 4, "state_dir": "$TMP/state",
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"},
               "dead": {"kind": "openai", "base_url": "http://127.0.0.1:$DEAD/v1", "timeout_ms": 2000}},
 "models": {"m": {"providers": ["mock"], "rpm": 20},
            "broken": {"providers": ["dead"]}},
 "retry": {"max_attempts": 1}, "limits": {"headroom": 1.0},
 "proxy": {"token_env": "QT_TOP_TOKEN", "max_wait_ms": 600000}}
EOF
export QT_TOP_TOKEN=top-test-token
bg "$QT_BIN" serve -c "$TMP/cfg.json" --headless --listen "127.0.0.1:$PORT" 2>"$TMP/serve.err"
SERVE_PID=$BG_PID
wait_port "$PORT" 10 || { fail "top: serve starts" "$(cat "$TMP/serve.err")"; exit 0; }
# the socket opens just after the proxy's port
for ((i = 0; i < 50; i++)); do grep -q 'control socket' "$TMP/serve.err" && break; sleep 0.1; done
sock=$(grep -o 'control socket [^ ]*' "$TMP/serve.err" | cut -d' ' -f3)
expect_contains "serve: names its control socket at start" "$sock" "$TMP/state/serve-"
expect_eq "serve: the control socket is private (0600)" "$(stat -c %a "$sock" 2>/dev/null)" 600

chat() {   # chat ID WORKFLOW MODEL: one request in the background, its answer in $TMP/ans.ID
    curl -s -m 120 -o "$TMP/ans.$1" -w '%{http_code}' "http://127.0.0.1:$PORT/v1/chat/completions" \
        -H "Authorization: Bearer $QT_TOP_TOKEN" -H "X-Quotatop-Workflow: $2" \
        -d "{\"model\": \"$3\", \"messages\": [{\"role\": \"user\", \"content\": \"hello $1\"}]}" \
        >"$TMP/code.$1" &
    _pids+=("$!")
}
chat f1 wfx broken   # fails at once: nothing listens on its provider
for i in 1 2 3 4 5 6; do chat a$i alpha m; done
for i in 1 2 3 4 5 6; do chat b$i beta m; done
sleep 1

tm new-session -d -s top -x 120 -y 40 "cd $TMP && $QT_BIN top -c cfg.json 2>top.err; echo EXIT=\$? >top.exit; sleep 60"
if ! wait_for top "quotatop top > serve" 10; then
    fail "top: attaches" "$(cap top | head -5; cat "$TMP/top.err")"
    exit 0
fi
pass "top: attaches to the headless serve"
wait_for top "queued" 5
s=$(cap top)
for p in LIMITS JOBS WORKFLOWS EVENTS alpha beta; do expect_contains "top: shows $p" "$s" "$p"; done
expect_contains "top: JOBS lists the waiting requests" "$s" "queued"
check "top: the header counts the jobs taken from the queue that wait" \
    grep -Eq "waiting [0-9]+" <<<"$(echo "$s" | head -2)"
expect_eq "top: queued + waiting + on the wire = every job without a result" \
    "$("$QT_BIN" top -c "$TMP/cfg.json" --json | json_get - "(lambda s: s['queued'] + s['waiting'] + s['busy'] - (s['jobs'] - s['done']))(d['snapshot'])")" 0

# keys act on the server: p pauses its dispatch
tm send-keys -t top p
wait_for top "PAUSED" 3
expect_contains "top p: the header says PAUSED" "$(cap top)" "PAUSED"
expect_eq "top p: ... and the server is paused (a second viewer sees it)" \
    "$("$QT_BIN" top -c "$TMP/cfg.json" --json | json_get - "d['snapshot']['paused']")" 1

# Enter opens the selected job's detail; Esc goes back
tm send-keys -t top Tab
sleep 0.4
tm send-keys -t top Enter
wait_for top "chain" 3
d=$(cap top)
expect_contains "Enter: the job's detail shows its chain" "$d" "chain m"
expect_contains "Enter: ... its tokens" "$d" "estimated prompt"
expect_contains "Enter: ... its attempts and waits" "$d" "waits ("
tm send-keys -t top Escape
sleep 0.4
expect_not_contains "Esc: back to the panels" "$(cap top)" "estimated prompt"

# / filters the list; s sorts it
tm send-keys -t top / w f : b e t a Enter
sleep 0.6
s=$(cap top)
expect_contains "/: the filter shows in the title" "$s" "/wf:beta"
# (cut to the JOBS panel: WORKFLOWS, to its right, lists alpha too)
expect_not_contains "/: only beta's jobs are listed" "$(echo "$s" | grep -E '^[ >]px-' | cut -c1-60)" "alpha"
nbeta=$("$QT_BIN" top -c "$TMP/cfg.json" --json | json_get - "len([j for j in d['jobs'] if j['workflow'] == 'beta'])")
expect_eq "/: ... every one of them the server has" "$(echo "$s" | cut -c1-60 | grep -cE '^[ >]px-.*beta')" "$nbeta"
tm send-keys -t top s
sleep 0.4
expect_contains "s: sorted by id (the title says so)" "$(cap top)" "sort id"
tm send-keys -t top / Escape
sleep 0.4
expect_not_contains "/ Esc: the filter is cleared" "$(cap top)" "/wf:beta"

# x cancels the selected job through the socket; its client gets the answer
sel=$(cap top | grep -oE '^>px-[0-9]+' | tr -d '>')
tm send-keys -t top x
wait_for top "Cancel job $sel" 3
tm send-keys -t top y
sleep 1
jobs_now=$("$QT_BIN" top -c "$TMP/cfg.json" --json | json_get - "' '.join(j['id'] for j in d['jobs'])")
expect_not_contains "x: job $sel is gone from the server" " $jobs_now " " $sel "

# F: the FAILED view with the error of the broken request and the cancelled one
tm send-keys -t top F
wait_for top "FAILED" 3
f=$(cap top)
expect_contains "F: FAILED lists the failed job" "$f" "failed"
expect_contains "F: ... and the cancelled one" "$f" "cancelled"
expect_contains "F: ... with its error" "$f" "broken"
tm send-keys -t top F

# EVENTS: focus, search, full text
tm send-keys -t top Tab Tab
sleep 0.3
tm send-keys -t top / c a n c e l Enter
sleep 0.6
e=$(cap top)
expect_contains "EVENTS /: the search shows in the title" "$e" "/cancel"
tm send-keys -t top Enter
wait_for top "Esc back" 3
expect_contains "EVENTS Enter: the full text of the event" "$(cap top)" "cancel"
tm send-keys -t top Escape

# narrow: every panel still there, nothing wider than the terminal
tm resize-window -t top -x 60 -y 15
sleep 1
n=$(cap top)
expect_contains "60x15: still attached" "$n" "quotatop top"
expect_not_contains "60x15: not too small" "$n" "terminal too small"
widest=$(echo "$n" | python3 -c 'import sys; print(max(len(l.rstrip("\n")) for l in sys.stdin))')
expect_le "60x15: nothing wider than the terminal" "$widest" 60
expect_contains "60x15: the RPM pair is whole" "$n" "/20"
tm resize-window -t top -x 120 -y 40

# = sets a limit exactly (LIMITS), and a whole workflow's priority (WORKFLOWS)
tm send-keys -t top Tab   # EVENTS -> LIMITS, the model row selected
sleep 0.3
tm send-keys -t top = 1 2 Enter
sleep 1
expect_eq "=: the RPM limit of m is exactly 12" \
    "$("$QT_BIN" top -c "$TMP/cfg.json" --json | json_get - "d['snapshot']['rows'][0]['rpm']")" 12
expect_contains "=: the dashboard shows it, marked as changed" "$(cap top)" "/12*"
tm send-keys -t top Tab Tab   # -> WORKFLOWS
sleep 0.3
tm send-keys -t top / a l p h a Enter
sleep 0.5
tm send-keys -t top = 2 Enter
sleep 1
prios=$("$QT_BIN" top -c "$TMP/cfg.json" --json |
    json_get - "sorted({j['priority'] for j in d['jobs'] if j['workflow'] == 'alpha'})")
expect_eq "= on a workflow: every alpha job is at priority 2" "$prios" "[2]"
tm send-keys -t top / Escape / b e t a Enter
sleep 0.5
tm send-keys -t top x
wait_for top "Cancel every queued job of workflow beta" 3
tm send-keys -t top y
sleep 1.5
left=$("$QT_BIN" top -c "$TMP/cfg.json" --json |
    json_get - "len([j for j in d['jobs'] if j['workflow'] == 'beta' and j['state'] == 'queued'])")
expect_eq "x on a workflow: no queued beta job is left" "$left" 0
tm send-keys -t top / Escape

# p again resumes; q detaches and leaves the server running
tm send-keys -t top p
wait_for top "RUNNING" 3
tm send-keys -t top q
for ((i = 0; i < 50; i++)); do [ -s "$TMP/top.exit" ] && break; sleep 0.1; done
expect_eq "q: top exits 0" "$(cat "$TMP/top.exit" 2>/dev/null)" "EXIT=0"
expect_contains "q: says it detached" "$(cat "$TMP/top.err")" "detached"
check "q: the server keeps running" kill -0 "$SERVE_PID"
check "q: its control socket is still there" test -S "$sock"
expect_eq "q: ... and it is not paused any more" \
    "$("$QT_BIN" top -c "$TMP/cfg.json" --json | json_get - "d['snapshot']['paused']")" 0

# another host: the proxy's /control with the token
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/control/snapshot")
expect_eq "http: /control needs the token" "$code" 401
mode=$(QUOTATOP_TOKEN=$QT_TOP_TOKEN "$QT_BIN" top --connect "http://127.0.0.1:$PORT" --json | json_get - "d['mode']")
expect_eq "http: top --connect http:// reads a frame" "$mode" serve
ans=$(curl -s "http://127.0.0.1:$PORT/control" -H "Authorization: Bearer $QT_TOP_TOKEN" \
    -d '{"op":"cmd","cmd":{"op":1,"name":"beta","flag":1}}')
expect_contains "http: a command through /control pauses workflow beta" "$ans" "workflow beta paused"

# `run` has a control socket too; headless -v prints the events as lines
{ gen_jobs 3 m 8 gamma r; printf '{"id":"rb","model":"broken","messages":[{"role":"user","content":"x"}]}\n'; sleep 8; } |
    "$QT_BIN" run -c "$TMP/cfg.json" --headless -v -o "$TMP/run.out" - 2>"$TMP/run.err" &
RUN_PID=$!
_pids+=("$RUN_PID")
for ((i = 0; i < 50; i++)); do grep -q 'control socket' "$TMP/run.err" 2>/dev/null && break; sleep 0.1; done
rsock=$(grep -o 'control socket [^ ]*' "$TMP/run.err" | cut -d' ' -f3)
expect_contains "run: names its control socket" "$rsock" "$TMP/state/run-"
expect_eq "run: top attaches to it" "$("$QT_BIN" top --connect "$rsock" --json | json_get - "d['mode']")" run
wait "$RUN_PID"
expect_contains "run -v: events printed as lines" "$(cat "$TMP/run.err")" "] error"

kill "$SERVE_PID" 2>/dev/null
for ((i = 0; i < 100; i++)); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
check "serve: removes its control socket at exit" test ! -e "$sock"
