#!/usr/bin/env bash
# test_proxy_slowloris.sh: `quotatop serve` holds no thread per connection, so
# slow and idle clients do not lock others out. 1,000 connections trickling
# a header byte a second (from many 127.0.0.x addresses) while a well-behaved
# client sends 150 requests, each on a new connection: every one answered,
# p99 bounded; the tricklers are cut at their headers budget and counted in
# /metrics. 2,000 idle connections are all accepted and held; a per-address
# cap refuses what is over it; a trickled body is cut at its budget. ~30 s.
source "$(dirname "$0")/lib.sh"
PY=$(python3 -c 'import sys; print(sys.executable)')
SL="$(dirname "$0")/slowloris.py"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4500 ]; then
    pass "slowloris: skipped (open files limit $(ulimit -n) < 4500: raise ulimit -Hn to run it)"
    exit 0
fi

start_mock || exit 1
cat > "$TMP/cfg.json" <<EOF
{"workers": 8,
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"m": {"providers": ["mock"]}},
 "state_dir": "$TMP/state",
 "proxy": {"max_queue": 10000}}
EOF
SERVE_PORT=$(free_port)
bg "$QT_BIN" serve -c "$TMP/cfg.json" --listen "127.0.0.1:$SERVE_PORT" --headless \
    --headers-timeout 3000 --body-timeout 2000 --max-conns-per-client 40 2>>"$TMP/serve.log"
SERVE_PID=$BG_PID
wait_port "$SERVE_PORT" 10 || { fail "start" "serve did not listen"; cat "$TMP/serve.log"; exit 1; }
URL="http://127.0.0.1:$SERVE_PORT"
BODY='{"model":"m","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'
metric() { curl -s "$URL/metrics" | K="$1" awk '$1 == ENVIRON["K"] {print $2; exit}'; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$SERVE_PID/status"; }

th0=$(threads)
# ---- slowloris: 1,000 trickling connections for 14 s ----
"$PY" "$SL" trickle 127.0.0.1 "$SERVE_PORT" 1000 14 1 > "$TMP/trickle.json" &
tp=$!
sleep 2
conns=$(metric quotatop_http_connections)
expect_ge "slowloris: the trickling connections are accepted" "$conns" 900
th1=$(threads)
expect_le "slowloris: no thread per connection (threads $th0 -> $th1)" "$th1" $((th0 + 2))
"$PY" "$SL" probe "$URL/v1/chat/completions" 150 "" "$BODY" > "$TMP/probe.json"
wait "$tp"
P=$(cat "$TMP/probe.json"); T=$(cat "$TMP/trickle.json")
echo "probe: $P"; echo "trickle: $T"
expect_eq "slowloris: every request of the well-behaved client answered 200" \
    "$(echo "$P" | json_get - 'd["ok"]')" 150
expect_le "slowloris: its p99 stays bounded (ms)" "$(echo "$P" | json_get - 'd["p99_ms"]')" 500
expect_ge "slowloris: tricklers are cut at the 3 s headers budget" \
    "$(echo "$T" | json_get - 'd["cut"]')" 1000
expect_ge "slowloris: the cuts are counted in /metrics" \
    "$(metric 'quotatop_proxy_slow_clients_cut_total{phase="headers"}')" 1000

# ---- 2,000 idle connections, held 2.5 s (under the headers budget) ----
"$PY" "$SL" idle 127.0.0.1 "$SERVE_PORT" 2000 2.5 > "$TMP/idle.json" &
ip=$!
sleep 1.5
conns=$(metric quotatop_http_connections)
"$PY" "$SL" probe "$URL/healthz" 20 > "$TMP/probe2.json"
wait "$ip"
expect_ge "idle: 2,000 idle connections open at once" "$conns" 2000
expect_eq "idle: all held until the client let go" "$(json_get "$TMP/idle.json" 'd["open_at_end"]')" 2000
expect_eq "idle: others are still served meanwhile" "$(json_get "$TMP/probe2.json" 'd["ok"]')" 20

# ---- a per-address cap of 40: 60 connections from one address ----
"$PY" "$SL" idle 127.0.0.1 "$SERVE_PORT" 60 1 127.0.0.9 > "$TMP/cap.json"
expect_eq "cap: one address keeps at most 40 connections" "$(json_get "$TMP/cap.json" 'd["open_at_end"]')" 40

# ---- a body that trickles a byte every 0.5 s is cut at its 2 s budget ----
secs=$("$PY" - "$SERVE_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
t0 = time.time()
s.settimeout(0.5)
while time.time() - t0 < 8:
    try:
        if s.recv(1) == b"":
            break
    except socket.timeout:
        s.send(b" ")
    except OSError:
        break
print(round(time.time() - t0, 1))
PY
)
expect_ge "body: a trickled body is not cut before its budget (${secs} s)" "$secs" 1.8
expect_le "body: ... and is cut soon after it" "$secs" 3.5
expect_ge "body: counted" "$(metric 'quotatop_proxy_slow_clients_cut_total{phase="body"}')" 1

kill -TERM "$SERVE_PID"; wait "$SERVE_PID"; rc=$?
expect_eq "sigterm: serve exits 0" "$rc" 0
