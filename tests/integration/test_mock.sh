#!/usr/bin/env bash
# test_mock.sh: `quotatop mock` against curl: response and error shapes of
# both endpoints, rate-limit headers, RPM bursts and pacing, TPM, faults,
# outage, context window, API key, streams, /stats, flags; 10,000 slow requests
# at once on a few threads; stopping with requests in flight. About 25 s.
source "$(dirname "$0")/lib.sh"

# post PATH BODY [CURL ARGS...]: sets CODE, BODY, HDRS (lowercase names, no CR)
post() {
    local path=$1 body=$2; shift 2
    CODE=$(curl -s -o "$TMP/body" -D "$TMP/hdrs" -w '%{http_code}' "$@" \
        -H 'Content-Type: application/json' --data-binary "$body" "$MOCK_URL$path")
    BODY=$(cat "$TMP/body")
    HDRS=$(tr -d '\r' < "$TMP/hdrs" | awk -F': ' 'NF>1 {print tolower($1) ": " $2}')
}
hdr() { echo "$HDRS" | awk -F': ' -v n="$1" '$1 == n {print $2; exit}'; }
jget() { echo "$BODY" | json_get - "$1" 2>/dev/null; }
stat() { curl -s "$MOCK_URL/stats" | json_get - "$1"; }
# burst N PATH BODY: N requests at once (one curl, parallel); prints "code retry-after retry-after-ms" lines
burst() {
    local n=$1 url="$MOCK_URL$2" body=$3 args=() i
    for ((i = 0; i < n; i++)); do args+=(-o /dev/null "$url"); done
    curl -s --no-progress-meter -Z --parallel-immediate --parallel-max "$n" -H 'Content-Type: application/json' \
        -d "$body" -w '%{http_code} %header{retry-after} %header{retry-after-ms}\n' "${args[@]}" 2>/dev/null
}
# pair PATH BODY [CURL ARGS...]: two requests back to back on one connection
# (well inside a bucket's 1 s refill); CODE, BODY, HDRS describe the second
pair() {
    local url="$MOCK_URL$1" body=$2; shift 2
    CODE=$(curl -s -H 'Content-Type: application/json' "$@" --data-binary "$body" -o /dev/null "$url" \
        --next -o "$TMP/body" -D "$TMP/hdrs" -w '%{http_code}' -H 'Content-Type: application/json' \
        "$@" --data-binary "$body" "$url")
    BODY=$(cat "$TMP/body")
    HDRS=$(tr -d '\r' < "$TMP/hdrs" | awk -F': ' 'NF>1 {print tolower($1) ": " $2}')
}
# seq_post N PATH BODY: N requests one after the other on one connection; prints codes
seq_post() {
    local n=$1 url="$MOCK_URL$2" body=$3 args=() i
    for ((i = 0; i < n; i++)); do args+=(-o /dev/null "$url"); done
    curl -s -H 'Content-Type: application/json' -d "$body" -w '%{http_code}\n' "${args[@]}"
}
oa() { printf '{"model":"%s","max_tokens":%s,"messages":[{"role":"user","content":"%s"}]}' "$1" "$2" "$3"; }
an() { printf '{"model":"%s","max_tokens":%s,"system":"Be brief.","messages":[{"role":"user","content":[{"type":"text","text":"%s"}]}]}' "$1" "$2" "$3"; }
GO_DUR='^([0-9]+h)?([0-9]+m)?[0-9]+(\.[0-9]+)?(ms|s)$'
RFC3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'

