#!/usr/bin/env bash
# qt_valgrind.sh: stands in for the quotatop binary (QT_BIN) and runs the
# real one (QT_VG_REAL) under valgrind memcheck, one log per process in
# QT_VG_LOGDIR (vg.<pid>.log). A leak or an invalid access makes the process
# exit 99, so the calling test sees it too; tests/valgrind/report.sh sums
# the logs. `quotatop mock` (the tests' fixture upstream) runs natively
# unless QT_VG_MOCK=1: under valgrind it is too slow to play the fast
# upstream the timing checks expect. Used by `make valgrind`.
set -u
real=${QT_VG_REAL:?QT_VG_REAL names the real binary}
logdir=${QT_VG_LOGDIR:?QT_VG_LOGDIR names the log folder}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "${1:-}" = mock ] && [ "${QT_VG_MOCK:-0}" != 1 ]; then
    exec "$real" "$@"
fi
exec valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-origins=yes \
    --num-callers=30 --suppressions="$here/valgrind.supp" \
    --log-file="$logdir/vg.%p.log" "$real" "$@"
