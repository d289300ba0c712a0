#!/usr/bin/env bash
# test_run_harden.sh: hostile files and flags for `run` (issue 12): -o naming
# the jobs file, a summary on a full disk or in a missing directory, --resume after a torn last line,
# duplicate ids, bytes that are not UTF-8. About 5 s.
source "$(dirname "$0")/lib.sh"

start_mock --model m
cat > "$TMP/cfg.json" <<JSON
{"workers": 4,
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"m": {"providers": ["mock"]}}}
JSON
gen_jobs 5 m 8 > "$TMP/jobs.jsonl"

# --- defect 7: -o naming the jobs file is refused, the input untouched
cp "$TMP/jobs.jsonl" "$TMP/in.jsonl"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/in.jsonl" "$TMP/in.jsonl" 2>"$TMP/same.err"
expect_eq "same file: exit 2" "$?" 2
expect_contains "same file: says why" "$(cat "$TMP/same.err")" "is the jobs file"
check "same file: the jobs file is untouched" cmp -s "$TMP/in.jsonl" "$TMP/jobs.jsonl"
ln -s "$TMP/in.jsonl" "$TMP/link.jsonl"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/link.jsonl" - < "$TMP/in.jsonl" 2>/dev/null
expect_eq "same file through a symlink and stdin: exit 2" "$?" 2
check "same file (stdin): untouched" cmp -s "$TMP/in.jsonl" "$TMP/jobs.jsonl"

# --- defect 8: a summary that cannot be written is an error that says so
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/r8.jsonl" --summary /dev/full "$TMP/jobs.jsonl" 2>"$TMP/full.err"
rc=$?
expect_eq "full disk summary: exit non-zero" "$([ $rc -ne 0 ] && echo yes || echo "no ($rc)")" yes
expect_contains "full disk summary: says what failed" "$(cat "$TMP/full.err")" "cannot write summary /dev/full"
# ... and one that cannot even be created is said before any job runs
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/r8b.jsonl" --summary "$TMP/no/such/dir/s.json" "$TMP/jobs.jsonl" 2>"$TMP/nodir.err"
expect_eq "summary in a missing directory: exit 2" "$?" 2
expect_contains "summary in a missing directory: says so" "$(cat "$TMP/nodir.err")" "cannot write summary $TMP/no/such/dir/s.json: No such file or directory"
expect_eq "summary in a missing directory: no job was sent" "$(mock_stat 'd["models"]["m"]["requests"]')" 0
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/r8c.jsonl" --summary "$TMP" "$TMP/jobs.jsonl" 2>"$TMP/isdir.err"
expect_eq "summary naming a directory: exit 2" "$?" 2
expect_contains "summary naming a directory: says so" "$(cat "$TMP/isdir.err")" "Is a directory"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o /dev/full "$TMP/jobs.jsonl" 2>"$TMP/full2.err"
rc=$?
expect_eq "full disk results: exit non-zero" "$([ $rc -ne 0 ] && echo yes || echo "no ($rc)")" yes
expect_contains "full disk results: says what failed" "$(cat "$TMP/full2.err")" "/dev/full"

# --- defect 5: --resume after a torn last line
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/r5.jsonl" "$TMP/jobs.jsonl" 2>/dev/null
grep -v '"id":"j4"' "$TMP/r5.jsonl" > "$TMP/r5b.jsonl"
grep '"id":"j4"' "$TMP/r5.jsonl" | head -c 30 >> "$TMP/r5b.jsonl"     # torn: no newline
mv "$TMP/r5b.jsonl" "$TMP/r5.jsonl"
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
"$QT_BIN" run -c "$TMP/cfg.json" --headless --resume -o "$TMP/r5.jsonl" "$TMP/jobs.jsonl" 2>"$TMP/r5.err"
expect_eq "torn: exit 0" "$?" 0
expect_contains "torn: the torn line is reported" "$(cat "$TMP/r5.err")" "the last line is torn"
expect_eq "torn: only the torn job is sent again" "$(mock_stat 'd["models"]["m"]["requests"]')" 1
python3 - "$TMP/r5.jsonl" > "$TMP/r5.check" <<'PY'
import json, sys
ok, bad = set(), 0
for l in open(sys.argv[1]):
    try:
        o = json.loads(l)
        if o["status"] == "ok": ok.add(o["id"])
    except Exception:
        bad += 1
