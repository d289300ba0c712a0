# lib.sh: helpers for integration tests (sourced). Tests drive the real binary
# ($QT_BIN) against servers they start on free loopback ports and stop on exit.
set -uo pipefail

QT_BIN=${QT_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/quotatop}
TMP=$(mktemp -d /tmp/qt-it.XXXXXX)
export XDG_STATE_HOME="$TMP/state"   # the default state_dir (spend ledger) stays in $TMP
_pids=()

cleanup() {
    for p in "${_pids[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null
    done
    for p in "${_pids[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# check NAME COMMAND...: PASS when the command succeeds.
check() {
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name" "command failed: $*"; fi
}

# expect_eq NAME ACTUAL EXPECTED
expect_eq() {
    if [ "$2" == "$3" ]; then pass "$1"; else fail "$1" "got '$2', expected '$3'"; fi
}

# expect_le / expect_ge NAME ACTUAL BOUND (numbers, may be decimals)
expect_le() {
    if awk -v a="$2" -v b="$3" 'BEGIN{exit !(a+0 <= b+0)}'; then pass "$1"; else fail "$1" "$2 > $3"; fi
}
expect_ge() {
    if awk -v a="$2" -v b="$3" 'BEGIN{exit !(a+0 >= b+0)}'; then pass "$1"; else fail "$1" "$2 < $3"; fi
}

# expect_contains NAME HAYSTACK NEEDLE
expect_contains() {
    if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1" "'$3' not in: ${2:0:300}"; fi
}
expect_not_contains() {
    if [[ "$2" != *"$3"* ]]; then pass "$1"; else fail "$1" "'$3' found in output"; fi
}

# free_port: prints a loopback TCP port nobody listens on, below the
# kernel's ephemeral range (32768+) so no outgoing connection (or its
# TIME_WAIT) can hold it when a server binds it a moment later.
free_port() {
    local p
    while :; do
        p=$(( 20000 + RANDOM % 12000 ))
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
    done
}

# wait_port PORT [SECONDS]: waits until something listens on PORT.
wait_port() {
    local i
    for ((i = 0; i < ${2:-10} * 20; i++)); do
        (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# bg COMMAND...: starts a command in the background, stopped at exit; sets $BG_PID.
bg() {
    "$@" &
    BG_PID=$!
    _pids+=("$BG_PID")
}

# start_mock ARGS...: starts `quotatop mock` on a free port; sets MOCK_PORT, MOCK_URL, MOCK_PID.
start_mock() {
    MOCK_PORT=$(free_port)
    bg "$QT_BIN" mock --listen "127.0.0.1:$MOCK_PORT" "$@" 2>"$TMP/mock.$MOCK_PORT.log"
    MOCK_PID=$BG_PID
    MOCK_URL="http://127.0.0.1:$MOCK_PORT"
    wait_port "$MOCK_PORT" 10 || { fail "start_mock" "mock did not listen on $MOCK_PORT"; return 1; }
}

# jq-free JSON field reader: json_get FILE_OR_- EXPR (python3 expression on `d`)
json_get() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]) if sys.argv[1]!="-" else sys.stdin); print(eval(sys.argv[2]))' "$1" "$2"
}

# gen_jobs N MODEL MAX_TOKENS [WORKFLOW] [PREFIX] [PROMPT_CHARS]: N job lines on stdout.
gen_jobs() {
    python3 - "$@" <<'PY'
import json, sys
n, model, mt = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
wf = sys.argv[4] if len(sys.argv) > 4 else "default"
prefix = sys.argv[5] if len(sys.argv) > 5 else "j"
chars = int(sys.argv[6]) if len(sys.argv) > 6 else 40
for i in range(n):
    text = ("job %d " % i + "x" * chars)[:chars]
    print(json.dumps({"id": "%s%d" % (prefix, i), "workflow": wf, "model": model,
                      "messages": [{"role": "user", "content": text}], "max_tokens": mt}))
PY
}

# mock_stat EXPR [URL]: a python expression on the mock's /stats JSON `d`.
mock_stat() { curl -s "${2:-$MOCK_URL}/stats" | json_get - "$1"; }

# results_count FILE STATUS: lines of that status in a results file.
results_count() { grep -c "\"status\":\"$2\"" "$1" 2>/dev/null || true; }

# unique_ids FILE: number of distinct ids in a results file.
unique_ids() { python3 -c 'import json,sys; print(len({json.loads(l)["id"] for l in open(sys.argv[1]) if l.strip()}))' "$1"; }

# tmux for dashboard tests: use_tmux starts a private tmux server for this
# test (killed at exit); tm runs tmux on it, cap PANE prints a pane, and
# wait_for PANE TEXT [SECONDS] waits until the pane shows TEXT (1 if never).
use_tmux() {
    command -v tmux >/dev/null || { fail "tmux" "tmux is not installed"; exit 0; }
    TMUX_SOCKET=qt-test-$$
    trap 'tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null; cleanup' EXIT
}
tm() { tmux -L "$TMUX_SOCKET" -f /dev/null "$@"; }
cap() { tm capture-pane -p -t "$1"; }
wait_for() {
    local i
    for ((i = 0; i < ${3:-10} * 10; i++)); do
        [[ "$(cap "$1")" == *"$2"* ]] && return 0
        sleep 0.1
    done
    return 1
}

# npm_clients NAME: installs tests/integration/proxy_client/package.json (the
# official SDKs from npm) into the ignored .npm/proxy_client/ when missing or
# changed, copies the scripts there and sets NPM_DIR. Returns 1 (after a
# FAIL line naming NAME) when node, npm or the install is missing.
npm_clients() {
    local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    NPM_DIR="$here/.npm/proxy_client"
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        fail "$1: node and npm" "not installed (Debian packages nodejs, npm)"
        return 1
    fi
    mkdir -p "$NPM_DIR"
    if ! cmp -s "$here/proxy_client/package.json" "$NPM_DIR/package.json" \
       || [ ! -d "$NPM_DIR/node_modules/openai" ] || [ ! -d "$NPM_DIR/node_modules/@anthropic-ai/sdk" ]; then
        cp "$here/proxy_client/package.json" "$NPM_DIR/package.json"
        if ! npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error >"$TMP/npm.log" 2>&1; then
            fail "$1: npm install" "$(tail -3 "$TMP/npm.log")"
            return 1
        fi
    fi
    cp "$here"/proxy_client/*.mjs "$NPM_DIR/"
}
