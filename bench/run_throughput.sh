#!/usr/bin/env bash
# run_throughput.sh: the scheduler's overhead. Jobs per second through
# `quotatop run` (8 workers, no limits) against a zero-latency mock, and the
# same requests sent straight to the mock by wrk with 8 connections.
#   bench/run_throughput.sh [BINARY] [JOBS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../build/quotatop}
n=${2:-20000}
tmp=$(mktemp -d)
pf=$tmp/port
"$bin" mock --port-file "$pf" 2>/dev/null &
pid=$!
trap 'set +e; kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
port=$(cat "$pf")
cat > "$tmp/cfg.json" <<JSON
{"workers": 8, "providers": {"mock": {"kind": "openai", "base_url": "http://127.0.0.1:$port/v1"}},
 "models": {"gpt-4o-mini": {"providers": ["mock"]}}}
JSON
python3 -c "
import json
for i in range($n):
    print(json.dumps({'id': 'b%d' % i, 'model': 'gpt-4o-mini', 'max_tokens': 16,
                      'messages': [{'role': 'user', 'content': 'Say hello.'}]}))" > "$tmp/jobs.jsonl"
t0=$(date +%s.%N)
"$bin" run -c "$tmp/cfg.json" --headless --workers 8 -o "$tmp/out.jsonl" "$tmp/jobs.jsonl" 2>/dev/null
t1=$(date +%s.%N)
ok=$(grep -c '"status":"ok"' "$tmp/out.jsonl")
run_rate=$(python3 -c "print(round($n / ($t1 - $t0)))")
echo "quotatop run: $ok/$n ok in $(python3 -c "print(round($t1 - $t0, 2))") s = $run_rate jobs/s"
if command -v wrk >/dev/null; then
    direct=$(wrk -t2 -c8 -d5s -s "$here/mock_post.lua" "http://127.0.0.1:$port/v1/chat/completions" \
             | awk '/^Requests\/sec:/ {printf "%d", $2}')
    echo "wrk straight to the mock (8 connections): $direct requests/s"
    echo "scheduler overhead: run reaches $(python3 -c "print(round(100 * $run_rate / $direct, 1))")% of direct throughput"
fi