print(len(ok), bad)
PY
expect_eq "torn: 5 ok lines, the one fragment on its own line" "$(cat "$TMP/r5.check")" "5 1"
"$QT_BIN" run -c "$TMP/cfg.json" --headless --resume -o "$TMP/r5.jsonl" "$TMP/jobs.jsonl" 2>"$TMP/r5c.err"
expect_eq "torn: a second resume sends nothing" "$(mock_stat 'd["models"]["m"]["requests"]')" 1

# --- defect 9: duplicate ids: the first valid line claims the id, however
# the lines arrive; 1 and "1" are one id; a default id counts too
cat > "$TMP/dup.jsonl" <<'J'
{"id": "a", "model": "m", "messages": [{"role": "user", "content": "x"}]}
{"id": "a", "model": "m", "messages": [{"role": "user", "content": "x"}]}
{"id": 1, "model": "m", "messages": [{"role": "user", "content": "x"}]}
{"id": "1", "model": "m", "messages": [{"role": "user", "content": "x"}]}
{"id": "6", "model": "m", "messages": [{"role": "user", "content": "x"}]}
{"model": "m", "messages": [{"role": "user", "content": "x"}]}
J
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/dup.out" "$TMP/dup.jsonl" 2>/dev/null
order() { python3 -c 'import json,sys; r={}; [r.setdefault(json.loads(l)["id"],[]).append(json.loads(l)["status"]) for l in open(sys.argv[1])]; print(sorted((k,sorted(v)) for k,v in r.items()))' "$1"; }
want="[('1', ['invalid', 'ok']), ('6', ['invalid', 'ok']), ('a', ['invalid', 'ok'])]"
expect_eq "dup (read together): one ok and one invalid per id" "$(order "$TMP/dup.out")" "$want"
expect_eq "dup (read together): 3 sent" "$(mock_stat 'd["models"]["m"]["requests"]')" 3
expect_contains "dup: the error names the first line" "$(cat "$TMP/dup.out")" 'duplicate job id \"a\" (first on line 1)'
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
( while read -r l; do echo "$l"; sleep 0.6; done < "$TMP/dup.jsonl" ) | \
    "$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/dup2.out" - 2>/dev/null
expect_eq "dup (read apart): the same outcome" "$(order "$TMP/dup2.out")" "$want"
expect_eq "dup (read apart): 3 sent, none billed twice" "$(mock_stat 'd["models"]["m"]["requests"]')" 3

# --- defect 10: bytes that are not UTF-8
printf '{"id": "u1", "model": "m", "messages": [{"role": "user", "content": "caf\xe9"}]}\n{"id": "u2\xff", "model": "m", "messages": [{"role": "user", "content": "ok"}]}\n{"id": "u3", "model": "m", "messages": [{"role": "user", "content": "caf\xc3\xa9"}]}\n' > "$TMP/utf.jsonl"
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/utf.out" "$TMP/utf.jsonl" 2>/dev/null
strict=$(python3 -c '
import json, sys
n = 0
for l in open(sys.argv[1], "rb"):
    json.loads(l.decode("utf-8", errors="strict")); n += 1
print(n)' "$TMP/utf.out" 2>&1)
expect_eq "utf-8: every result line is strict UTF-8 JSON" "$strict" 3
expect_eq "utf-8: the two bad lines are invalid" "$(results_count "$TMP/utf.out" invalid)" 2
expect_contains "utf-8: the error says why" "$(cat "$TMP/utf.out")" "not valid UTF-8"
expect_eq "utf-8: the good line is ok" "$(grep '"id":"u3"' "$TMP/utf.out" | json_get - 'd["status"]')" ok

