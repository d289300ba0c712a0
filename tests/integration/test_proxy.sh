#!/usr/bin/env bash
# test_proxy.sh: `quotatop serve` in front of `quotatop mock`, driven by curl:
# start-up refusals, plain and streamed completions (OpenAI and Anthropic
# upstreams), fallback, headers, every error path in OpenAI's error shape,
# budget, upstream failures, backpressure (wait and queue full), auth,
# disconnect while queued or waiting, slow and half-open connections,
# /metrics content and escaping, no upstream key in any output, SIGTERM.
# About 25 s. The openai SDK and the Prometheus parser: test_proxy_sdk.sh.
source "$(dirname "$0")/lib.sh"
# The interpreter itself, not a version-manager shim (those cost ~0.5 s a call).
PY=$(python3 -c 'import sys; print(sys.executable)')
python3() { "$PY" "$@"; }

UPKEY="sk-upstream-$RANDOM$RANDOM-secret"
export QT_UP_KEY=$UPKEY
PXTOKEN="px-token-$RANDOM$RANDOM"

# req METHOD URL [BODY] [CURL ARGS...]: sets CODE, BODY, HDRS (lowercase names, no CR).
# The body is sent only when BODY is not "-".
req() {
    local m=$1 url=$2 body=${3:--}; shift 3 2>/dev/null || shift $#
    local data=()
    [ "$body" != "-" ] && data=(-H 'Content-Type: application/json' --data-binary "$body")
    CODE=$(curl -s -X "$m" -o "$TMP/body" -D "$TMP/hdrs" -w '%{http_code}' "${data[@]}" "$@" "$url")
    BODY=$(cat "$TMP/body")
    HDRS=$(tr -d '\r' < "$TMP/hdrs" | awk -F': ' 'NF>1 {print tolower($1) ": " $2}')
    cat "$TMP/body" "$TMP/hdrs" >> "$TMP/all_output"
}
hdr() { echo "$HDRS" | awk -F': ' -v n="$1" '$1 == n {print $2; exit}'; }
jget() { echo "$BODY" | json_get - "$1" 2>/dev/null; }
# is_oai_error: BODY is exactly OpenAI's error shape
is_oai_error() {
    echo "$BODY" | python3 -c '
import json, sys
d = json.load(sys.stdin)
e = d["error"]
assert set(d) == {"error"} and set(e) == {"message", "type", "param", "code"}, d
assert isinstance(e["message"], str) and e["message"] and isinstance(e["type"], str), d
' 2>/dev/null
}
# expect_error NAME CODE ERRCODE: checks status, shape and error.code
expect_error() {
    expect_eq "$1: status" "$CODE" "$2"
    if is_oai_error; then pass "$1: OpenAI error shape"; else fail "$1: OpenAI error shape" "${BODY:0:200}"; fi
    [ -n "${3:-}" ] && expect_eq "$1: error.code" "$(jget 'd["error"]["code"]')" "$3"
}
msg() { printf '{"model":"%s","max_tokens":%s,"messages":[{"role":"user","content":"%s"}]%s}' "$1" "$2" "$3" "${4:-}"; }
metrics() { curl -s "$@" "$SERVE_URL/metrics" | tee -a "$TMP/all_output"; }
# metric TEXT 'name{labels}': prints the sample's value
metric() { echo "$1" | K="$2" awk '$1 == ENVIRON["K"] {print $2; exit}'; }

# start_serve CONFIG [ARGS...]: sets SERVE_PORT, SERVE_URL, SERVE_PID
start_serve() {
    local cfg=$1; shift
    SERVE_PORT=$(free_port)
    bg "$QT_BIN" serve -c "$cfg" --listen "127.0.0.1:$SERVE_PORT" --headless "$@" 2>>"$TMP/serve.log"
    SERVE_PID=$BG_PID
    SERVE_URL="http://127.0.0.1:$SERVE_PORT"
    wait_port "$SERVE_PORT" 10 || { fail "start_serve" "serve did not listen on $SERVE_PORT"; cat "$TMP/serve.log"; exit 1; }
}

