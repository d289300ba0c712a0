#!/usr/bin/env bash
# proxy_latency.sh: what `quotatop serve` adds in front of an upstream,
# measured with wrk against `quotatop mock` (no latency, no limits):
#   direct   wrk -> mock
#   serve    wrk -> quotatop serve -> mock   (queue, limiter, budget, libcurl)
#   nginx    wrk -> nginx proxy_pass -> mock (the reference reverse proxy)
# Each at 1 connection (added latency, p50/p99) and at CONNS connections
# (throughput). Prints one table.
#   bench/proxy_latency.sh [BINARY] [SECONDS] [CONNS]
# Needs wrk; nginx is optional (apt-get install wrk nginx). Runs nginx as the
# current user from a temporary prefix on a loopback port; nothing is kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$(dirname "${1:-$here/../build/quotatop}")" && pwd)/$(basename "${1:-$here/../build/quotatop}")
secs=${2:-8}
conns=${3:-32}
command -v wrk >/dev/null || { echo "proxy_latency: wrk not found (apt-get install wrk)" >&2; exit 2; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

mp=$(port); sp=$(port); np=$(port)
"$bin" mock --listen "127.0.0.1:$mp" 2>/dev/null & pids+=($!)
cat > "$tmp/cfg.json" <<JSON
{"workers": $conns,
 "providers": {"mock": {"kind": "openai", "base_url": "http://127.0.0.1:$mp/v1"}},
 "models": {"bench": {"providers": ["mock"]}},
 "state_dir": "$tmp/state",
 "proxy": {"listen": "127.0.0.1:$sp", "max_queue": 100000}}
JSON
"$bin" serve -c "$tmp/cfg.json" --headless 2>"$tmp/serve.log" & pids+=($!)
have_nginx=0
if command -v nginx >/dev/null; then
    mkdir -p "$tmp/nginx/logs"
    cat > "$tmp/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body; proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fcgi; uwsgi_temp_path $tmp/nginx/uwsgi; scgi_temp_path $tmp/nginx/scgi;
    upstream mock { server 127.0.0.1:$mp; keepalive 64; }
    server {
        listen 127.0.0.1:$np;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
CONF
    nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' 2>"$tmp/nginx/stderr" & pids+=($!)
    have_nginx=1
fi
wait_port "$mp" && wait_port "$sp" || { echo "proxy_latency: servers did not start" >&2; cat "$tmp/serve.log" >&2; exit 1; }
[ "$have_nginx" = 1 ] && { wait_port "$np" || have_nginx=0; }

# run NAME PORT CONNS: one wrk run; prints "NAME CONNS rps p50_ms p99_ms non2xx"
run() {
    local out
    out=$(wrk -t"$(( $3 < 2 ? 1 : 2 ))" -c"$3" -d"${secs}s" -s "$here/proxy_post.lua" "http://127.0.0.1:$2/v1/chat/completions")
    awk -v n="$1" -v c="$3" '
        /^Requests\/sec:/ {rps=$2} /^p50_us/ {p50=$2} /^p99_us/ {p99=$2} /^non2xx/ {bad=$2}
        END {printf "%-7s %5d %10.0f %9.3f %9.3f %7d\n", n, c, rps, p50/1000, p99/1000, bad}' <<< "$out"
}
printf "%-7s %5s %10s %9s %9s %7s\n" target conns req/s p50_ms p99_ms non2xx
for c in 1 "$conns"; do
    run direct "$mp" "$c"
    run serve "$sp" "$c"
    [ "$have_nginx" = 1 ] && run nginx "$np" "$c"
done
echo "(mock: no latency, no limits; serve: $conns workers, no limits; $(nproc) cores; ${secs}s per run)"
