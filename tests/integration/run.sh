#!/usr/bin/env bash
# Runs every tests/integration/test_*.sh against the binary given as $1 and
# prints a final "N passed, N failed" line. Each script reports its checks as
# "PASS name" / "FAIL name: why" lines on stdout (see lib.sh; its stderr is
# shown after it, apart); a script that dies
# without reporting counts as one failure. QT_INTEGRATION_FILTER=word runs
# only the scripts whose name contains word.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
export QT_BIN=$bin
passed=0 failed=0
for t in "$here"/test_*.sh; do
    name=$(basename "$t" .sh)
    if [ -n "${QT_INTEGRATION_FILTER:-}" ] && [[ "$name" != *"$QT_INTEGRATION_FILTER"* ]]; then
        continue
    fi
    echo "== $name"
    out=$(mktemp) err=$(mktemp)
    # PASS/FAIL lines are counted on stdout alone: a server's traceback on a
    # shared stderr, left without its newline, once glued itself in front of
    # a PASS line, which then went uncounted (a FAIL could have been too).
    timeout 300 bash "$t" 2>"$err" | tee "$out"
    rc=${PIPESTATUS[0]}
    [ -s "$err" ] && { echo "-- $name, its stderr:"; cat "$err"; } >&2
    p=$(grep -c '^PASS ' "$out") ; f=$(grep -c '^FAIL ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: script exited with status $rc"
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
    rm -f "$out" "$err"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