# write_config FILE EXTRA_PROXY_JSON EXTRA_TOP_JSON
write_config() {
    cat > "$1" <<EOF
{
  "workers": ${4:-4},
  "providers": {
    "oa": {"kind": "openai", "base_url": "$MOCK_URL/v1", "api_key_env": "QT_UP_KEY"},
    "an": {"kind": "anthropic", "base_url": "$MOCK_URL/v1", "api_key_env": "QT_UP_KEY"}
  },
  "models": {
    "gpt-4o":  {"providers": ["oa"], "input_usd_per_mtok": 2.5, "output_usd_per_mtok": 10},
    "claude":  {"providers": ["an"], "upstream_model": "claude-x", "input_usd_per_mtok": 3, "output_usd_per_mtok": 15},
    "primary": {"providers": ["oa"], "fallback": ["claude"]},
    "broken":  {"providers": ["oa"]},
    "badreq":  {"providers": ["oa"]},
    "lag":     {"providers": ["oa"]},
    "slow":    {"providers": ["oa"], "rpm": 1}
  },
  "retry": {"max_attempts": 2, "base_ms": 10, "cap_ms": 50},
  "circuit": {"failure_threshold": 1000},
  "budget": {"workflows": {"capped": 0.0000001}},
  "state_dir": "$TMP/state",
  "proxy": {$2}
  ${3:-}
}
EOF
}

start_mock --require-key-env QT_UP_KEY --model broken:fail=1 --model badreq:context=10 \
    --model primary:outage=0-100000 --model lag:latency=3000 || exit 1

# ---------------------------------------------------------------- flags, refusals
"$QT_BIN" serve --help >/dev/null; expect_eq "flags: --help exits 0" "$?" 0
"$QT_BIN" serve --bogus >/dev/null 2>&1; expect_eq "flags: unknown option exits 2" "$?" 2
"$QT_BIN" serve >/dev/null 2>&1; expect_eq "flags: missing -c exits 2" "$?" 2
write_config "$TMP/a.json" '"max_wait_ms": 5000, "max_body_bytes": 4096'
"$QT_BIN" serve -c "$TMP/a.json" --listen "0.0.0.0:$(free_port)" --headless 2>"$TMP/e"; rc=$?
expect_eq "refuse: non-loopback without token exits 2" "$rc" 2
expect_contains "refuse: message names the token rule" "$(cat "$TMP/e")" "without a token"
"$QT_BIN" serve -c "$TMP/a.json" --listen "nohost" --headless 2>"$TMP/e"
expect_eq "refuse: bad listen address exits 2" "$?" 2
"$QT_BIN" serve -c "$TMP/a.json" --listen "127.0.0.1:$MOCK_PORT" --headless 2>"$TMP/e"
expect_eq "refuse: address in use exits 2" "$?" 2
expect_contains "refuse: address in use explained" "$(cat "$TMP/e")" "cannot listen"
write_config "$TMP/t.json" '"token_env": "QT_PX_TOKEN_UNSET_HERE"'
"$QT_BIN" serve -c "$TMP/t.json" --listen "127.0.0.1:$(free_port)" --headless 2>"$TMP/e"
expect_eq "refuse: token_env naming an unset variable exits 2" "$?" 2
stats0=$(mock_stat 'd["total"]["requests"]')
expect_eq "refuse: nothing was sent upstream" "$stats0" 0

# ---------------------------------------------------------------- plain completions
start_serve "$TMP/a.json"
C="$SERVE_URL/v1/chat/completions"
req POST "$C" "$(msg gpt-4o 20 'hello there')"
expect_eq "plain: 200" "$CODE" 200
expect_eq "plain: chat.completion" "$(jget 'd["object"]')" "chat.completion"
expect_contains "plain: content" "$(jget 'd["choices"][0]["message"]["content"]')" "simulated"
expect_eq "plain: X-Quotatop-Model-Used" "$(hdr x-quotatop-model-used)" "gpt-4o"
expect_eq "plain: X-Quotatop-Attempts" "$(hdr x-quotatop-attempts)" "1"
[[ "$(hdr x-quotatop-queued-ms)" =~ ^[0-9]+$ ]] && pass "plain: X-Quotatop-Queued-Ms is a number" \
    || fail "plain: X-Quotatop-Queued-Ms is a number" "'$(hdr x-quotatop-queued-ms)'"
