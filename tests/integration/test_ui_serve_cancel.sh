#!/usr/bin/env bash
# test_ui_serve_cancel.sh: cancelling a `serve` request from the dashboard
# answers 410 cancelled_by_operator with x-should-retry: false, a status SDKs
# do not retry (issue 12, defect 15; a 503 made them send the job again), for
# a job in flight and for a queued one. About 8 s.
source "$(dirname "$0")/lib.sh"
use_tmux

start_mock --model slow:latency=20000 --model paced:latency=20000
PORT=$(free_port)
cat > "$TMP/cfg.json" <<JSON
{"workers": 1,
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"slow": {"providers": ["mock"]}},
 "state_dir": ""}
JSON
tm new-session -d -s srv -x 140 -y 40 "cd $TMP && $QT_BIN serve -c cfg.json --listen 127.0.0.1:$PORT 2>serve.err; sleep 30"
wait_port "$PORT" 10 || { fail "serve starts" "no listener"; exit 0; }
wait_for srv "LIMITS" 10 || { fail "dashboard starts" "$(cap srv | head -5)"; exit 0; }

post() {  # post N: a request in the background, its status and headers in $TMP/code.N, hdr.N
    curl -s -m 25 -o "$TMP/body.$1" -D "$TMP/hdr.$1" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary '{"model":"slow","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}' \
        "http://127.0.0.1:$PORT/v1/chat/completions" > "$TMP/code.$1" &
    curls+=($!)
}
curls=()
post 1          # in flight (the one worker sends it; the upstream takes 20 s)
sleep 0.5
post 2          # queued behind it
for i in $(seq 1 30); do [[ "$(cap srv)" == *px-2* ]] && break; sleep 0.1; done
tm send-keys -t srv Tab
sleep 0.3
# cancel every job listed, answering the confirmation each time
for n in 1 2; do
    tm send-keys -t srv x
    wait_for srv "Cancel job" 3
    tm send-keys -t srv y
    sleep 0.5
done
for p in "${curls[@]}"; do wait "$p"; done
for n in 1 2; do
    expect_eq "cancel $n: 410, not a 503 SDKs retry" "$(cat "$TMP/code.$n")" 410
    expect_contains "cancel $n: x-should-retry: false" "$(tr -d '\r' < "$TMP/hdr.$n" | tr A-Z a-z)" "x-should-retry: false"
    expect_contains "cancel $n: code cancelled_by_operator" "$(cat "$TMP/body.$n")" '"code":"cancelled_by_operator"'
done
