#!/usr/bin/env bash
# Checks every build, test and runtime dependency of quotatop and installs the
# missing Debian packages when it can (root + apt-get); otherwise prints the
# exact apt-get line and fails. Quiet when everything is present.
set -euo pipefail

missing=()
need_pc() {  # pkg-config module, Debian package
    if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists "$1"; then
        missing+=("$2")
    fi
}
need_cmd() { # command, Debian package
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}

need_cmd pkg-config pkg-config
need_pc ncursesw libncurses-dev
need_pc libcurl libcurl4-openssl-dev
need_pc libcjson libcjson-dev
need_pc libmicrohttpd libmicrohttpd-dev
need_pc hiredis libhiredis-dev
need_pc sqlite3 libsqlite3-dev
need_pc criterion libcriterion-dev
need_cmd tmux tmux
need_cmd redis-server redis-server
need_cmd curl curl
need_cmd python3 python3
need_cmd node nodejs
need_cmd npm npm
# tests and benches: fuzzing (clang's libFuzzer runtime), valgrind, nginx with
# the echo module (a scalable slow or zero-latency upstream), wrk, redis-cli.
need_cmd clang clang
need_fuzzer() {
    command -v clang >/dev/null 2>&1 &&
        printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' |
        clang -fsanitize=fuzzer -x c - -o /dev/null >/dev/null 2>&1 || missing+=(libclang-rt-14-dev)
}
need_fuzzer
need_cmd valgrind valgrind
need_cmd nginx nginx
[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] || missing+=(libnginx-mod-http-echo)
need_cmd wrk wrk
need_cmd redis-cli redis-tools

[ ${#missing[@]} -eq 0 ] && exit 0

# De-duplicate while keeping order.
pkgs=$(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++' | tr '\n' ' ')
line="apt-get install -y --no-install-recommends $pkgs"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing $pkgs" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
    exit 0
fi
echo "deps: missing packages: $pkgs" >&2
echo "deps: run as root:  $line" >&2
exit 1