expect_ge "plain: usage counted" "$(jget 'd["usage"]["total_tokens"]')" 1
PLAIN_CONTENT=$(jget 'd["choices"][0]["message"]["content"]')

req POST "$C" "$(msg gpt-4o 20 'hello there' ',"id":"mine","workflow":"body-wf","priority":99')" \
    -H 'X-Quotatop-Workflow: wf-a' -H 'X-Quotatop-Priority: 2'
expect_eq "headers: body id/workflow/priority are not quotatop's: 200" "$CODE" 200
req POST "$C" "$(msg gpt-4o 20 hi)" -H 'X-Quotatop-Priority: 11'
expect_error "headers: priority 11" 400 invalid_priority
req POST "$C" "$(msg gpt-4o 20 hi)" -H 'X-Quotatop-Workflow: has space'
expect_error "headers: workflow with a space" 400 invalid_workflow
req POST "$C" "$(msg gpt-4o 20 hi)" -H 'X-Quotatop-Workflow: we"ird\wf'
expect_eq "headers: odd but printable workflow: 200" "$CODE" 200


# ---------------------------------------------------------------- streaming
curl -s -N -D "$TMP/sh" "$C" -H 'Content-Type: application/json' \
    -d "$(msg gpt-4o 20 'hello there' ',"stream":true')" > "$TMP/sse"
expect_contains "stream: content type" "$(tr -d '\r' < "$TMP/sh" | tr 'A-Z' 'a-z')" "content-type: text/event-stream"
expect_eq "stream: ends with [DONE]" "$(grep '^data:' "$TMP/sse" | tail -1)" "data: [DONE]"
nchunks=$(grep -c '^data: {' "$TMP/sse")
expect_ge "stream: several chunks" "$nchunks" 3
sse_text() {
    grep '^data: {' "$1" | sed 's/^data: //' | python3 -c '
import json, sys
out, objs, usage = [], set(), 0
for line in sys.stdin:
    d = json.loads(line)
    objs.add(d["object"])
    if d.get("usage"): usage += 1
    for c in d["choices"]:
        out.append(c["delta"].get("content") or "")
print("".join(out)); print(",".join(sorted(objs))); print(usage)'
}
mapfile -t st < <(sse_text "$TMP/sse")
expect_eq "stream: chunks reassemble the plain answer" "${st[0]}" "$PLAIN_CONTENT"
expect_eq "stream: every event is a chat.completion.chunk" "${st[1]}" "chat.completion.chunk"
expect_eq "stream: no usage chunk unless asked" "${st[2]}" 0
curl -s -N "$C" -H 'Content-Type: application/json' \
    -d "$(msg gpt-4o 20 'hello there' ',"stream":true,"stream_options":{"include_usage":true}')" > "$TMP/sse2"
mapfile -t st < <(sse_text "$TMP/sse2")
expect_eq "stream: include_usage forwards the usage chunk" "${st[2]}" 1
curl -s -N "$C" -H 'Content-Type: application/json' -d "$(msg claude 20 'hello there' ',"stream":true')" > "$TMP/sse3"
mapfile -t st < <(sse_text "$TMP/sse3")
expect_eq "stream: Anthropic upstream translated to OpenAI chunks" "${st[1]}" "chat.completion.chunk"
expect_contains "stream: Anthropic content" "${st[0]}" "simulated"
expect_eq "stream: Anthropic stream ends with [DONE]" "$(grep '^data:' "$TMP/sse3" | tail -1)" "data: [DONE]"
req POST "$C" "$(msg broken 20 hi ',"stream":true')"
expect_error "stream: failure before the first byte is a plain error" 502 upstream_failed

