#!/usr/bin/env bash
# test_ui_demo.sh: `quotatop demo`. The headless story (429s retried, a
# circuit opening, falling back, probing HALF_OPEN and closing, a budget
# warning) runs in the background while tmux checks that the dashboard draws
# every panel at 80x24 and at 200x60, follows a live resize, cycles themes,
# opens the help, and restores the terminal on SIGTERM. About 50 s.
source "$(dirname "$0")/lib.sh"

use_tmux
# panels PANE SIZE: every panel's title, the footer and a model row are on screen
panels() {
    local s
    s=$(cap "$1")
    for p in "quotatop demo" LIMITS HISTORY JOBS WORKFLOWS EVENTS "requests/s" gpt-4o claude-sonnet "q Quit"; do
        expect_contains "demo $2: shows '$p'" "$s" "$p"
    done
    expect_contains "demo $2: the header counts rejected jobs on their own" "$s" " rej"
    expect_contains "demo $2: ... and invalid ones" "$s" " inv"
    local widest
    widest=$(echo "$s" | python3 -c 'import sys; print(max((len(l.rstrip("\n")) for l in sys.stdin), default=0))')
    expect_le "demo $2: nothing wider than the terminal" "$widest" "${2%x*}"
}

# ---- flags ----
"$QT_BIN" demo --bogus >/dev/null 2>"$TMP/e"; expect_eq "demo: unknown option exits 2" "$?" 2
"$QT_BIN" demo --duration -3 >/dev/null 2>&1; expect_eq "demo: bad --duration exits 2" "$?" 2
expect_contains "demo: --help" "$("$QT_BIN" demo --help)" "--headless"
"$QT_BIN" demo --print-config >"$TMP/demo.json"
expect_eq "demo: its config is valid" "$("$QT_BIN" check -c "$TMP/demo.json" >/dev/null 2>&1; echo $?)" 0

# ---- the headless story, in the background ----
( "$QT_BIN" demo --headless --duration 48 2>"$TMP/story.txt"; echo $? >"$TMP/story.rc" ) &
story=$!
_pids+=("$story")

# ---- 80x24 ----
tm new-session -d -s small -x 80 -y 24 \
    "sh -c 'echo \$\$ >$TMP/small.pid; exec $QT_BIN demo --duration 90'; echo EXIT=\$? >$TMP/small.exit; stty -a >$TMP/small.stty; sleep 60"
tm new-session -d -s big -x 200 -y 60 "$QT_BIN demo --duration 90 --theme dark; sleep 60"
wait_for small "EVENTS" 10
wait_for big "EVENTS" 10
sleep 6   # traffic, plots and events fill in
panels small 80x24
panels big 200x60
expect_contains "demo 200x60: wide limits table has p50/p95" "$(cap big)" "p50/p95"
expect_contains "demo 200x60: --theme dark is used" "$(cap big)" "theme dark"

# live resize (KEY_RESIZE): 200x60 -> 80x24
tm resize-window -t big -x 80 -y 24
sleep 1
panels big "80x24 (after resize)"

# themes and help
tm send-keys -t small t
wait_for small "theme dark" 3
expect_contains "t: cycles to the next theme" "$(cap small)" "theme dark"
tm send-keys -t small '?'
wait_for small "this help" 3
expect_contains "?: help lists the keys" "$(cap small)" "pause / resume all dispatch"
tm send-keys -t small Escape
sleep 0.5
expect_not_contains "?: any key closes the help" "$(cap small)" "this help"

# a malformed theme file: clear message naming file and line, default used
printf 'text = white\ngauge_ok = green, black, sparkle\n' >"$TMP/bad.theme"
tm new-session -d -s bad -x 100 -y 30 "$QT_BIN demo --duration 3 --theme $TMP/bad.theme 2>$TMP/bad.err; sleep 30"
wait_for bad "LIMITS" 10
expect_contains "theme: malformed file reported in the dashboard" "$(cap bad)" "bad.theme:2"
for ((i = 0; i < 80; i++)); do grep -q "bad.theme" "$TMP/bad.err" 2>/dev/null && break; sleep 0.1; done
expect_contains "theme: ... and on stderr with the line" "$(cat "$TMP/bad.err")" "bad.theme:2: unknown attribute 'sparkle'"

# SIGTERM: the terminal comes back
kill -TERM "$(cat "$TMP/small.pid")"
for ((i = 0; i < 100; i++)); do [ -s "$TMP/small.exit" ] && break; sleep 0.1; done
expect_eq "SIGTERM: demo exits 0" "$(cat "$TMP/small.exit" 2>/dev/null)" "EXIT=0"
expect_eq "SIGTERM: alternate screen left" "$(tm display -p -t small '#{alternate_on}')" 0
expect_contains "SIGTERM: terminal back in canonical mode" " $(cat "$TMP/small.stty") " " icanon "

# q in the demo (work is always pending there): confirm, then quit
tm send-keys -t big q
wait_for big "Quit?" 3
tm send-keys -t big y
sleep 1.5
expect_eq "q: demo left the alternate screen" "$(tm display -p -t big '#{alternate_on}')" 0

# ---- the story ----
wait "$story"
st=$(cat "$TMP/story.txt")
expect_eq "story: demo --headless exits 0" "$(cat "$TMP/story.rc")" 0
expect_contains "story: progress lines" "$st" "done "
expect_contains "story: mock ports named" "$st" "mocks on 127.0.0.1:"
expect_contains "story: a 429 retried after Retry-After" "$st" "rate_limited"
expect_contains "story: gpt-4o circuit opens" "$st" "circuit gpt-4o closed -> open"
expect_contains "story: traffic falls back to the other provider" "$st" "fallback gpt-4o -> claude-sonnet"
expect_contains "story: the circuit probes HALF_OPEN" "$st" "circuit gpt-4o open -> half_open"
expect_contains "story: ... and closes again" "$st" "circuit gpt-4o half_open -> closed"
expect_contains "story: a workflow crosses its budget warning" "$st" "budget passed 80% (workflow nightly-eval)"
expect_contains "story: summary at the end" "$st" "quotatop: "
n429=$(grep -c "rate_limited" <<<"$st")
expect_ge "story: a few 429s ($n429)" "$n429" 1
expect_le "story: ... not a flood" "$n429" 60
