# bench/lib.sh: what the shell benches share (sourced; set BENCH_NAME, ECHO_SO and
# tmp first). port gives a free loopback port, wait_port waits for one to
# listen, log writes to stderr, ANSWER is the chat.completion the nginx
# upstreams return, and nginx_start NAME SERVER_BLOCKS starts an nginx with
# the echo module (2 workers, its own prefix under $tmp/NAME, daemon with a
# pid file the caller's cleanup kills).
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
log() { echo "$BENCH_NAME: $*" >&2; }
ANSWER='{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how are you?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}}'

nginx_start() {
    local d=$tmp/$1
    mkdir -p "$d/logs"
    cat > "$d/nginx.conf" <<CONF
load_module $ECHO_SO;
worker_processes 2;
worker_rlimit_nofile 40000;
pid $d/nginx.pid;
error_log $d/logs/error.log error;
daemon on;
events { worker_connections 20000; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $d/body; proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fcgi; uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    default_type application/json;
$2
}
CONF
    nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" 2>>"$tmp/nginx.err" \
        || { log "nginx $1 failed: $(cat "$tmp/nginx.err")"; return 1; }
}