# ---------------------------------------------------------------- fallback, failures, budget
req POST "$C" "$(msg primary 20 'hello there')"
expect_eq "fallback: 200" "$CODE" 200
expect_eq "fallback: answered by the Anthropic model" "$(hdr x-quotatop-model-used)" "claude"
expect_eq "fallback: still OpenAI's shape" "$(jget 'd["object"]')" "chat.completion"
expect_ge "fallback: attempts counted" "$(hdr x-quotatop-attempts)" 2
req POST "$C" "$(msg broken 20 hi)"
expect_error "failed upstream" 502 upstream_failed
expect_contains "failed upstream: reason given" "$(jget 'd["error"]["message"]')" "broken via oa"
req POST "$C" "$(msg badreq 20 'a prompt longer than the context window of ten tokens')"
expect_error "upstream 400 passes as 400" 400 upstream_rejected
n_before=$(mock_stat 'd["total"]["requests"]')
req POST "$C" "$(msg gpt-4o 20 hi)" -H 'X-Quotatop-Workflow: capped'
expect_error "budget: exhausted" 402 budget_exhausted
expect_contains "budget: message names the budget" "$(jget 'd["error"]["message"]')" "budget"
expect_eq "budget: SDKs told not to retry" "$(hdr x-should-retry)" "false"
expect_eq "budget: nothing sent upstream" "$(mock_stat 'd["total"]["requests"]')" "$n_before"

# ---------------------------------------------------------------- bad input
req POST "$C" '{"model": "gpt-4o", "messages": ['
expect_error "bad input: malformed JSON" 400 invalid_json
req POST "$C" '[1,2]'
expect_error "bad input: not an object" 400 invalid_json
req POST "$C" -
expect_error "bad input: no body" 400 invalid_json
req POST "$C" '{"messages":[{"role":"user","content":"hi"}]}'
expect_error "bad input: missing model" 400 missing_required_parameter
req POST "$C" "$(msg nope 20 hi)"
expect_error "bad input: unknown model" 404 model_not_found
req POST "$C" '{"model":"gpt-4o","messages":[]}'
expect_error "bad input: empty messages" 400 invalid_request
req POST "$C" '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":"yes"}'
expect_error "bad input: stream not a boolean" 400 invalid_type
big=$(head -c 6000 /dev/zero | tr '\0' x)
req POST "$C" "$(msg gpt-4o 20 "$big")"
expect_error "bad input: body over max_body_bytes" 413 request_too_large
req POST "$C" "$(msg gpt-4o 20 "$big")" -H 'Transfer-Encoding: chunked'
expect_error "bad input: chunked body over max_body_bytes" 413 request_too_large
req GET "$C" -
expect_error "bad input: GET on chat/completions" 405 method_not_allowed
expect_eq "bad input: 405 names the method allowed" "$(hdr allow)" "POST"
req POST "$SERVE_URL/v1/models" '{}'
expect_error "bad input: POST on /v1/models" 405 method_not_allowed
req GET "$SERVE_URL/v2/whatever" -
expect_error "bad input: unknown path" 404 unknown_url
req GET "$SERVE_URL/v1/models/nope" -
expect_error "bad input: unknown model id" 404 model_not_found
req GET "$SERVE_URL/healthz" -
expect_eq "bad input: server unaffected (healthz)" "$CODE" 200
expect_eq "healthz: status ok" "$(jget 'd["status"]')" "ok"
req POST "$C" "$(msg gpt-4o 20 hi)"
expect_eq "bad input: server unaffected (completion)" "$CODE" 200

# ---------------------------------------------------------------- models
req GET "$SERVE_URL/v1/models" -
expect_eq "models: 200" "$CODE" 200
expect_eq "models: the configured models" "$(jget '",".join(m["id"] for m in d["data"])')" \
    "gpt-4o,claude,primary,broken,badreq,lag,slow"
req GET "$SERVE_URL/v1/models/claude" -
expect_eq "models: one model" "$(jget 'd["id"]')" "claude"

# ---------------------------------------------------------------- backpressure: wait
req POST "$C" "$(msg slow 20 hi)"
expect_eq "backpressure: first request of a 1 RPM model passes" "$CODE" 200
t0=$(date +%s%N)
req POST "$C" "$(msg slow 20 hi)"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_error "backpressure: estimated wait over max_wait_ms" 429 rate_limit_exceeded
expect_ge "backpressure: retry-after from the limiter (s)" "$(hdr retry-after)" 30
expect_le "backpressure: retry-after at most a minute" "$(hdr retry-after)" 61
expect_ge "backpressure: retry-after-ms too" "$(hdr retry-after-ms)" 30000
expect_le "backpressure: answered at once" "$ms" 2000

