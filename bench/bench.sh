#!/usr/bin/env bash
# bench.sh: what `make bench` runs. Every bench, then ONE table of figures.
#   bench/bench.sh BUILD_DIR
# The C benches (build/bench/bench_*) print their own report (shown as they
# run); their headline figures join the table. bench/serve_bench.sh gives
# the serve figures, each a ratio or a difference against a reference
# measured in the same run; bench/run_scale.sh (the engine's `run` figures)
# joins when it exists. bench_http_multi runs twice: on its in-process mock,
# and on a zero-latency nginx (bench/lib.sh) for the client's own ceiling.
# Rows: | figure | target | measured | verdict |.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bin=$build/quotatop
rows=()
add() { rows+=("$1"); }

# http_multi_vs_nginx BENCH: bench_http_multi against an nginx echo upstream
# (bench/lib.sh, whose nginx_start uses this function's $tmp); prints its
# 2-loop ratio to wrk, nothing without nginx. Stops nginx by its PID.
http_multi_vs_nginx() {
    local ECHO_SO=/usr/lib/nginx/modules/ngx_http_echo_module.so BENCH_NAME=bench_http_multi
    command -v nginx >/dev/null && [ -f "$ECHO_SO" ] || return 0
    local tmp; tmp=$(mktemp -d /tmp/qt-hm.XXXXXX)
    source "$here/lib.sh"
    local p; p=$(port)
    if nginx_start ng "server { listen 127.0.0.1:$p; location / { echo_read_request_body; echo '$ANSWER'; } }" \
       && wait_port "$p"; then
        local out; out=$(QT_BENCH_URL=http://127.0.0.1:$p "$1" 2>&1); echo "$out" >&2
        echo "$out" | awk '/2 loops/ && /ratio/ {for (i = 1; i <= NF; i++) if ($i == "ratio") print $(i + 1); exit}'
    fi
    if [ -s "$tmp/ng/nginx.pid" ]; then
        local np; np=$(cat "$tmp/ng/nginx.pid")
        kill "$np" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$np" 2>/dev/null || break; sleep 0.05; done
    fi
    rm -rf "$tmp"
}

for b in "$build"/bench/bench_*; do
    case $b in *.d|*.o) continue ;; esac
    [ -x "$b" ] || continue
    name=$(basename "$b")
    echo "== $name" >&2
    out=$("$b" 2>&1); echo "$out" >&2
    case $name in
    bench_http_multi)
        r=$(echo "$out" | awk '/ratio/ {print $2; exit}')
        [ -n "$r" ] && add "| qt_http_multi vs wrk, 32 in flight, zero-latency in-process mock (the mock is slower than both clients: says little about the client) | - | $r | - |"
        # The same against nginx (faster than either client): the HTTP
        # client's own ceiling for the "run vs wrk" figure (h1 on this
        # plain-HTTP upstream, src/upstream/h1.h), measured in the same run.
        r=$(http_multi_vs_nginx "$b")
        [ -n "$r" ] && add "| qt_http_multi (2 loops, no engine) vs wrk, 32 in flight, zero-latency nginx (h1 client): the client's ceiling for \"run vs wrk\" | - | ${r}x | - |" ;;
    bench_limiter)
        v=$(echo "$out" | awk '/^admit +1 thread/ {print $5; exit}')
        [ -n "$v" ] && add "| limiter reserve+commit, 1 thread (M pairs/s, absolute) | - | $v | - |" ;;
    bench_redis)
        l=$(echo "$out" | awk '/^ratio:/' | head -1)
        r1=$(echo "$l" | sed -n 's/.*--latency avg = \([0-9.]*\).*/\1/p')
        r2=$(echo "$l" | sed -n 's/.*hot PING p50 = \([0-9.]*\).*/\1/p')
        r3=$(echo "$l" | sed -n 's/.*decisions\/s = \([0-9.]*\).*/\1/p')
        r4=$(echo "$l" | sed -n 's/.*paced admission \([0-9.]*\).*/\1/p')
        [ -n "$r1" ] && add "| shared admission p50 through Redis (engine path, 1 in flight) / redis-cli --latency avg | - | ${r1}x (${r2}x a hot PING) | - |"
        [ -n "$r3" ] && add "| shared admissions/s, 3 processes / 1 process (16 in flight each, no binding limit) | - | ${r3}x | - |"
        [ -n "$r4" ] && add "| Redis admit calls per admission, 3 processes on one binding limit | 1 | $r4 | $(awk -v v="$r4" 'BEGIN{print (v+0 <= 1.05) ? "met" : "MISSED"}') |" ;;
    bench_queue)
        v=$(echo "$out" | awk '/^memory/ {print $(NF-2); exit}')
        [ -n "$v" ] && add "| queue memory at 1M queued jobs (RSS bytes/job, absolute) | - | $v | - |" ;;
    *)
        add "| $name | - | $(echo "$out" | tail -1) | - |" ;;
    esac
done

if [ -f "$here/run_scale.sh" ]; then
    # Its rows are | figure | value | reference | ratio |: folded into ours
    # with the issue's targets.
    echo "== run_scale.sh" >&2
    out=$(bash "$here/run_scale.sh" "$bin" 2>&1); echo "$out" >&2
    while IFS= read -r l; do add "$l"; done < <(echo "$out" | grep '^|' | awk -F'|' '
        { fig = $2; val = $3; ref = $4; r = $5; gsub(/^ +| +$/, "", fig); gsub(/^ +| +$/, "", val)
          gsub(/^ +| +$/, "", ref); gsub(/^ +| +$/, "", r); v = r; sub(/x$/, "", v)
          t = "-"; ok = "-"
          if (fig ~ /elapsed/) { t = "<= 1.3x"; ok = (v + 0 <= 1.3) ? "met" : "MISSED" }
          else if (fig ~ /RSS/) { t = "<= 1.0x of 300 MB"; ok = (v + 0 <= 1.0) ? "met" : "MISSED" }
          else if (fig ~ /vs wrk/) { t = ">= 0.6x"; ok = (v + 0 >= 0.6) ? "met" : "MISSED" }
          else if (fig ~ /ok results/) { t = "1.00x"; ok = (v + 0 == 1) ? "met" : "MISSED" }
          printf "| %s (%s vs %s) | %s | %s | %s |\n", fig, val, ref, t, r, ok }')
fi

if [ -f "$here/redis_run.sh" ]; then
    echo "== redis_run.sh" >&2
    out=$(bash "$here/redis_run.sh" "$bin" 2>&1); echo "$out" >&2
    while IFS= read -r l; do add "$l"; done < <(echo "$out" | grep '^|' | awk -F'|' '
        { fig = $2; val = $3; ref = $4; r = $5; gsub(/^ +| +$/, "", fig); gsub(/^ +| +$/, "", val)
          gsub(/^ +| +$/, "", ref); gsub(/^ +| +$/, "", r)
          printf "| %s (%s vs %s) | - | %s | - |\n", fig, val, ref, r }')
fi

echo "== serve_bench.sh" >&2
while IFS= read -r l; do add "$l"; done < <("$here/serve_bench.sh" "$bin")

echo
echo "| figure | target | measured | verdict |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
