#!/usr/bin/env bash
# Runs every tests/integration/test_*.sh against the binary given as $1 and
# prints a final "N passed, N failed" line. Each script reports its checks as
# "PASS name" / "FAIL name: why" lines (see lib.sh); a script that dies
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
    out=$(mktemp)
    timeout 300 bash "$t" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    p=$(grep -c '^PASS ' "$out") ; f=$(grep -c '^FAIL ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: script exited with status $rc"
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
    rm -f "$out"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