# ---- flags ----
"$QT_BIN" mock --bogus >/dev/null 2>"$TMP/e"; rc=$?
expect_eq "flags: unknown option exits 2" "$rc" 2
expect_contains "flags: unknown option named" "$(cat "$TMP/e")" "--bogus"
"$QT_BIN" mock --rpm abc >/dev/null 2>"$TMP/e"; expect_eq "flags: bad --rpm exits 2" "$?" 2
"$QT_BIN" mock --model 'm:rpm=1,wat=2' >/dev/null 2>"$TMP/e"; expect_eq "flags: bad model spec exits 2" "$?" 2
expect_contains "flags: bad spec key named" "$(cat "$TMP/e")" "wat"
"$QT_BIN" mock --fail-rate 1.5 >/dev/null 2>&1; expect_eq "flags: fail-rate > 1 exits 2" "$?" 2
"$QT_BIN" mock --require-key-env QT_SURELY_UNSET_VAR >/dev/null 2>&1; expect_eq "flags: unset key env exits 2" "$?" 2
out=$("$QT_BIN" mock --help); expect_eq "flags: --help exits 0" "$?" 0
expect_contains "flags: --help documents the spec" "$out" "rpm=1200,tpm=40000"

# ---- default listen, port file, SIGTERM ----
"$QT_BIN" mock --port-file "$TMP/port" 2>"$TMP/dflt.log" &
dpid=$!; _pids+=("$dpid")
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
dport=$(cat "$TMP/port" 2>/dev/null)
expect_contains "listen: default prints its port" "$(cat "$TMP/dflt.log")" "mock listening on 127.0.0.1:$dport"
expect_eq "listen: healthz" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$dport/healthz")" 200
kill -TERM "$dpid"; wait "$dpid"; rc=$?
expect_eq "listen: SIGTERM exits 0" "$rc" 0
expect_contains "listen: stops cleanly" "$(cat "$TMP/dflt.log")" "mock stopped"

# ---- the main mock: every model declared with its own behaviour ----
start_mock --seed 7 \
    --model fast:rpm=1200 \
    --model paced:rpm=1200 \
    --model both:rpm=600,tpm=60000 \
    --model tok:tpm=60000 \
    --model big:tpm=6000 \
    --model ctx:context=100 \
    --model flaky:fail=0.3 \
    --model down:outage=0-4 \
    --model r60:rpm=60 \
    --model slow:latency=300 || exit 1
t_start=$(date +%s.%N)

# outage first (window = the first 4 s)
post /v1/chat/completions "$(oa down 10 hi)"
expect_eq "outage: openai 503" "$CODE" 503
expect_eq "outage: openai server_error" "$(jget 'd["error"]["type"]')" server_error
post /v1/messages "$(an down 10 hi)"
expect_eq "outage: anthropic 529" "$CODE" 529
expect_eq "outage: anthropic overloaded_error" "$(jget 'd["type"]+"/"+d["error"]["type"]')" error/overloaded_error

# OpenAI ok shape: "Hello there, how are you?" = 25 bytes -> 7 tokens; 12 + 7 = 19 completion
post /v1/chat/completions "$(oa both 100 'Hello there, how are you?')"
expect_eq "openai ok: 200" "$CODE" 200
expect_eq "openai ok: object" "$(jget 'd["object"]')" chat.completion
expect_contains "openai ok: id" "$(jget 'd["id"]')" chatcmpl-
expect_eq "openai ok: model" "$(jget 'd["model"]')" both
expect_eq "openai ok: message" "$(jget 'd["choices"][0]["message"]["role"]+"/"+str(len(d["choices"][0]["message"]["content"])>0)+"/"+d["choices"][0]["finish_reason"]')" assistant/True/stop
expect_eq "openai ok: prompt tokens = ceil(chars/4)" "$(jget 'd["usage"]["prompt_tokens"]')" 7
expect_eq "openai ok: completion tokens" "$(jget 'd["usage"]["completion_tokens"]')" 19
expect_eq "openai ok: total" "$(jget 'd["usage"]["total_tokens"]==d["usage"]["prompt_tokens"]+d["usage"]["completion_tokens"]')" True
expect_eq "headers: limit-requests" "$(hdr x-ratelimit-limit-requests)" 600
expect_eq "headers: remaining-requests" "$(hdr x-ratelimit-remaining-requests)" 599
expect_eq "headers: limit-tokens" "$(hdr x-ratelimit-limit-tokens)" 60000
expect_eq "headers: remaining-tokens (7 + 100 charged)" "$(hdr x-ratelimit-remaining-tokens)" 59893
check "headers: reset-requests is a Go duration ($(hdr x-ratelimit-reset-requests))" \
    grep -Eq "$GO_DUR" <<<"$(hdr x-ratelimit-reset-requests)"
