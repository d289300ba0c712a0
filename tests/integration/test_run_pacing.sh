#!/usr/bin/env bash
# test_run_pacing.sh: the quota fidelity bar of the Engine issue. A provider
# that enforces 1200 RPM per second (a 20-request bucket refilled at 20/s):
# 300 small jobs, 8 workers, headroom 0.99 must finish near the ideal
# 300 / 19.8 = 15.2 s with no 429. Then a TPM-bound run: zero 429s and near
# its ideal time. About 35 s.
source "$(dirname "$0")/lib.sh"

start_mock --model m1:rpm=1200 --model t1:tpm=60000
cat > "$TMP/cfg.json" <<JSON
{"workers": 8,
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"m1": {"providers": ["mock"], "rpm": 1200},
            "t1": {"providers": ["mock"], "tpm": 60000}},
 "limits": {"headroom": 0.99}}
JSON

gen_jobs 300 m1 16 > "$TMP/rpm.jsonl"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/rpm.out" --summary "$TMP/rpm.sum" "$TMP/rpm.jsonl" 2>"$TMP/rpm.err"
expect_eq "rpm: exit 0" "$?" 0
elapsed=$(json_get "$TMP/rpm.sum" 'd["elapsed_s"]')
echo "rpm run: ${elapsed}s (ideal 15.15s), upstream 429s: $(mock_stat 'd["total"]["rate_limited"]'), max in any 1 s: $(mock_stat 'd["models"]["m1"]["max_1s"]')"
expect_eq "rpm: 300 ok results" "$(results_count "$TMP/rpm.out" ok)" 300
expect_eq "rpm: zero upstream 429s" "$(mock_stat 'd["total"]["rate_limited"]')" 0
# Admissions are 50.5 ms apart (at most 20 in any second); arrival jitter at
# the upstream may put a 21st inside some window, which its bucket absorbs.
expect_le "rpm: about 20 a second at the upstream" "$(mock_stat 'd["models"]["m1"]["max_1s"]')" 21
expect_le "rpm: within 2% of the ideal 15.15 s (+0.3 s start-up)" "$elapsed" 15.75
expect_ge "rpm: not faster than the limit allows" "$elapsed" 14.6

# TPM-bound: each job costs ceil(200/4)=50 prompt + 100 max_tokens = 150
# tokens at the upstream; 60000*0.99/60 = 990 tokens/s -> 6.6 jobs/s.
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
gen_jobs 100 t1 100 tpm t 200 > "$TMP/tpm.jsonl"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/tpm.out" --summary "$TMP/tpm.sum" "$TMP/tpm.jsonl" 2>"$TMP/tpm.err"
expect_eq "tpm: exit 0" "$?" 0
elapsed=$(json_get "$TMP/tpm.sum" 'd["elapsed_s"]')
ideal=$(python3 -c 'print(round(100 * 150 / 990, 2))')
echo "tpm run: ${elapsed}s (ideal ${ideal}s), upstream 429s: $(mock_stat 'd["total"]["rate_limited"]')"
expect_eq "tpm: 100 ok results" "$(results_count "$TMP/tpm.out" ok)" 100
expect_eq "tpm: zero upstream 429s" "$(mock_stat 'd["total"]["rate_limited"]')" 0
expect_le "tpm: within 5% of the ideal time" "$elapsed" "$(python3 -c "print($ideal * 1.05 + 0.3)")"
expect_ge "tpm: not faster than the limit allows" "$elapsed" "$(python3 -c "print($ideal * 0.97)")"
expect_eq "tpm: summary prompt tokens agree with the upstream" \
    "$(json_get "$TMP/tpm.sum" 'd["prompt_tokens"]')" "$(mock_stat 'd["total"]["prompt_tokens"]')"
expect_eq "tpm: summary completion tokens agree with the upstream" \
    "$(json_get "$TMP/tpm.sum" 'd["completion_tokens"]')" "$(mock_stat 'd["total"]["completion_tokens"]')"