# ---------------------------------------------------------------- metrics
M=$(metrics)
for fam in requests_total upstream_429_total retries_total fallbacks_total queue_depth tokens_total \
           spend_usd_total limit used circuit_state jobs_total request_duration_seconds; do
    expect_contains "metrics: quotatop_$fam has a TYPE line" "$M" "# TYPE quotatop_$fam "
done
expect_eq "metrics: requests_total by model, provider, status" \
    "$(metric "$M" 'quotatop_requests_total{model="gpt-4o",provider="oa",status="ok"}')" 6
expect_eq "metrics: fallbacks counted" "$(metric "$M" 'quotatop_fallbacks_total')" 1
expect_eq "metrics: limit of the 1 RPM model" "$(metric "$M" 'quotatop_limit{model="slow",kind="rpm"}')" 1
expect_eq "metrics: used by the 1 RPM model" "$(metric "$M" 'quotatop_used{model="slow",kind="rpm"}')" 1
expect_eq "metrics: circuit state" "$(metric "$M" 'quotatop_circuit_state{provider="oa"}')" 0
expect_eq "metrics: workflow from the header" "$(metric "$M" 'quotatop_jobs_total{workflow="wf-a",status="ok"}')" 1
expect_eq "metrics: label values escaped" \
    "$(metric "$M" 'quotatop_jobs_total{workflow="we\"ird\\wf",status="ok"}')" 1
expect_eq "metrics: budget rejection" "$(metric "$M" 'quotatop_jobs_total{workflow="capped",status="rejected"}')" 1
expect_eq "metrics: histogram +Inf bucket = count" \
    "$(metric "$M" 'quotatop_request_duration_seconds_bucket{model="gpt-4o",le="+Inf"}')" \
    "$(metric "$M" 'quotatop_request_duration_seconds_count{model="gpt-4o"}')"
expect_eq "metrics: backpressure counted" "$(metric "$M" 'quotatop_proxy_rejections_total{reason="wait"}')" 1
expect_eq "metrics: 413s counted" "$(metric "$M" 'quotatop_http_responses_total{code="413"}')" 2
if command -v promtool >/dev/null; then
    echo "$M" | promtool check metrics >"$TMP/promtool" 2>&1; rc=$?
    # Lint remarks (naming advice) are not parse errors; a parse error exits 1 with "error".
    if [ $rc -eq 0 ] || ! grep -qi "error" "$TMP/promtool"; then pass "metrics: promtool parses them"
    else fail "metrics: promtool parses them" "$(head -3 "$TMP/promtool")"; fi
fi

kill -TERM "$SERVE_PID"; wait "$SERVE_PID"; rc=$?
expect_eq "sigterm: serve exits 0" "$rc" 0

# ---------------------------------------------------------------- auth, queue, disconnects, timeouts
export QT_PX_TOKEN=$PXTOKEN
write_config "$TMP/b.json" '"token_env": "QT_PX_TOKEN", "max_queue": 1, "max_wait_ms": 120000' '' 1
start_serve "$TMP/b.json" --idle-timeout 2
C="$SERVE_URL/v1/chat/completions"
AUTH=(-H "Authorization: Bearer $PXTOKEN")
req POST "$C" "$(msg gpt-4o 20 hi)"
expect_error "auth: no token" 401 invalid_api_key
expect_contains "auth: WWW-Authenticate" "$(hdr www-authenticate)" "Bearer"
req POST "$C" "$(msg gpt-4o 20 hi)" -H "Authorization: Bearer ${PXTOKEN}x"
expect_error "auth: wrong token" 401 invalid_api_key
req POST "$C" "$(msg gpt-4o 20 hi)" -H "Authorization: Bearer ${PXTOKEN:0:5}"
expect_error "auth: token prefix" 401 invalid_api_key
req GET "$SERVE_URL/metrics" -
expect_eq "auth: /metrics needs the token" "$CODE" 401
req GET "$SERVE_URL/v1/models" -
expect_eq "auth: /v1/models needs the token" "$CODE" 401
req GET "$SERVE_URL/healthz" -
expect_eq "auth: /healthz is open" "$CODE" 200
req POST "$C" "$(msg gpt-4o 20 hi)" "${AUTH[@]}"
expect_eq "auth: right token" "$CODE" 200