check "headers: reset-tokens is a Go duration ($(hdr x-ratelimit-reset-tokens))" \
    grep -Eq "$GO_DUR" <<<"$(hdr x-ratelimit-reset-tokens)"
expect_contains "headers: request id" "$(hdr x-request-id)" req_

post /v1/chat/completions "$(oa both 5 'Hello there, how are you?')"
expect_eq "openai ok: completion capped by max_tokens" "$(jget 'd["usage"]["completion_tokens"]')" 5
expect_eq "openai ok: finish_reason length" "$(jget 'd["choices"][0]["finish_reason"]')" length

# Anthropic ok shape: system "Be brief." (9) + "Hello there" (11) = 20 bytes -> 5 tokens
post /v1/messages "$(an both 100 'Hello there')"
expect_eq "anthropic ok: 200" "$CODE" 200
expect_eq "anthropic ok: type/role" "$(jget 'd["type"]+"/"+d["role"]')" message/assistant
expect_contains "anthropic ok: id" "$(jget 'd["id"]')" msg_
expect_eq "anthropic ok: content" "$(jget 'd["content"][0]["type"]+"/"+str(len(d["content"][0]["text"])>0)')" text/True
expect_eq "anthropic ok: stop_reason" "$(jget 'd["stop_reason"]')" end_turn
expect_eq "anthropic ok: input tokens count system" "$(jget 'd["usage"]["input_tokens"]')" 5
expect_eq "anthropic ok: output tokens" "$(jget 'd["usage"]["output_tokens"]')" 17
expect_eq "anthropic headers: requests-limit" "$(hdr anthropic-ratelimit-requests-limit)" 600
expect_eq "anthropic headers: tokens-limit" "$(hdr anthropic-ratelimit-tokens-limit)" 60000
check "anthropic headers: requests-remaining numeric" grep -Eq '^[0-9]+$' <<<"$(hdr anthropic-ratelimit-requests-remaining)"
check "anthropic headers: requests-reset RFC 3339" grep -Eq "$RFC3339" <<<"$(hdr anthropic-ratelimit-requests-reset)"
check "anthropic headers: tokens-reset RFC 3339" grep -Eq "$RFC3339" <<<"$(hdr anthropic-ratelimit-tokens-reset)"
expect_eq "anthropic headers: no openai family" "$(hdr x-ratelimit-limit-requests)" ""
post /v1/messages "$(an both 3 'Hello there')"
expect_eq "anthropic ok: stop_reason max_tokens" "$(jget 'd["stop_reason"]+"/"+str(d["usage"]["output_tokens"])')" max_tokens/3

# ---- request errors ----
post /v1/chat/completions '{"model": "both", "messages": ['
expect_eq "errors: malformed JSON 400" "$CODE" 400
expect_eq "errors: malformed JSON shape" "$(jget 'd["error"]["type"]+"/"+str(d["error"]["param"])')" invalid_request_error/None
post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}]}'
expect_eq "errors: missing model 400" "$CODE" 400
expect_contains "errors: missing model says so" "$(jget 'd["error"]["message"]')" model
post /v1/chat/completions '{"model":"both"}'
expect_eq "errors: missing messages 400" "$CODE" 400
expect_contains "errors: missing messages says so" "$(jget 'd["error"]["message"]')" messages
post /v1/messages '{"model":"both","messages":[{"role":"user","content":"x"}]}'
expect_eq "errors: anthropic missing max_tokens 400" "$CODE" 400
expect_eq "errors: anthropic error shape" "$(jget 'd["type"]+"/"+d["error"]["type"]')" error/invalid_request_error
post /v1/messages 'not json'
expect_eq "errors: anthropic malformed 400" "$(echo "$CODE/$(jget 'd["error"]["type"]')")" 400/invalid_request_error
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' "$MOCK_URL/v1/nothing")
expect_eq "errors: unknown path 404" "$CODE" 404
CODE=$(curl -s -o "$TMP/body" -D "$TMP/hdrs" -w '%{http_code}' "$MOCK_URL/v1/chat/completions")
expect_eq "errors: GET on chat 405" "$CODE" 405
expect_contains "errors: 405 says Allow" "$(cat "$TMP/hdrs")" "Allow: POST"

