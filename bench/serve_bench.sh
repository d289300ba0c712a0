#!/usr/bin/env bash
# serve_bench.sh: `quotatop serve` against nginx, each figure a ratio to a
# reference measured in the same run (these machines are shared and noisy).
#
#   upstream   nginx + echo module on two loopback ports: zero latency, and
#              `echo_sleep 2` (an upstream that answers in 2 s); both answer a
#              fixed chat.completion
#   reference  nginx proxy_pass (keep-alive upstream pool) in front of each
#   subject    quotatop serve in front of each (model "fast" / "slow")
#   client     wrk with bench/serve_post.lua; bench/../tests/integration/slowloris.py
#              for the trickling and idle connections
#
#   bench/serve_bench.sh [BINARY] > rows
# Prints table rows "| figure | target | measured | verdict |" on stdout (the
# caller, bench/bench.sh, prints them as one table); progress on stderr.
# Starts nginx twice with its own -p prefix and -c config on free loopback
# ports and kills every process it started by PID. About 100 s.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$(dirname "${1:-$here/../build/quotatop}")" && pwd)/$(basename "${1:-$here/../build/quotatop}")
SL=$here/../tests/integration/slowloris.py
LUA=$here/serve_post.lua
DUR_SLOW=${QT_BENCH_SLOW_S:-10}
DUR_FAST=${QT_BENCH_FAST_S:-5}
ulimit -n "$(ulimit -Hn)" 2>/dev/null
for t in wrk nginx python3; do
    command -v $t >/dev/null || { echo "| serve benches | - | skipped: $t not installed | - |"; exit 0; }
done
ECHO_SO=/usr/lib/nginx/modules/ngx_http_echo_module.so
[ -f "$ECHO_SO" ] || { echo "| serve benches | - | skipped: $ECHO_SO missing | - |"; exit 0; }

