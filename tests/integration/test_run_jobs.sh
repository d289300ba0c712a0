#!/usr/bin/env bash
# test_run_jobs.sh: every line gets exactly one result: malformed and
# unknown-model lines become `invalid` results naming the line and the run
# goes on; the Anthropic kind end to end; the API key is sent upstream but
# never printed; budgets with 8+ workers are never exceeded; @cache answers
# when the chain is exhausted; results and summary agree with the upstream.
source "$(dirname "$0")/lib.sh"

export QT_TEST_KEY="sk-test-DO-NOT-PRINT-4242"
start_mock --require-key-env QT_TEST_KEY --model gpt-x --model claude-x
cat > "$TMP/cfg.json" <<JSON
{"workers": 8,
 "providers": {"oa": {"kind": "openai", "base_url": "$MOCK_URL/v1", "api_key_env": "QT_TEST_KEY"},
               "an": {"kind": "anthropic", "base_url": "$MOCK_URL/v1", "api_key_env": "QT_TEST_KEY"},
               "nokey": {"kind": "openai", "base_url": "$MOCK_URL/v1", "api_key_env": "QT_TEST_UNSET_KEY"}},
 "models": {"gpt-x": {"providers": ["oa"], "input_usd_per_mtok": 2, "output_usd_per_mtok": 8},
            "claude-x": {"providers": ["an"], "upstream_model": "claude-x", "input_usd_per_mtok": 3, "output_usd_per_mtok": 15},
            "locked": {"providers": ["nokey"], "upstream_model": "gpt-x"}}}
JSON

python3 - > "$TMP/mixed.jsonl" <<'PY'
import json
ok = lambda i, m: json.dumps({"id": "ok%d" % i, "workflow": "w%d" % (i % 2), "model": m,
                              "messages": [{"role": "system", "content": "be brief"},
                                           {"role": "user", "content": "question %d" % i}], "max_tokens": 20})
lines = [ok(1, "gpt-x"), '{"id": "bad-json", "model": ', ok(2, "claude-x"),
         json.dumps({"id": "nomodel", "model": "gpt-y", "messages": [{"role": "user", "content": "x"}]}),
         "", json.dumps({"id": "nomsg", "model": "gpt-x"}), ok(3, "gpt-x"), "[1, 2]", ok(4, "claude-x"),
         json.dumps({"id": "nokey", "model": "locked", "messages": [{"role": "user", "content": "x"}]})]
print("\n".join(lines))
PY
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/mixed.out" --summary "$TMP/mixed.sum" "$TMP/mixed.jsonl" 2>"$TMP/mixed.err"
expect_eq "jobs: exit 1 when some job is not ok" "$?" 1
expect_contains "jobs: an unset key variable is warned about at start, by name" "$(cat "$TMP/mixed.err")" \
    'warning: providers.nokey.api_key_env: $QT_TEST_UNSET_KEY is not set'
expect_eq "jobs: one result per non-blank line" "$(wc -l < "$TMP/mixed.out")" 9
expect_eq "jobs: distinct ids" "$(unique_ids "$TMP/mixed.out")" 9
expect_eq "jobs: 4 ok" "$(results_count "$TMP/mixed.out" ok)" 4
expect_eq "jobs: 4 invalid" "$(results_count "$TMP/mixed.out" invalid)" 4
line() { grep "\"id\":\"$1\"" "$TMP/mixed.out"; }
expect_contains "jobs: malformed JSON names its line" "$(line 2)" 'line 2: malformed JSON'
expect_contains "jobs: unknown model named" "$(line nomodel)" 'line 4: unknown model \"gpt-y\"'
expect_contains "jobs: missing messages named" "$(line nomsg)" 'line 6: no \"messages\"'
expect_contains "jobs: a non-object line is invalid" "$(line 8)" 'line 8: a job must be a JSON object'
expect_contains "jobs: a 401 is fatal and says so" "$(line nokey)" '"status":"failed"'
expect_contains "jobs: the 401 reason is the provider's" "$(line nokey)" '401'
expect_contains "anthropic: answered through /v1/messages" "$(line ok2)" '"provider":"an"'
expect_eq "anthropic: the upstream saw 2 Anthropic requests" "$(mock_stat 'd["models"]["claude-x"]["ok"]')" 2
ptok=$(line ok2 | json_get - 'd["prompt_tokens"]')
expect_ge "anthropic: usage read from input_tokens" "$ptok" 1
expect_eq "summary: requests agree with the upstream" \
    "$(json_get "$TMP/mixed.sum" 'd["requests"]')" "$(mock_stat 'd["total"]["requests"]')"