# ---- context window ----
long=$(printf 'x%.0s' $(seq 200))          # 200 bytes -> 50 tokens; + 60 > 100
post /v1/chat/completions "$(oa ctx 60 "$long")"
expect_eq "context: openai 400" "$CODE" 400
expect_eq "context: openai code" "$(jget 'd["error"]["code"]+"/"+d["error"]["type"]')" context_length_exceeded/invalid_request_error
post /v1/messages "$(an ctx 90 "$long")"
expect_eq "context: anthropic 400" "$(echo "$CODE/$(jget 'd["error"]["type"]')")" 400/invalid_request_error
post /v1/chat/completions "$(oa ctx 40 "$long")"
expect_eq "context: within the window 200" "$CODE" 200

# ---- RPM: a burst of 40 at 1200 RPM (about 20 in any second) ----
burst 40 /v1/chat/completions "$(oa fast 16 hi)" > "$TMP/burst"
n200=$(grep -c '^200' "$TMP/burst"); n429=$(grep -c '^429' "$TMP/burst")
expect_ge "rpm burst: some 429s ($n429)" "$n429" 5
expect_ge "rpm burst: the bucket admitted ~20 ($n200)" "$n200" 18
expect_le "rpm burst: but not the whole burst ($n200)" "$n200" 35
ra=$(awk '$1 == 429 {print $2; exit}' "$TMP/burst"); ram=$(awk '$1 == 429 {print $3; exit}' "$TMP/burst")
check "rpm burst: retry-after integer seconds ($ra)" grep -Eq '^[1-9][0-9]*$' <<<"$ra"
check "rpm burst: retry-after-ms ($ram)" grep -Eq '^[1-9][0-9]*$' <<<"$ram"
expect_le "rpm burst: retry-after-ms short (one request refills in 50 ms)" "${ram:-9999}" 1000
# 60 RPM = a bucket of 1 refilled each second: the second of a pair is refused
pair /v1/chat/completions "$(oa r60 16 hi)"
expect_eq "rpm 429: status" "$CODE" 429
expect_eq "rpm 429: error shape" "$(jget 'd["error"]["type"]+"/"+d["error"]["code"]')" requests/rate_limit_exceeded
expect_contains "rpm 429: message" "$(jget 'd["error"]["message"]')" "Rate limit reached for r60"
expect_eq "rpm 429: remaining-requests 59" "$(hdr x-ratelimit-remaining-requests)" 59
check "rpm 429: retry-after 1 s" grep -Eq '^1$' <<<"$(hdr retry-after)"
expect_le "rpm 429: retry-after-ms <= 1000 ($(hdr retry-after-ms))" "$(hdr retry-after-ms)" 1000
pair /v1/messages "$(an r60 16 hi)"
expect_eq "rpm 429: anthropic rate_limit_error" "$CODE/$(jget 'd["error"]["type"]')" 429/rate_limit_error
check "rpm 429: anthropic retry-after" grep -Eq '^[1-9][0-9]*$' <<<"$(hdr retry-after)"

# ---- RPM: paced at 15/s for 2 s gets no 429 ----
codes=""
for i in $(seq 30); do
    codes+="$(curl -s -o /dev/null -w '%{http_code} ' -d "$(oa paced 16 hi)" "$MOCK_URL/v1/chat/completions")"
    sleep 0.066
