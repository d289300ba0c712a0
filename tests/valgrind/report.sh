#!/usr/bin/env bash
# report.sh DIR: sums the valgrind logs qt_valgrind.sh wrote in DIR (one per
# process): processes, those with errors, errors by kind, bytes lost. Lists
# each process with an error and its command. Exit 1 when any process has
# an error or a log is cut short (the process was killed: no summary).
set -u
dir=${1:?usage: report.sh DIR}
procs=0 bad=0 cut=0
declare -A kinds=()
for f in "$dir"/vg.*.log; do
    [ -e "$f" ] || continue
    procs=$((procs + 1))
    cmd=$(sed -n 's/^==[0-9]*== Command: //p' "$f" | head -1)
    if ! grep -q 'ERROR SUMMARY' "$f"; then
        cut=$((cut + 1)); echo "CUT   $(basename "$f"): $cmd (killed before valgrind's summary)"
        continue
    fi
    n=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$f" | tr -d , | tail -1)
    while read -r k; do
        kinds[$k]=$(( ${kinds[$k]:-0} + 1 ))
    done < <(grep -oE '== (Invalid (read|write|free\(\)) of size [0-9]+|Invalid free|Mismatched free|Conditional jump or move depends on uninitialised value|Use of uninitialised value|Syscall param [^ ]+|Source and destination overlap|[0-9,]+ (\([0-9,]+ direct, [0-9,]+ indirect\) )?bytes in [0-9,]+ blocks are (definitely|indirectly|possibly) lost)' "$f" \
             | sed -E 's/^== //; s/ of size [0-9]+//; s/^[0-9,]+ (\([^)]*\) )?bytes in [0-9,]+ blocks are /leak: /')
    if [ "${n:-0}" -gt 0 ]; then
        bad=$((bad + 1)); echo "ERR   $(basename "$f"): $n errors: $cmd"
    fi
done
echo "processes: $procs, with errors: $bad, cut short: $cut"
for k in "${!kinds[@]}"; do echo "  ${kinds[$k]} x $k"; done | sort -rn
[ "$bad" -eq 0 ]
