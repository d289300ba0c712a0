#!/usr/bin/env bash
# quotatop check: the examples are valid, mistakes exit 2 naming the JSON path,
# and the API key's value is never printed.
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)

out=$(OPENAI_API_KEY=sk-test-SECRET-123 "$QT_BIN" check -c "$root/examples/config.json" 2>&1); rc=$?
expect_eq "check: example config exits 0" "$rc" 0
expect_contains "check: shows the full chain" "$out" "chain: gpt-4o -> claude-sonnet -> gpt-4o-mini -> @cache"
expect_contains "check: shows limits after headroom" "$out" "rpm 450 (of 500)"
expect_contains "check: says the key variable is set" "$out" '$OPENAI_API_KEY is set'
expect_contains "check: says a key variable is missing" "$out" '$ANTHROPIC_API_KEY is NOT set'
expect_not_contains "check: never prints the key" "$out" "sk-test-SECRET-123"

cat > "$TMP/bad.json" <<'JSON'
{"providers": {"oa": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
 "models": {"gpt-4o": {"providers": ["oa"], "fallback": ["gpt4o-mini"]},
            "gpt-4o-mini": {"providers": ["oa"]}}}
JSON
out=$("$QT_BIN" check -c "$TMP/bad.json" 2>&1); rc=$?
expect_eq "check: invalid config exits 2" "$rc" 2
expect_contains "check: error names the path and suggests" "$out" \
    'models.gpt-4o.fallback[0]: unknown model "gpt4o-mini" (did you mean "gpt-4o-mini"?)'

out=$("$QT_BIN" check -c "$TMP/missing.json" 2>&1); rc=$?
expect_eq "check: missing file exits 2" "$rc" 2
expect_contains "check: missing file is named" "$out" "cannot open $TMP/missing.json"

"$QT_BIN" check >/dev/null 2>&1; expect_eq "check: no -c is a usage error" "$?" 2

out=$("$QT_BIN" check -c "$root/examples/config.json" "$root/examples/jobs.jsonl" 2>&1); rc=$?
expect_eq "check: the example jobs are valid" "$rc" 0
expect_contains "check: counts the example jobs" "$out" "5 jobs valid"
printf '{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}\n{"model": "gpt-5"}\n' > "$TMP/jobs.jsonl"
out=$("$QT_BIN" check -c "$root/examples/config.json" "$TMP/jobs.jsonl" 2>&1); rc=$?
expect_eq "check: an invalid job line exits 2" "$rc" 2
expect_contains "check: names the bad line" "$out" 'line 2: unknown model "gpt-5"'
