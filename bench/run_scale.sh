#!/usr/bin/env bash
# run_scale.sh: `quotatop run` at scale (issue 10), each figure a ratio to a
# reference measured in the same run (these machines are shared and noisy).
#
#   upstream   nginx + echo module on loopback: zero latency, and
#              `echo_sleep 2` (answers in 2 s); both answer a fixed
#              chat.completion
#   figures    run, 10,000 jobs, workers 10,000, 2 s upstream: elapsed
#              against the ideal 2 s, and peak RSS;
#              run vs wrk straight to the zero-latency upstream at the same
#              concurrency (jobs/s against wrk's req/s); and the 10,000-job
#              time against bench/bare_client's for the same POSTs (the
#              least any client can do: what the kernel and nginx cost)
#
#   bench/run_scale.sh [BINARY] [JOBS] [CONNS]
# Prints "| figure | value | reference | ratio |" lines on stdout, progress on
# stderr. Starts one nginx with its own -p prefix and -c config on free
# loopback ports and kills everything it started by PID. About 40 s.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$(dirname "${1:-$here/../build/quotatop}")" && pwd)/$(basename "${1:-$here/../build/quotatop}")
N=${2:-10000}
CONNS=${3:-32}
FASTN=${QT_BENCH_FAST_JOBS:-20000}
ulimit -n "$(ulimit -Hn)" 2>/dev/null
for t in wrk nginx python3; do
    command -v $t >/dev/null || { echo "| run benches | skipped: $t not installed | - | - |"; exit 0; }
done
ECHO_SO=/usr/lib/nginx/modules/ngx_http_echo_module.so
[ -f "$ECHO_SO" ] || { echo "| run benches | skipped: $ECHO_SO missing | - | - |"; exit 0; }

tmp=$(mktemp -d /tmp/qt-runbench.XXXXXX)
cleanup() {
    [ -s "$tmp/ng/nginx.pid" ] && kill "$(cat "$tmp/ng/nginx.pid")" 2>/dev/null
    wait 2>/dev/null; rm -rf "$tmp"
}
trap cleanup EXIT
BENCH_NAME=run_scale
source "$(dirname "$0")/lib.sh"

U0=$(port); U2=$(port)
nginx_start ng "
    server { listen 127.0.0.1:$U0 backlog=16384; location / { echo_read_request_body; echo '$ANSWER'; } }
    server { listen 127.0.0.1:$U2 backlog=16384; location / { echo_read_request_body; echo_sleep 2; echo '$ANSWER'; } }" \
    || { echo "| run benches | nginx did not start | - | - |"; exit 0; }
for p in $U0 $U2; do wait_port "$p" || { echo "| run benches | nginx did not listen | - | - |"; exit 0; }; done

cat > "$tmp/cfg.json" <<JSON
{"state_dir": "",
 "providers": {"u0": {"kind": "openai", "base_url": "http://127.0.0.1:$U0/v1", "timeout_ms": 60000},
               "u2": {"kind": "openai", "base_url": "http://127.0.0.1:$U2/v1", "timeout_ms": 60000}},
 "models": {"fast": {"providers": ["u0"]}, "slow": {"providers": ["u2"]}},
 "retry": {"max_attempts": 1}}
JSON
jobs() {
    python3 - "$1" "$2" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"id": "j%d" % i, "model": sys.argv[2], "max_tokens": 16,
                      "messages": [{"role": "user", "content": "Say hello in five words."}]}))
PY
}
# runq WORKERS JOBSFILE: runs and prints "elapsed_s maxrss_kb ok"
runq() {
    ${QT_BENCH_WRAP:-} python3 - "$bin" "$tmp/cfg.json" "$1" "$2" "$tmp/out.jsonl" "$tmp/sum.json" <<'PY'
import json, resource, subprocess, sys
b, cfg, w, jobs, out, summ = sys.argv[1:]
subprocess.run([b, "run", "-c", cfg, "--headless", "--workers", w, "-o", out, "--summary", summ, jobs],
               stderr=subprocess.DEVNULL)
s = json.load(open(summ))
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(s["elapsed_s"], ru.ru_maxrss, s["ok"], "%.2f" % (ru.ru_utime + ru.ru_stime))
PY
}

[ -n "${QT_BENCH_ONLY_FAST_N:-}" ] && { jobs "$N" fast > "$tmp/f.jsonl"; runq "${QT_BENCH_W:-$N}" "$tmp/f.jsonl" >&2; exit 0; }
# 1. N jobs, workers N, against the 2 s upstream.
jobs "$N" slow > "$tmp/slow.jsonl"
log "run: $N jobs, workers $N, 2 s upstream"
read -r el rss ok cpu <<<"$(runq "$N" "$tmp/slow.jsonl")"
log "  elapsed ${el}s, max RSS $((rss / 1024)) MB, ok $ok/$N, CPU ${cpu}s, load $(cut -d" " -f1 /proc/loadavg)"
echo "| run $N jobs, workers $N, 2 s upstream: elapsed (s) | $el | ideal 2.000 | $(python3 -c "print('%.2fx' % ($el / 2.0))") |"
echo "| run $N jobs, workers $N, 2 s upstream: peak RSS (MB) | $((rss / 1024)) | aim 300 | $(python3 -c "print('%.2fx' % ($rss / 1024 / 300))") |"
echo "| run $N jobs, workers $N, 2 s upstream: ok results | $ok | $N | $(python3 -c "print('%.2fx' % ($ok / $N))") |"
# The same N POSTs from bench/bare_client.c (one epoll thread, nothing
# parsed): what the kernel and nginx cost here, measured right after.
bare=$(dirname "$bin")/bench/bare_client
if [ -x "$bare" ]; then
    bo=$("$bare" "$U2" "$N" slow)
    bt=$(echo "$bo" | sed -n 's/.*all answered at \([0-9.]*\) s.*/\1/p')
    bs=$(echo "$bo" | sed -n 's/.*all sent at \([0-9.]*\) s.*/\1/p')
    log "  bare client: ${bs:-?} s to send all, ${bt:-?} s in all"
    [ -n "$bt" ] && echo "| run $N jobs, workers $N, 2 s upstream: time against a bare epoll client's for the same POSTs (bare sent all in ${bs:-?} s) | $el | bare $bt | $(python3 -c "print('%.2fx' % ($el / $bt))") |"
fi

# 2. run vs wrk straight to the zero-latency upstream, same concurrency.
jobs "$FASTN" fast > "$tmp/fast.jsonl"
log "run: $FASTN jobs, workers $CONNS, zero-latency upstream"
read -r el rss ok cpu <<<"$(runq "$CONNS" "$tmp/fast.jsonl")"
run_rps=$(python3 -c "print('%.0f' % ($ok / $el))")
log "wrk: -c$CONNS straight to the upstream"
wrk_rps=$(QT_BENCH_MODEL=fast wrk -t2 -c"$CONNS" -d5s -s "$here/serve_post.lua" \
          "http://127.0.0.1:$U0/v1/chat/completions" 2>&1 | sed -n 's/^RESULT rps=\([0-9.]*\).*/\1/p')
log "  run ${run_rps} jobs/s ($ok ok in ${el}s), wrk ${wrk_rps} req/s"
echo "| run vs wrk, $CONNS in flight, zero-latency upstream (req/s) | $run_rps | wrk $wrk_rps | $(python3 -c "print('%.2fx' % ($run_rps / max(1.0, float('${wrk_rps:-0}' or 0))))") |"