done
expect_eq "rpm paced: 30 requests at 15/s all 200" "$(tr ' ' '\n' <<<"$codes" | grep -c '^200$')" 30
expect_le "rpm paced: stats max_1s <= 20" "$(stat 'd["models"]["paced"]["max_1s"]')" 20

# ---- TPM: capacity 1000 tokens in any second ----
pair /v1/chat/completions "$(oa tok 900 hi)"
expect_eq "tpm: second of a pair of 901 tokens 429" "$CODE" 429
expect_eq "tpm: type tokens" "$(jget 'd["error"]["type"]+"/"+d["error"]["code"]')" tokens/rate_limit_exceeded
check "tpm: retry-after" grep -Eq '^[1-9][0-9]*$' <<<"$(hdr retry-after)"
expect_eq "tpm: counted as token limited" "$(stat 'd["models"]["tok"]["rate_limited_tokens"]')" 1
pair /v1/messages "$(an tok 900 hi)"
expect_eq "tpm: anthropic 429" "$CODE/$(jget 'd["error"]["type"]')" 429/rate_limit_error
# a request larger than the bucket (capacity 100) is admitted when it is full, then waits it out
post /v1/chat/completions "$(oa big 500 hi)"
expect_eq "tpm: oversize request admitted on a full bucket" "$CODE" 200
post /v1/chat/completions "$(oa big 10 hi)"
expect_eq "tpm: then the debt refuses the next" "$CODE" 429
expect_ge "tpm: retry-after covers the debt ($(hdr retry-after-ms) ms)" "$(hdr retry-after-ms)" 4000

# ---- fail rate 0.3 over 200 requests ----
seq_post 200 /v1/chat/completions "$(oa flaky 16 hi)" > "$TMP/flaky"
n5=$(grep -c '^5' "$TMP/flaky"); n2=$(grep -c '^200' "$TMP/flaky")
expect_ge "fail rate: >= 20% 5xx ($n5/200)" "$n5" 40
expect_le "fail rate: <= 40% 5xx ($n5/200)" "$n5" 80
expect_eq "fail rate: the rest 200" "$((n5 + n2))" 200
expect_eq "fail rate: stats agree" "$(stat 'd["models"]["flaky"]["status_5xx"]')" "$n5"

# ---- latency does not serialise: 8 requests of 300 ms at once take well under 2.4 s ----
t0=$(date +%s%N)
burst 8 /v1/chat/completions "$(oa slow 16 hi)" > "$TMP/slow"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "latency: all 8 ok" "$(grep -c '^200' "$TMP/slow")" 8
expect_ge "latency: at least the base latency (${ms} ms)" "$ms" 280
expect_le "latency: concurrent, not serial (${ms} ms)" "$ms" 1500
expect_ge "latency: stats saw them in flight together" "$(stat 'd["models"]["slow"]["max_in_flight"]')" 4

# ---- streams ----
curl -s -N -d '{"model":"both","stream":true,"stream_options":{"include_usage":true},"max_tokens":50,"messages":[{"role":"user","content":"Hi"}]}' \
    "$MOCK_URL/v1/chat/completions" > "$TMP/sse"
expect_eq "stream openai: ends with [DONE]" "$(grep '^data: ' "$TMP/sse" | tail -1)" "data: [DONE]"
expect_eq "stream openai: chunks parse" "$(grep '^data: {' "$TMP/sse" | sed 's/^data: //' | python3 -c '
import json,sys
ch=[json.loads(l) for l in sys.stdin]
text="".join(c["choices"][0]["delta"].get("content","") for c in ch if c["choices"])
u=[c["usage"] for c in ch if c.get("usage")]
print(all(c["object"]=="chat.completion.chunk" for c in ch), len(text)>0, u[-1]["completion_tokens"] if u else None,
      [c["choices"][0]["finish_reason"] for c in ch if c["choices"]][-1])')" "True True 13 stop"
curl -s -N -d '{"model":"both","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"Hi"}]}' \
    "$MOCK_URL/v1/messages" > "$TMP/sse"