expect_eq "summary: prompt tokens agree with the upstream" \
    "$(json_get "$TMP/mixed.sum" 'd["prompt_tokens"]')" "$(mock_stat 'd["total"]["prompt_tokens"]')"
cost=$(python3 - "$TMP/mixed.out" <<'PY'
import json, sys
print(round(sum(json.loads(l)["cost_usd"] for l in open(sys.argv[1])), 9))
PY
)
expect_eq "summary: spend equals the sum of the result lines" "$(json_get "$TMP/mixed.sum" 'round(d["cost_usd"], 9)')" "$cost"
all=$(cat "$TMP/mixed.out" "$TMP/mixed.err" "$TMP/mixed.sum" "$TMP"/mock.*.log)
expect_not_contains "secrets: the API key is never printed" "$all" "$QT_TEST_KEY"

# --- budgets: 8 workers race for a run budget that fits about 30 jobs
cat > "$TMP/budget.json" <<JSON
{"workers": 12,
 "providers": {"oa": {"kind": "openai", "base_url": "$MOCK_URL/v1", "api_key_env": "QT_TEST_KEY"}},
 "models": {"gpt-x": {"providers": ["oa"], "input_usd_per_mtok": 1000, "output_usd_per_mtok": 1000}},
 "budget": {"run_usd": 1.0, "warn_ratio": 0.5, "workflows": {"capped": 0.2}}}
JSON
# each job: ~15 prompt + 16 max_tokens ~ 31 tokens ~ $0.031 worst case
gen_jobs 80 gpt-x 16 open o 40 > "$TMP/budget.jsonl"
gen_jobs 20 gpt-x 16 capped c 40 >> "$TMP/budget.jsonl"
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
"$QT_BIN" run -c "$TMP/budget.json" --headless -o "$TMP/budget.out" --summary "$TMP/budget.sum" "$TMP/budget.jsonl" 2>"$TMP/budget.err"
expect_eq "budget: exit 1 (some jobs rejected)" "$?" 1
spent=$(json_get "$TMP/budget.sum" 'd["cost_usd"]')
upstream=$(python3 -c "import json,urllib.request; d=json.load(urllib.request.urlopen('$MOCK_URL/stats')); t=d['total']; print((t['prompt_tokens']+t['completion_tokens'])*1000/1e6)")
echo "budget: spent \$$spent (upstream billed \$$upstream) of \$1.00"
expect_le "budget: run spend never exceeds the run budget" "$spent" 1.0
expect_le "budget: the upstream's tokens never exceed it either" "$upstream" 1.0
expect_ge "budget: most of the budget was used (not refused early)" "$spent" 0.85
expect_le "budget: workflow spend within its budget" "$(json_get "$TMP/budget.sum" 'd["workflows"]["capped"]["cost_usd"]')" 0.2
expect_ge "budget: some jobs rejected" "$(results_count "$TMP/budget.out" rejected)" 1
expect_eq "budget: every job has exactly one result" "$(unique_ids "$TMP/budget.out")" 100
expect_contains "budget: the rejection names the budget" "$(grep -m1 rejected "$TMP/budget.out")" "budget"
expect_eq "budget: rejected jobs were never sent" \
    "$(mock_stat 'd["total"]["requests"]')" "$(results_count "$TMP/budget.out" ok)"
