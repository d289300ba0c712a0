#!/usr/bin/env bash
# test_run_resume.sh: SIGINT stops a run promptly with a result for every
# job (`cancelled` for the unfinished), `--resume` completes the rest, and
# every job ends up done exactly once, upstream included. A second SIGINT
# stops at once. Jobs also arrive live on stdin. About 15 s.
source "$(dirname "$0")/lib.sh"

start_mock --model slow:rpm=600
cat > "$TMP/cfg.json" <<JSON
{"workers": 8,
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"slow": {"providers": ["mock"], "rpm": 600}}}
JSON
gen_jobs 60 slow 16 > "$TMP/jobs.jsonl"

"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/res.jsonl" "$TMP/jobs.jsonl" 2>"$TMP/run1.err" &
pid=$!
sleep 2
t0=$(date +%s.%N)
kill -INT "$pid"
wait "$pid"; rc=$?
t1=$(date +%s.%N)
expect_eq "sigint: exit 1 (jobs were cancelled)" "$rc" 1
expect_le "sigint: exits promptly" "$(python3 -c "print($t1 - $t0)")" 4
expect_eq "sigint: every job has a result" "$(wc -l < "$TMP/res.jsonl")" 60
ok1=$(results_count "$TMP/res.jsonl" ok)
expect_ge "sigint: some jobs were done" "$ok1" 5
expect_ge "sigint: the rest are cancelled" "$(results_count "$TMP/res.jsonl" cancelled)" 20

"$QT_BIN" run -c "$TMP/cfg.json" --headless --resume -o "$TMP/res.jsonl" "$TMP/jobs.jsonl" 2>"$TMP/run2.err"
expect_eq "resume: exit 0" "$?" 0
expect_contains "resume: says what it skips" "$(cat "$TMP/run2.err")" "$ok1 jobs already ok"
oks=$(python3 - "$TMP/res.jsonl" <<'PY'
import json, sys, collections
c = collections.Counter(json.loads(l)["id"] for l in open(sys.argv[1]) if json.loads(l)["status"] == "ok")
print(len(c), max(c.values()))
PY
)
expect_eq "resume: all 60 jobs ok, each exactly once" "$oks" "60 1"
expect_eq "resume: the upstream answered each job once" "$(mock_stat 'd["models"]["slow"]["ok"]')" 60

# A second SIGINT stops at once, aborting requests in flight (the upstream
# takes 20 s to answer here, far beyond the grace period).
start_mock --model glacial:latency=20000
sed "s#\"slow\": {\"providers\"#\"glacial\": {\"providers\": [\"m2\"]}, \"slow\": {\"providers\"#; s#\"providers\": {\"mock\"#\"providers\": {\"m2\": {\"kind\": \"openai\", \"base_url\": \"$MOCK_URL/v1\"}, \"mock\"#" \
    "$TMP/cfg.json" > "$TMP/cfg2.json"
gen_jobs 20 glacial 16 > "$TMP/glacial.jsonl"
"$QT_BIN" run -c "$TMP/cfg2.json" --headless -o "$TMP/res2.jsonl" "$TMP/glacial.jsonl" 2>"$TMP/run3.err" &
pid=$!
sleep 1
t0=$(date +%s.%N)
kill -INT "$pid"; sleep 0.2; kill -INT "$pid"
wait "$pid"; t1=$(date +%s.%N)
expect_le "second sigint: exits at once, in-flight requests aborted" "$(python3 -c "print($t1 - $t0)")" 2.5
expect_eq "second sigint: still a result per job" "$(wc -l < "$TMP/res2.jsonl")" 20
expect_eq "second sigint: all cancelled" "$(results_count "$TMP/res2.jsonl" cancelled)" 20

# Jobs piped in live on stdin: results appear before stdin closes.
mkfifo "$TMP/pipe"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/live.jsonl" - < "$TMP/pipe" 2>"$TMP/live.err" &
pid=$!
exec 7>"$TMP/pipe"
head -3 "$TMP/jobs.jsonl" >&7
for i in $(seq 1 50); do [ "$( { wc -l < "$TMP/live.jsonl"; } 2>/dev/null || echo 0)" -ge 3 ] && break; sleep 0.1; done
expect_eq "stdin: results are written while stdin is still open" "$(wc -l < "$TMP/live.jsonl")" 3
sed -n 4,5p "$TMP/jobs.jsonl" >&7
exec 7>&-
wait "$pid"
expect_eq "stdin: exit 0 after stdin closes" "$?" 0
expect_eq "stdin: 5 results" "$(results_count "$TMP/live.jsonl" ok)" 5