expect_eq "stream anthropic: event order" "$(grep '^event: ' "$TMP/sse" | uniq | sed 's/event: //' | tr '\n' ' ')" \
    "message_start content_block_start ping content_block_delta content_block_stop message_delta message_stop "
expect_eq "stream anthropic: usage in message_delta" "$(grep '^data: .*message_delta' "$TMP/sse" | sed 's/^data: //' | json_get - 'd["usage"]["output_tokens"]')" 13

# ---- outage over, runtime outage control ----
now=$(date +%s.%N); left=$(awk -v a="$t_start" -v b="$now" 'BEGIN{d=4.3-(b-a); print (d>0?d:0)}')
sleep "$left"
post /v1/chat/completions "$(oa down 10 hi)"
expect_eq "outage: over after END_S" "$CODE" 200
CODE=$(curl -s -o /dev/null -w '%{http_code}' -d '{"model":"both","start_ms":0,"duration_ms":700}' "$MOCK_URL/control/outage")
expect_eq "outage control: accepted" "$CODE" 200
post /v1/chat/completions "$(oa both 10 hi)"
expect_eq "outage control: now 503" "$CODE" 503
sleep 0.8
post /v1/chat/completions "$(oa both 10 hi)"
expect_eq "outage control: over" "$CODE" 200
CODE=$(curl -s -o /dev/null -w '%{http_code}' -d 'late:rpm=7' "$MOCK_URL/control/model")
post /v1/chat/completions "$(oa late 10 hi)"
expect_eq "model control: new model's limit" "$(hdr x-ratelimit-limit-requests)" 7

# ---- stats ----
CODE=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$MOCK_URL/stats/reset")
expect_eq "stats: reset" "$CODE" 200
expect_eq "stats: zero after reset" "$(stat 'd["total"]["requests"]')" 0
seq_post 3 /v1/chat/completions "$(oa counted 100 'abcdefgh')" >/dev/null   # 2 tokens, 12+2 completion
post /v1/messages '{"model":"counted","messages":[{"role":"user","content":"x"}]}'
post /v1/chat/completions "$(oa ctx 60 "$long")"
expect_eq "stats: per model" "$(stat 'str([d["models"]["counted"][k] for k in ("requests","ok","status_4xx","rate_limited","status_5xx","prompt_tokens","completion_tokens")])')" \
    "[4, 3, 1, 0, 0, 6, 42]"
expect_eq "stats: total" "$(stat 'str([d["total"][k] for k in ("requests","ok","status_4xx")])')" "[5, 3, 2]"
expect_eq "stats: requests = ok + 429 + 4xx + 5xx for every model" "$(stat 'all(m["requests"]==m["ok"]+m["rate_limited"]+m["status_4xx"]+m["status_5xx"] for m in list(d["models"].values())+[d["total"]])')" True
CODE=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$MOCK_URL/stats")
expect_eq "stats: DELETE resets" "$CODE/$(stat 'd["total"]["requests"]')" 200/0
expect_contains "models: lists declared" "$(curl -s "$MOCK_URL/v1/models")" '"id":"fast"'

kill -INT "$MOCK_PID"; wait "$MOCK_PID"; rc=$?
expect_eq "main mock: SIGINT exits 0" "$rc" 0

