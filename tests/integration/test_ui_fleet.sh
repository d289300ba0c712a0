#!/usr/bin/env bash
# test_ui_fleet.sh: `quotatop top` with the shared backend shows the whole
# fleet. Two processes share one quota through a real redis-server (a
# headless `serve`, A, and a headless `run`, B, that does all the sending);
# `top` attaches to A and shows: the header's fleet marker (2 processes),
# LIMITS counting the fleet's requests (B's, though A sent none), the
# fleet's day spend, and P's FLEET view listing both processes (host, pid,
# serve and run, which one top is attached to). Keys act fleet-wide through
# top (p pauses B too), a process that leaves drops out of FLEET, and
# Redis going away is said in FLEET. The frame's JSON (`top --json`, the
# control socket and the proxy's /control over HTTP) carries the same view.
# Skips when redis-server is not installed. About 30 s.
source "$(dirname "$0")/lib.sh"

if ! command -v redis-server >/dev/null; then
    echo "SKIP test_ui_fleet: redis-server not installed"
    exit 0
fi
use_tmux
REDIS_PORT=$(free_port)
bg redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" >"$TMP/redis.log" 2>&1
REDIS_PID=$BG_PID
wait_port "$REDIS_PORT" 10 || { fail "fleet: redis starts" "$(cat "$TMP/redis.log")"; exit 0; }
start_mock --latency-ms 200
PORT=$(free_port)
# A and B each with their own state_dir (so top -c a.json finds A's socket)
for n in a b; do
    cat >"$TMP/$n.json" <<EOF
{"workers": 4, "state_dir": "$TMP/st$n",
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"m": {"providers": ["mock"], "rpm": 600, "tpm": 600000,
                  "input_usd_per_mtok": 100, "output_usd_per_mtok": 100}},
 "limits": {"headroom": 1.0}, "budget": {"day_usd": 50},
 "backend": {"kind": "redis", "url": "redis://127.0.0.1:$REDIS_PORT", "prefix": "uifleet", "lease_ms": 3000}}
EOF
done
bg "$QT_BIN" serve -c "$TMP/a.json" --headless --listen "127.0.0.1:$PORT" 2>"$TMP/a.err"
A_PID=$BG_PID
wait_port "$PORT" 10 || { fail "fleet: serve A starts" "$(cat "$TMP/a.err")"; exit 0; }
# B: 1 request/s for as long as the test needs it (intake stays open)
{ for i in $(seq 1 60); do [ -e "$TMP/stop" ] && break; gen_jobs 1 m 16 default "b$i-"; sleep 0.5; done; } 2>/dev/null |
    "$QT_BIN" run -c "$TMP/b.json" --headless -v -o "$TMP/b.out" - 2>"$TMP/b.err" &
B_PID=$!
_pids+=("$B_PID")

frame() { "$QT_BIN" top -c "$TMP/a.json" --json; }
for ((i = 0; i < 50; i++)); do
    [ "$(frame 2>/dev/null | json_get - "len(d.get('fleet', {}).get('procs', []))" 2>/dev/null)" = 2 ] && break
    sleep 0.2
done
js=$(frame)
expect_eq "json: the frame of A carries the fleet's 2 processes" \
    "$(echo "$js" | json_get - "sorted(p['pid'] for p in d['fleet']['procs'])")" \
    "$(python3 -c "print(sorted([$A_PID, $B_PID]))")"
expect_eq "json: ... serve and run" "$(echo "$js" | json_get - "sorted(p['mode'] for p in d['fleet']['procs'])")" \
    "['run', 'serve']"
expect_eq "json: ... A is the one reporting (self)" \
    "$(echo "$js" | json_get - "[p['pid'] for p in d['fleet']['procs'] if p['self']]")" "[$A_PID]"
sleep 3   # B sends a few
expect_eq "json: A itself sent nothing" "$(frame | json_get - "d['snapshot']['rows'][0]['requests']")" 0