# One worker, max_queue 1: one job on the wire (3 s), one queued, the next refused.
curl -s -o "$TMP/lag.body" -w '%{http_code}' "${AUTH[@]}" "$C" -d "$(msg lag 20 hi)" > "$TMP/lag.code" &
lagpid=$!
sleep 0.5
curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "$C" -d "$(msg gpt-4o 20 hi)" > "$TMP/q.code" &
qpid=$!
sleep 0.5
req POST "$C" "$(msg gpt-4o 20 hi)" "${AUTH[@]}"
expect_error "backpressure: queue full" 429 queue_full
[[ "$(hdr retry-after)" =~ ^[0-9]+$ ]] && pass "backpressure: queue full has retry-after" \
    || fail "backpressure: queue full has retry-after" "'$(hdr retry-after)'"
# A half-open client: headers never finished. Closed after --idle-timeout 2.
exec 3<>"/dev/tcp/127.0.0.1/$SERVE_PORT"
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n' >&3
exec 4<>"/dev/tcp/127.0.0.1/$SERVE_PORT"
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{"mod' "$PXTOKEN" >&4
wait "$lagpid" "$qpid"
expect_eq "timeouts: a 3 s upstream answer outlives the 2 s idle timeout" "$(cat "$TMP/lag.code")" 200
expect_eq "backpressure: the queued request is answered" "$(cat "$TMP/q.code")" 200
sleep 1.5   # the two half-open connections are 3.5 s old now
timeout 2 cat <&3 >/dev/null; rc3=$?
timeout 2 cat <&4 >/dev/null; rc4=$?
exec 3<&- 4<&-
expect_eq "timeouts: unfinished headers are cut" "$rc3" 0
expect_eq "timeouts: a body that stops coming is cut" "$rc4" 0

# Disconnect while queued: a client of a 1 RPM model that just answered
# stays queued (the only worker does not take a job whose model is at its
# limit: max_queue is 1 here) and gives up.
req POST "$C" "$(msg slow 20 hi)" "${AUTH[@]}"
expect_eq "disconnect: first request of the 1 RPM model" "$CODE" 200
slow_up=$(mock_stat 'd["models"]["slow"]["requests"]')
oa_up=$(mock_stat 'd["models"]["gpt-4o"]["requests"]')
curl -s -o /dev/null --max-time 1.5 "${AUTH[@]}" "$C" -d "$(msg slow 20 hi)" & p1=$!
sleep 0.5
M=$(metrics "${AUTH[@]}")
expect_eq "disconnect: the job of the limited model is queued" "$(metric "$M" quotatop_queue_depth)" 1
wait "$p1"; rc1=$?
expect_eq "disconnect: curl gave up" "$rc1" 28
sleep 0.5
M=$(metrics "${AUTH[@]}")
expect_eq "disconnect: queue empty" "$(metric "$M" quotatop_queue_depth)" 0
expect_eq "disconnect: the job is cancelled" "$(metric "$M" 'quotatop_jobs_total{workflow="default",status="cancelled"}')" 1
expect_eq "disconnect: counted" "$(metric "$M" 'quotatop_proxy_disconnects_total{when="queued"}')" 1
expect_eq "disconnect: nothing reached the upstream (slow)" "$(mock_stat 'd["models"]["slow"]["requests"]')" "$slow_up"
expect_eq "disconnect: nothing reached the upstream (queued)" "$(mock_stat 'd["models"]["gpt-4o"]["requests"]')" "$oa_up"
expect_eq "disconnect: the worker is free again" "$(metric "$M" quotatop_workers_busy)" 0
t0=$(date +%s%N)
req POST "$C" "$(msg gpt-4o 20 hi)" "${AUTH[@]}"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "disconnect: a later request is served" "$CODE" 200
expect_le "disconnect: ... at once" "$ms" 1500

# Disconnect while a worker holds the job on the wire (the upstream takes
# 3 s to answer): the transfer is aborted and the worker is free long before.
curl -s -o /dev/null --max-time 0.5 "${AUTH[@]}" "$C" -d "$(msg lag 20 bye)"; rc=$?
expect_eq "disconnect in flight: curl gave up" "$rc" 28
sleep 1.8
# freed_and_cancelled NAME N: no worker busy, N jobs cancelled so far
freed_and_cancelled() {
    local m; m=$(metrics "${AUTH[@]}")
    expect_eq "$1: the worker is free before the upstream would answer" "$(metric "$m" quotatop_workers_busy)" 0
    expect_eq "$1: the job is cancelled" \
        "$(metric "$m" 'quotatop_jobs_total{workflow="default",status="cancelled"}')" "$2"
}
freed_and_cancelled "disconnect in flight" 2

# A client that hangs up the moment its request is out (FIN right behind the
# body, so the hang-up can come before the request is suspended): still seen,
# the transfer aborted and the job cancelled long before the 3 s answer.
python3 - "$SERVE_PORT" "$PXTOKEN" "$(msg lag 20 bye)" <<'PY'
import socket, sys, time
port, token, body = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode()
          + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
s.shutdown(socket.SHUT_WR)
time.sleep(0.3)
s.close()
PY
sleep 1
freed_and_cancelled "hang-up right after the request" 3

# SIGTERM while a client waits: it gets a 503, serve exits 0.
curl -s -o "$TMP/term.body" -w '%{http_code}' "${AUTH[@]}" "$C" -d "$(msg slow 20 hi)" > "$TMP/term.code" &
tp=$!
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$SERVE_PID"; wait "$SERVE_PID"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait "$tp"
expect_eq "sigterm: serve exits 0" "$rc" 0
expect_le "sigterm: within the grace period" "$ms" 8000
expect_eq "sigterm: the waiting client gets 503" "$(cat "$TMP/term.code")" 503
BODY=$(cat "$TMP/term.body")
expect_eq "sigterm: ... code cancelled" "$(jget 'd["error"]["code"]')" "cancelled"

# ---------------------------------------------------------------- secrets
cat "$TMP/serve.log" >> "$TMP/all_output"
if grep -q "$UPKEY" "$TMP/all_output"; then fail "secrets: upstream key never leaves" "found in output"
else pass "secrets: upstream key never leaves (responses, metrics, logs)"; fi
if grep -q "$PXTOKEN" "$TMP/serve.log"; then fail "secrets: proxy token not logged" "found in the log"
else pass "secrets: proxy token not logged"; fi

# ---------------------------------------------------------------- one port, one serve
# A second serve on the same address is refused (serve's daemons share the
# port through SO_REUSEPORT: without a plain bind first, a second serve
# would join and take part of the clients), and the first one answers
# every client on fresh connections (each curl is one) while it is tried.
start_serve "$TMP/a.json"
C="$SERVE_URL/v1/chat/completions"
"$QT_BIN" serve -c "$TMP/a.json" --listen "127.0.0.1:$SERVE_PORT" --headless 2>"$TMP/e2" & SECOND=$!
sleep 1.5
for i in $(seq 1 20); do
    curl -s -o /dev/null -m 5 "$C" -H 'Content-Type: application/json' -H 'X-Quotatop-Workflow: port-test' \
        -d "$(msg gpt-4o 5 hi)"
done
if kill -0 "$SECOND" 2>/dev/null; then
    kill "$SECOND"; wait "$SECOND" 2>/dev/null
    fail "one port: a second serve on a port in use is refused" "it kept running"
else
    wait "$SECOND"; expect_eq "one port: a second serve on a port in use exits 2" "$?" 2
fi
expect_contains "one port: the second serve says why" "$(cat "$TMP/e2")" "cannot listen"
expect_eq "one port: the first serve answered all 20 fresh connections" \
    "$(metric "$(metrics)" 'quotatop_jobs_total{workflow="port-test",status="ok"}')" 20
kill -TERM "$SERVE_PID"; wait "$SERVE_PID"