# ---- required API key, only declared models ----
export QT_TEST_MOCK_KEY="sk-mock-$RANDOM-secret"
start_mock -v --require-key-env QT_TEST_MOCK_KEY --only-declared --model keyed || exit 1
post /v1/chat/completions "$(oa keyed 10 hi)"
expect_eq "key: openai without key 401" "$CODE/$(jget 'd["error"]["code"]')" 401/invalid_api_key
post /v1/chat/completions "$(oa keyed 10 hi)" -H "Authorization: Bearer wrong"
expect_eq "key: openai wrong key 401" "$CODE" 401
post /v1/chat/completions "$(oa keyed 10 hi)" -H "Authorization: Bearer $QT_TEST_MOCK_KEY"
expect_eq "key: openai right key 200" "$CODE" 200
post /v1/messages "$(an keyed 10 hi)" -H "x-api-key: nope"
expect_eq "key: anthropic wrong key 401" "$CODE/$(jget 'd["error"]["type"]')" 401/authentication_error
post /v1/messages "$(an keyed 10 hi)" -H "Authorization: Bearer $QT_TEST_MOCK_KEY"
expect_eq "key: anthropic wants x-api-key" "$CODE" 401
post /v1/messages "$(an keyed 10 hi)" -H "x-api-key: $QT_TEST_MOCK_KEY"
expect_eq "key: anthropic right key 200" "$CODE" 200
post /v1/chat/completions "$(oa other 10 hi)" -H "Authorization: Bearer $QT_TEST_MOCK_KEY"
expect_eq "only-declared: 404 model_not_found" "$CODE/$(jget 'd["error"]["code"]')" 404/model_not_found
CODE=$(curl -s -o /dev/null -w '%{http_code}' -d '{"duration_ms":10}' "$MOCK_URL/control/outage")
expect_eq "key: control needs the key" "$CODE" 401
expect_not_contains "key: not in argv" "$(tr '\0' ' ' < /proc/$MOCK_PID/cmdline)" "$QT_TEST_MOCK_KEY"
kill -INT "$MOCK_PID"; wait "$MOCK_PID"
log=$(cat "$TMP/mock.$MOCK_PORT.log")
expect_contains "key: verbose log written" "$log" "-> 401"
expect_not_contains "key: never in the mock's stderr" "$log" "$QT_TEST_MOCK_KEY"

# ---- 10,000 slow requests at once: latency as timers, not a thread each.
# Sanitizer builds are several times slower: 5,000 there, the same meaning.
NB=10000 NIN=9000
case "$QT_BIN" in *tsan*|*asan*|*valgrind*) NB=5000 NIN=4500 ;; esac
ulimit -n 30000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
lim=$(ulimit -n)
if [ "$lim" != unlimited ] && [ "$lim" -lt $((NB + 500)) ]; then
    echo "scale: open files limit $lim: $((lim - 500)) requests, not $NB (raise ulimit -Hn)"
    NB=$((lim - 500)) NIN=$(( (lim - 500) * 9 / 10 ))
fi
start_mock --latency-ms 3000 || exit 1
python3 "$(dirname "$0")/slowloris.py" burst 127.0.0.1 "$MOCK_PORT" $NB \
    '{"model":"m","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}' > "$TMP/burst.json" &
bp=$!
sleep 2
nthreads=$(awk '/^Threads:/ {print $2}' "/proc/$MOCK_PID/status")
wait "$bp"
echo "scale: $(cat "$TMP/burst.json"), mock threads $nthreads"
expect_eq "scale: $NB concurrent slow requests all answered 200" "$(json_get "$TMP/burst.json" 'd["ok"]')" $NB
expect_ge "scale: in flight together" "$(stat 'd["total"]["max_in_flight"]')" $NIN
expect_le "scale: a few threads, not one per request ($nthreads)" "$nthreads" 20
kill -INT "$MOCK_PID"; wait "$MOCK_PID"; rc=$?
expect_eq "scale: SIGINT with none in flight exits 0" "$rc" 0

# ---- stopping with requests in flight answers them at once ----
start_mock --latency-ms 20000 || exit 1
curl -s -o /dev/null -w '%{http_code}' -d "$(oa m 10 hi)" "$MOCK_URL/v1/chat/completions" > "$TMP/cut.code" &
cp=$!
sleep 0.5
t0=$(date +%s%N)
kill -INT "$MOCK_PID"; wait "$MOCK_PID"; rc=$?
wait "$cp"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "stop: exits 0 with a request waiting out its latency" "$rc" 0
expect_le "stop: does not wait out the 20 s latency (${ms} ms)" "$ms" 3000