tm new-session -d -s top -x 120 -y 40 "cd $TMP && $QT_BIN top -c a.json 2>top.err; sleep 60"
if ! wait_for top "fleet 2 procs" 10; then
    fail "fleet: top shows the fleet marker" "$(cap top | head -5; cat "$TMP/top.err")"
    exit 0
fi
pass "top: the header says 2 processes share the quota"
s=$(cap top)
expect_contains "top: LIMITS counts the fleet (its column says so)" "$s" "fleet RPM"
# the model's row: B's requests against the one limit, though A sent none
used=$(echo "$s" | grep -E '^ m ' | grep -oE '[0-9.]+k?/600' | head -1 | cut -d/ -f1)
expect_ge "top: LIMITS shows the fleet's requests of the last minute (B's)" "${used:-0}" 2
expect_contains "top: the header's day spend is the fleet's" "$s" "fleet day \$"
expect_contains "top: the footer offers P" "$s" "P Fleet"

# P: the FLEET view lists both processes
tm send-keys -t top P
wait_for top "FLEET" 3
f=$(cap top)
expect_contains "P: the FLEET view" "$f" "FLEET  2 processes"
arow=$(echo "$f" | grep -E "^[ >][^ ]+ +$A_PID serve")
brow=$(echo "$f" | grep -E "^[ >][^ ]+ +$B_PID run")
expect_contains "P: lists A (serve), the one top is attached to" "$arow" "attached"
check "P: lists B (run)" test -n "$brow"
expect_not_contains "P: ... B is not marked attached" "$brow" "attached"
expect_contains "P: says Redis is up" "$f" "redis up"
expect_contains "P: today's fleet spend against the day budget" "$f" "of \$50.00"
spent=$(frame | json_get - "d['fleet']['day_spent_usd'] > 0")
expect_eq "json: the fleet's spend is B's, above 0" "$spent" True
# s sorts the processes (by pid: the title says so)
tm send-keys -t top s s
sleep 0.5
expect_contains "s: FLEET sorted by pid" "$(cap top)" "sort pid"
# / filters them
tm send-keys -t top / m o d e : r u n Enter
sleep 0.5
f=$(cap top)
expect_not_contains "/mode:run: A is filtered out" "$f" " $A_PID serve"
expect_contains "/mode:run: B stays" "$f" " $B_PID run"
tm send-keys -t top / Escape

# p in top attached to A pauses the fleet: B stops too
tm send-keys -t top p
wait_for top "PAUSED fleet-wide" 5
expect_contains "p: FLEET says the fleet is paused" "$(cap top)" "PAUSED fleet-wide"
for ((i = 0; i < 30; i++)); do grep -q "paused (fleet)" "$TMP/b.err" && break; sleep 0.1; done
expect_contains "p: ... and B, the other process, paused" "$(cat "$TMP/b.err")" "paused (fleet)"
tm send-keys -t top p
wait_for top "RUNNING" 3
for ((i = 0; i < 30; i++)); do [ "$(frame | json_get - "d['fleet']['paused']")" = 0 ] && break; sleep 0.1; done
expect_eq "p again: the fleet runs again" "$(frame | json_get - "d['fleet']['paused']")" 0

# the HTTP route carries the fleet too (another host)
expect_eq "http: /control's frame carries the fleet" \
    "$("$QT_BIN" top --connect "http://127.0.0.1:$PORT" --json | json_get - "len(d['fleet']['procs'])")" 2

# B leaves: FLEET shows one process
touch "$TMP/stop"
kill "$B_PID" 2>/dev/null
wait "$B_PID" 2>/dev/null
wait_for top "1 process," 6
f=$(cap top)
expect_contains "B left: FLEET shows 1 process" "$f" "FLEET  1 process,"
expect_not_contains "B left: ... not B" "$f" " $B_PID run"

# Redis goes away: FLEET says so and what A does meanwhile
kill -9 "$REDIS_PID" 2>/dev/null
wait "$REDIS_PID" 2>/dev/null
wait_for top "REDIS DOWN" 8
expect_contains "Redis down: FLEET says so" "$(cap top | grep -A8 FLEET)" "REDIS DOWN"
tm send-keys -t top q