tmp=$(mktemp -d /tmp/qt-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for f in "$tmp"/*/nginx.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    wait 2>/dev/null; rm -rf "$tmp"
}
trap cleanup EXIT
BENCH_NAME=serve_bench
source "$(dirname "$0")/lib.sh"

U0=$(port); U2=$(port); P0=$(port); P2=$(port); S=$(port)

nginx_start up "
    server { listen 127.0.0.1:$U0; location / { echo_read_request_body; echo '$ANSWER'; } }
    server { listen 127.0.0.1:$U2; location / { echo_read_request_body; echo_sleep 2; echo '$ANSWER'; } }" || exit 0
nginx_start px "
    upstream u0 { server 127.0.0.1:$U0; keepalive 256; }
    upstream u2 { server 127.0.0.1:$U2; keepalive 4096; }
    server { listen 127.0.0.1:$P0; location / { proxy_pass http://u0; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }
    server { listen 127.0.0.1:$P2; location / { proxy_pass http://u2; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_read_timeout 30s; } }" || exit 0

serve_start() {
    cat > "$tmp/serve.json" <<JSON
{"workers": $1,
 "providers": {"u0": {"kind": "openai", "base_url": "http://127.0.0.1:$U0/v1"},
               "u2": {"kind": "openai", "base_url": "http://127.0.0.1:$U2/v1"}},
 "models": {"fast": {"providers": ["u0"]}, "slow": {"providers": ["u2"]}},
 "retry": {"max_attempts": 1},
 "state_dir": "",
 "proxy": {"listen": "127.0.0.1:$S", "max_queue": 1000000, "max_wait_ms": 600000}}
JSON
    "$bin" serve -c "$tmp/serve.json" --headless 2>"$tmp/serve.log" &
    SERVE_PID=$!
    wait_port "$S" && kill -0 "$SERVE_PID" 2>/dev/null
}
WORKERS=2000
if ! serve_start $WORKERS; then
    WORKERS=1024   # the engine's thread-per-job cap until the event-loop engine lands
    serve_start $WORKERS || { log "serve did not start: $(tail -3 "$tmp/serve.log")"; echo "| serve benches | - | serve did not start | - |"; exit 0; }
fi
pids+=("$SERVE_PID")
for p in $U0 $U2 $P0 $P2; do wait_port "$p" || { log "nginx did not listen on $p"; exit 0; }; done

# run NAME PORT MODEL CONNS SECONDS: wrk; sets rps p50 p99 (ms) err
run() {
    local out
    local th=2; [ "$4" -lt 2 ] && th=1
    out=$(QT_BENCH_MODEL=$3 wrk -t$th -c"$4" -d"$5"s --timeout 10s -s "$LUA" "http://127.0.0.1:$2/v1/chat/completions" 2>&1)
    local r; r=$(echo "$out" | awk '/^RESULT/')
    rps=$(echo "$r" | sed -n 's/.*rps=\([0-9.]*\).*/\1/p')
    p50=$(echo "$r" | sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' | awk '{printf "%.3f", $1/1000}')
    p99=$(echo "$r" | sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' | awk '{printf "%.3f", $1/1000}')
    err=$(echo "$r" | awk '{for(i=1;i<=NF;i++){split($i,a,"="); if(a[1]=="errors"||a[1]=="non2xx") s+=a[2]}} END{print s+0}')
    log "$1: ${rps:-?} req/s p50 ${p50:-?} ms p99 ${p99:-?} ms errors ${err:-?}"
    [ -n "$rps" ] || { rps=0; p50=0; p99=0; }
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0 == 0) print "n/a"; else printf "%.2f", a/b }'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{ printf "%.2f", a-b }'; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN{ ok = (op == ">=") ? (v+0 >= t+0) : (v+0 <= t+0); print (v == "n/a") ? "?" : ok ? "met" : "MISSED" }'; }
row() { printf '| %s | %s | %s | %s |\n' "$@"; }

# warm up keep-alive pools
run warm-serve "$S" fast 8 1 >/dev/null; run warm-nginx "$P0" fast 8 1 >/dev/null

# ---- 1 connection, zero-latency upstream: added over direct ----
run direct-1 "$U0" fast 1 "$DUR_FAST"; d50=$p50; d99=$p99
run serve-1 "$S" fast 1 "$DUR_FAST"; s50=$p50; s99=$p99
run nginx-1 "$P0" fast 1 "$DUR_FAST"; n50=$p50; n99=$p99
a50=$(sub "$s50" "$d50"); a99=$(sub "$s99" "$d99")
row "serve, 1 conn, 0 ms upstream: added p50 over direct (ms; nginx adds $(sub "$n50" "$d50"))" "<= 0.1" "$a50" "$(verdict "$a50" 0.1 "<=")"
row "serve, 1 conn, 0 ms upstream: added p99 over direct (ms; nginx adds $(sub "$n99" "$d99"))" "<= 1" "$a99" "$(verdict "$a99" 1 "<=")"

# ---- 32 connections, zero-latency upstream ----
run nginx-32 "$P0" fast 32 "$DUR_FAST"; nr=$rps
run serve-32 "$S" fast 32 "$DUR_FAST"; sr=$rps; se=$err
r=$(ratio "$sr" "$nr")
row "serve vs nginx proxy_pass, 32 conns, 0 ms upstream: req/s ratio ($sr / $nr, serve errors $se)" ">= 0.8" "$r" "$(verdict "$r" 0.8 ">=")"

# ---- 2,000 connections, 2 s upstream ----
run direct-2000 "$U2" slow 2000 "$DUR_SLOW"; d99=$p99
run nginx-2000 "$P2" slow 2000 "$DUR_SLOW"; nr=$rps; n99=$p99
run serve-2000 "$S" slow 2000 "$DUR_SLOW"; sr=$rps; s99=$p99; se=$err
r=$(ratio "$sr" "$nr")
row "serve vs nginx proxy_pass, 2,000 conns, 2 s upstream: req/s ratio ($sr / $nr; workers $WORKERS, serve errors $se)" ">= 0.95" "$r" "$(verdict "$r" 0.95 ">=")"
a99=$(sub "$s99" "$d99")
row "serve, 2,000 conns, 2 s upstream: added p99 over direct (ms; nginx adds $(sub "$n99" "$d99"))" "<= 10" "$a99" "$(verdict "$a99" 10 "<=")"

# ---- the mock at 10,000 slow requests in flight vs nginx echo_sleep 2 ----
MP=$(port)
"$bin" mock --listen "127.0.0.1:$MP" --latency-ms 2000 2>/dev/null &
pids+=($!)
wait_port "$MP"
run nginx-echo-10000 "$U2" slow 10000 6; nr=$rps
run mock-10000 "$MP" slow 10000 6; mr=$rps; me=$err
r=$(ratio "$mr" "$nr")
row "mock vs nginx echo_sleep, 10,000 conns, 2 s latency: req/s ratio ($mr / $nr, mock errors $me)" ">= 0.9" "$r" "$(verdict "$r" 0.9 ">=")"

# ---- 5,000 trickling connections: a well-behaved client's p99 ----
BODY='{"model":"fast","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'
base=$(python3 "$SL" probe "http://127.0.0.1:$S/v1/chat/completions" 300 "" "$BODY")
b99=$(echo "$base" | python3 -c 'import json,sys; print(json.load(sys.stdin)["p99_ms"])')
python3 "$SL" trickle 127.0.0.1 "$S" 5000 16 1 > "$tmp/trickle.json" &
tp=$!; pids+=("$tp")
sleep 4
under=$(python3 "$SL" probe "http://127.0.0.1:$S/v1/chat/completions" 600 "" "$BODY")
wait "$tp"
u99=$(echo "$under" | python3 -c 'import json,sys; print(json.load(sys.stdin)["p99_ms"])')
uok=$(echo "$under" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])')
log "probe alone: $base"; log "probe under 5,000 tricklers: $under"; log "tricklers: $(cat "$tmp/trickle.json")"
row "serve under 5,000 trickling conns: well-behaved client p99 (ms; alone ${b99} ms, ratio $(ratio "$u99" "$b99"); $uok/600 ok)" "< 50" "$u99" "$(verdict "$u99" 50 "<=")"

# ---- 10,000 idle connections: memory per connection ----
rss() { local t=0; for p in "$@"; do t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo $t; }
nginx_pids() { local m; m=$(cat "$tmp/px/nginx.pid"); echo "$m" $(ps -o pid= --ppid "$m"); }
idle_kb() {   # idle_kb PORT PIDS...: RSS growth (KB) per idle connection
    local port=$1; shift
    local r0; r0=$(rss "$@")
    python3 "$SL" idle 127.0.0.1 "$port" 10000 3 > "$tmp/idle.json" &
    local ip=$!
    sleep 2.5
    local r1; r1=$(rss "$@")
    wait "$ip"
    awk -v a="$r0" -v b="$r1" 'BEGIN{printf "%.1f", (b-a)/10000}'
}
skb=$(idle_kb "$S" "$SERVE_PID"); sheld=$(python3 -c 'import json; print(json.load(open("'"$tmp/idle.json"'"))["open_at_end"])')
nkb=$(idle_kb "$P0" $(nginx_pids))
row "serve, 10,000 idle conns: RSS growth per connection (KB; nginx grows ${nkb} KB: it preallocates worker_connections; $sheld/10000 held)" "little" "$skb" "$( [ "$sheld" = 10000 ] && echo met || echo MISSED)"
