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

# ---- the jobs file's quieter mistakes are warnings; root causes come first ----
printf '%s\n' '{"id":"a","model":"gpt4o","messages":[{"role":"user","content":"x"}]}' \
    '{"id":"a","workflw":"w","model":"gpt-4o","messages":[{"role":"user","content":"x"}]}' >"$TMP/lint.jsonl"
out=$(env -u ANTHROPIC_API_KEY OPENAI_API_KEY=x "$QT_BIN" check -c "$root/examples/config.json" "$TMP/lint.jsonl" 2>&1)
expect_contains "check jobs: did you mean for a misspelled model" "$out" 'unknown model "gpt4o" (not in the config) (did you mean "gpt-4o"?)'
expect_contains "check jobs: unknown job key warned" "$out" 'lint.jsonl:2: warning: unknown key "workflw" (did you mean "workflow"?)'
expect_contains "check jobs: duplicate id warned" "$out" 'lint.jsonl:1: warning: duplicate id "a" (also on line 2)'
expect_contains "check: an unset key variable is a warning naming it" "$out" \
    'warning: providers.anthropic.api_key_env: $ANTHROPIC_API_KEY is not set'
sed 's#"state_dir": "[^"]*"#"state_dir": "/proc/quotatop-no/state"#' "$root/examples/config.json" >"$TMP/sd.json"
out=$("$QT_BIN" check -c "$TMP/sd.json" 2>&1); rc=$?
expect_eq "check: an unwritable state_dir is only a warning" "$rc" 0
expect_contains "check: ... naming it" "$out" "warning: state_dir: /proc/quotatop-no/state cannot be written"
cat >"$TMP/providrs.json" <<'JSON'
{"providrs": {"oa": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
 "models": {"m": {"providers": ["oa"]}}}
JSON
first=$("$QT_BIN" check -c "$TMP/providrs.json" 2>&1 | head -1)
expect_contains "check: the misspelled providrs is reported first" "$first" 'providrs: unknown key, ignored (did you mean "providers"?)'

# ---- --version and the top-level usage ----
expect_contains "--version prints the version" "$("$QT_BIN" --version)" "quotatop 0."
u=$("$QT_BIN" --help)
for f in --stay --resume --idle-timeout --port-file --require-key-env --json --print-config; do
    expect_contains "usage lists $f" "$u" "$f"
done
# every flag any subcommand's --help names is in the top-level usage
missing=""
for c in demo run serve mock top check spend replay; do
    for f in $("$QT_BIN" $c --help 2>&1 | grep -oE '(^|[ [])--[a-z][a-z-]*' | tr -d ' [' | sort -u); do
        case $f in --help|--verbose|--config) continue ;; esac
        [[ "$u" == *"$f"* ]] || missing="$missing $c:$f"
    done
done
expect_eq "usage lists every subcommand's flags" "$missing" ""
