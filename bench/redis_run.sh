#!/usr/bin/env bash
# redis_run.sh: what the shared backend costs a `run`, end to end. Jobs per
# second through `quotatop run` against a zero-latency mock with the local
# backend, then with backend.kind "redis" (one process, then three sharing
# the work, against three with the local backend), same workers, same
# model (an RPM limit too high to bind, as in production configs: every
# admission is a real Redis decision, the gate's window of asks per key
# open); and Redis's script calls per job
# (admit + commit + heartbeats, from INFO commandstats).
#   bench/redis_run.sh [BINARY] [JOBS] [WORKERS]      (default 3000, 32)
# Prints "| figure | value | reference | ratio |" rows at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../build/quotatop}
n=${2:-3000}
w=${3:-32}
tmp=$(mktemp -d)
BENCH_NAME=redis_run
source "$here/lib.sh"
if ! command -v redis-server >/dev/null; then
    echo "redis_run: redis-server not installed, skipped"
    exit 0
fi
pids=()
# set +e: under errexit the first wait (137: killed) would end the trap and
# leave redis-server running after the bench.
trap 'set +e; for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
pf=$tmp/port
"$bin" mock --port-file "$pf" 2>/dev/null & pids+=($!)
for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
mport=$(cat "$pf")
rport=$(port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >/dev/null 2>&1 & pids+=($!)
wait_port "$rport" || { log "redis did not start"; exit 1; }

cfg() {   # cfg FILE BACKEND_JSON
    cat > "$1" <<JSON
{"workers": $w, "state_dir": "", "trace": false,
 "providers": {"mock": {"kind": "openai", "base_url": "http://127.0.0.1:$mport/v1"}},
 "models": {"m": {"providers": ["mock"], "rpm": 10000000}}, "backend": $2}
JSON
}
jobs() {   # jobs N PREFIX
    python3 -c "
import json
for i in range($1):
    print(json.dumps({'id': '$2%d' % i, 'model': 'm', 'max_tokens': 16,
                      'messages': [{'role': 'user', 'content': 'Say hello.'}]}))"
}
calls() { redis-cli -p "$rport" INFO commandstats | awk -F'[=,:]' '/^cmdstat_evalsha/ {print $3}' | tr -d '\r'; }
elapsed() { python3 -c "print(round($2 - $1, 3))"; }

cfg "$tmp/local.json" '{"kind": "local"}'
cfg "$tmp/redis.json" "{\"kind\": \"redis\", \"url\": \"redis://127.0.0.1:$rport\", \"prefix\": \"rb\"}"
jobs "$n" a > "$tmp/all.jsonl"
for p in 1 2 3; do jobs $((n / 3)) "p$p-" > "$tmp/p$p.jsonl"; done

t0=$(date +%s.%N)
"$bin" run -c "$tmp/local.json" --headless -o "$tmp/local.out" "$tmp/all.jsonl" 2>/dev/null || true
t1=$(date +%s.%N)
local_s=$(elapsed "$t0" "$t1")
c0=$(calls); c0=${c0:-0}
t0=$(date +%s.%N)
"$bin" run -c "$tmp/redis.json" --headless -o "$tmp/redis.out" "$tmp/all.jsonl" 2>/dev/null || true
t1=$(date +%s.%N)
redis_s=$(elapsed "$t0" "$t1")
c1=$(calls)
three() {   # three CONFIG: the 3 processes at once; prints the elapsed seconds
    local t0 t1 rp=() p
    t0=$(date +%s.%N)
    for p in 1 2 3; do
        "$bin" run -c "$1" --headless -o "$tmp/p$p.out" "$tmp/p$p.jsonl" 2>/dev/null & rp+=($!)
    done
    for p in "${rp[@]}"; do wait "$p" || true; done
    t1=$(date +%s.%N)
    elapsed "$t0" "$t1"
}
local3_s=$(three "$tmp/local.json")
fleet_s=$(three "$tmp/redis.json")
ok_local=$(grep -c '"status":"ok"' "$tmp/local.out" || true)
ok_redis=$(grep -c '"status":"ok"' "$tmp/redis.out" || true)
ok_fleet=$(cat "$tmp"/p?.out | grep -c '"status":"ok"' || true)
n3=$(( (n / 3) * 3 ))
lr=$(python3 -c "print(round($n / $local_s))")
rr=$(python3 -c "print(round($n / $redis_s))")
fr=$(python3 -c "print(round($n3 / $fleet_s))")
l3=$(python3 -c "print(round($n3 / $local3_s))")
cpj=$(python3 -c "print(round(($c1 - $c0) / $n, 2))")
echo "redis_run: local backend $ok_local/$n ok in ${local_s}s ($lr jobs/s); redis, 1 process $ok_redis/$n in ${redis_s}s ($rr jobs/s); 3 processes: local ${local3_s}s ($l3 jobs/s), redis $ok_fleet/$n3 in ${fleet_s}s ($fr jobs/s); $cpj script calls per job (1 process)"
echo "| run jobs/s, redis backend, 1 process, $w workers | $rr | local backend $lr | $(python3 -c "print(round($rr / $lr, 2))")x |"
echo "| run jobs/s, redis backend, 3 processes x $w workers | $fr | local backend, 3 processes $l3 | $(python3 -c "print(round($fr / $l3, 2))")x |"
echo "| Redis script calls per job (admit + commit + heartbeats) | $cpj | 2 (one admit, one commit) | $(python3 -c "print(round($cpj / 2, 2))")x |"
