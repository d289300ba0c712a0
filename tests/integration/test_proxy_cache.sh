#!/usr/bin/env bash
# test_proxy_cache.sh: `serve` in front of a model whose chain ends in @cache,
# when that model's circuit is open for a minute and proxy.max_wait_ms is 1 s:
# a request answered before comes back from the cache at once (200, marked
# cached, the first answer's content) instead of a 429 for the estimated wait
# of the probe; a request never answered still gets the honest 429. About 3 s.
source "$(dirname "$0")/lib.sh"

start_mock --model cm || exit 1
SERVE_PORT=$(free_port)
cat > "$TMP/cfg.json" <<JSON
{"workers": 4, "state_dir": "",
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"cm": {"providers": ["mock"], "fallback": ["@cache"]}},
 "retry": {"max_attempts": 1},
 "circuit": {"failure_threshold": 2, "failure_ratio": 0.1, "cooldown_ms": 60000},
 "proxy": {"listen": "127.0.0.1:$SERVE_PORT", "max_wait_ms": 1000}}
JSON
bg "$QT_BIN" serve -c "$TMP/cfg.json" --headless 2>"$TMP/serve.log"
wait_port "$SERVE_PORT" 10 || { fail "cache: serve starts" "$(cat "$TMP/serve.log")"; exit 1; }
URL="http://127.0.0.1:$SERVE_PORT/v1/chat/completions"
ask() {   # ask TEXT OUT: POSTs a chat request, the body to OUT, prints "status" and the headers to OUT.h
    curl -s -o "$2" -D "$2.h" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"model\": \"cm\", \"max_tokens\": 16, \"messages\": [{\"role\": \"user\", \"content\": \"$1\"}]}" "$URL"
}

expect_eq "cache: the first answer" "$(ask 'what is 2+2?' "$TMP/a1")" 200
first=$(json_get "$TMP/a1" 'd["choices"][0]["message"]["content"]')

# The model goes down; two failures open its circuit for a minute.
curl -s -X POST -d '{"model": "cm", "start_ms": 0, "duration_ms": 60000}' "$MOCK_URL/control/outage" >/dev/null
ask 'first other question' "$TMP/f1" >/dev/null
ask 'second other question' "$TMP/f2" >/dev/null
expect_ge "cache: the failures reached the mock" "$(mock_stat 'd["models"]["cm"]["status_5xx"]')" 2
sent=$(mock_stat 'd["models"]["cm"]["requests"]')

expect_eq "cache: the same request while the circuit is open: 200, not a 429" \
    "$(ask 'what is 2+2?' "$TMP/a2")" 200
expect_contains "cache: marked cached" "$(tr -d '\r' < "$TMP/a2.h")" "X-Quotatop-Cached: true"
expect_eq "cache: the first answer's content" "$(json_get "$TMP/a2" 'd["choices"][0]["message"]["content"]')" "$first"
expect_eq "cache: nothing more was sent upstream" "$(mock_stat 'd["models"]["cm"]["requests"]')" "$sent"

expect_eq "cache: a request never answered: still 429" "$(ask 'a new question' "$TMP/n1")" 429
expect_contains "cache: ... for the estimated wait" "$(cat "$TMP/n1")" "exceeds proxy.max_wait_ms"
