#!/usr/bin/env bash
# test_redis.sh: several quotatop processes sharing one quota, one budget
# and one pause through Redis (backend.kind "redis"), against one mock that
# enforces 1200 RPM per second (a 20-request bucket refilled at 20/s):
#  - shared quota: 2 `run` + 1 `serve` (with a client), headroom 0.99: no
#    upstream 429, total time within 3% of one process doing it all;
#  - no thread per request: 400 in flight through the fleet, a few threads;
#  - shared budget: 3 processes x 16 workers, a day budget, 5 rounds: the
#    fleet's spend is never above it;
#  - outage: Redis killed mid-run and restarted, on_error local (no 429: the
#    share is limit / 3) and closed (nothing sent while down), recovery;
#  - dead process: kill -9 of a process holding concurrency slots and
#    budget reservations: freed after backend.lease_ms;
#  - fleet pause: the pause key on one dashboard stops all three;
#  - Redis Cluster (3 masters): the quota test again.
# Redis servers run on free loopback ports, killed by PID. Skips (with a
# message, no failure) when redis-server is not installed. About 2.5 min.
source "$(dirname "$0")/lib.sh"

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    echo "SKIP test_redis: redis-server / redis-cli not installed"
    exit 0
fi

# start_redis [ARGS...]: sets REDIS_PORT, REDIS_PID.
start_redis() {
    REDIS_PORT=${REDIS_FIXED_PORT:-$(free_port)}
    bg redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$TMP" "$@" >"$TMP/redis.$REDIS_PORT.log" 2>&1
    REDIS_PID=$BG_PID
    wait_port "$REDIS_PORT" 10 || { fail "start_redis" "redis did not listen on $REDIS_PORT"; exit 1; }
}
stop_redis() { kill -9 "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; }
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# config FILE PREFIX [EXTRA_BACKEND] [EXTRA_TOP]: the shared-quota config.
config() {
    cat > "$1" <<JSON
{"workers": ${WORKERS:-8},
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1" ${PROVIDER_EXTRA:-}}},
 "models": {"m1": {"providers": ["mock"], "rpm": 1200, "input_usd_per_mtok": 1000, "output_usd_per_mtok": 1000},
            "b1": {"providers": ["mock"], "input_usd_per_mtok": 1000, "output_usd_per_mtok": 1000},
            "slow": {"providers": ["mock"], "input_usd_per_mtok": 1000, "output_usd_per_mtok": 1000}},
 "limits": {"headroom": 0.99}, "state_dir": "" ${4:-},
 "backend": {"kind": "redis", "url": "redis://127.0.0.1:${URL_PORT:-$REDIS_PORT}", "prefix": "$2" ${3:-}}}
JSON
}

# now_s: seconds since the epoch, with decimals.
now_s() { date +%s.%N; }

# wait_pids PID...: waits for processes that are not children of this shell's bg.
wait_all() { local p; for p in "$@"; do wait "$p" 2>/dev/null; done; }

# client URL N CONC MODEL OUT: N chat requests to a serve, CONC at once; writes "ok errors" to OUT.
client() {
    python3 - "$@" <<'PY'
import json, sys, urllib.request, concurrent.futures as cf
url, n, conc, model, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def one(i):
    body = json.dumps({"model": model, "max_tokens": 16,
                       "messages": [{"role": "user", "content": "job %d xxxxxxxx" % i}]}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status == 200
    except Exception:
        return False
with cf.ThreadPoolExecutor(conc) as ex:
    ok = sum(ex.map(one, range(n)))
open(out, "w").write("%d %d\n" % (ok, n - ok))
PY
}

start_mock --model m1:rpm=1200 --model slow:latency=30000
start_redis

# ---- shared quota: baseline, one process doing all 300 -----------------------
config "$TMP/base.json" base
gen_jobs 300 m1 16 > "$TMP/all.jsonl"
t0=$(now_s)
"$QT_BIN" run -c "$TMP/base.json" --headless -o "$TMP/base.out" "$TMP/all.jsonl" 2>"$TMP/base.err"
expect_eq "quota: baseline exit 0" "$?" 0
base_s=$(python3 -c "print(round($(now_s) - $t0, 2))")
expect_eq "quota: baseline 0 upstream 429s" "$(mock_stat 'd["total"]["rate_limited"]')" 0

# ---- shared quota: 2 run + 1 serve, 100 each ----------------------------------
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
config "$TMP/q.json" quota
gen_jobs 100 m1 16 default a > "$TMP/a.jsonl"
gen_jobs 100 m1 16 default b > "$TMP/b.jsonl"
SERVE_PORT=$(free_port)
bg "$QT_BIN" serve -c "$TMP/q.json" --listen "127.0.0.1:$SERVE_PORT" --headless 2>"$TMP/serve.err"
SERVE_PID=$BG_PID
wait_port "$SERVE_PORT" 10 || fail "quota: serve listens" "no listener"
t0=$(now_s)
"$QT_BIN" run -c "$TMP/q.json" --headless -o "$TMP/a.out" "$TMP/a.jsonl" 2>"$TMP/a.err" & pa=$!
"$QT_BIN" run -c "$TMP/q.json" --headless -o "$TMP/b.out" "$TMP/b.jsonl" 2>"$TMP/b.err" & pb=$!
client "http://127.0.0.1:$SERVE_PORT" 100 8 m1 "$TMP/client.out" & pc=$!
procs_seen=0
for i in $(seq 1 30); do
    n=$(rcli ZCARD "{quota}:procs")
    [ "${n:-0}" -gt "$procs_seen" ] && procs_seen=$n
    [ "$procs_seen" -ge 3 ] && break
    sleep 0.1
done
wait_all $pa $pb $pc
shared_s=$(python3 -c "print(round($(now_s) - $t0, 2))")
kill "$SERVE_PID" 2>/dev/null
echo "quota: one process ${base_s}s, three processes ${shared_s}s; upstream 429s $(mock_stat 'd["total"]["rate_limited"]'), max in any 1 s $(mock_stat 'd["models"]["m1"]["max_1s"]')"
expect_eq "quota: the fleet view saw 3 processes" "$procs_seen" 3
expect_eq "quota: run a 100 ok" "$(results_count "$TMP/a.out" ok)" 100
expect_eq "quota: run b 100 ok" "$(results_count "$TMP/b.out" ok)" 100
expect_eq "quota: serve client 100 ok" "$(cut -d' ' -f1 "$TMP/client.out")" 100
expect_eq "quota: 0 upstream 429s with 3 processes" "$(mock_stat 'd["total"]["rate_limited"]')" 0
expect_eq "quota: the upstream saw 300 requests" "$(mock_stat 'd["total"]["requests"]')" 300
expect_le "quota: total time within 3% of one process ($base_s s)" "$shared_s" "$(python3 -c "print($base_s * 1.03)")"
expect_ge "quota: not faster than the shared limit allows" "$shared_s" 14.6
keys_without_ttl=$(for k in $(rcli --scan --pattern '{quota}*'); do rcli PTTL "$k"; done | grep -c -- '^-1$')
expect_eq "quota: every key has a TTL" "$keys_without_ttl" 0

# ---- no thread per request: 400 in flight through the fleet ------------------
# Every admission goes through Redis; none holds a thread (the event runtime,
# not a worker thread per request): 400 requests on the wire to the slow
# model (30 s) are carried by a handful of threads.
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
WORKERS=400 config "$TMP/t.json" threads
gen_jobs 400 slow 16 default t > "$TMP/t.jsonl"
"$QT_BIN" run -c "$TMP/t.json" --headless -o "$TMP/t.out" "$TMP/t.jsonl" 2>"$TMP/t.err" & tp=$!
sent=0
for i in $(seq 1 100); do
    sent=$(mock_stat 'd["total"]["requests"]')
    [ "${sent:-0}" -ge 400 ] && break
    sleep 0.1
done
threads=$(ls "/proc/$tp/task" 2>/dev/null | wc -l)
leases=0
for i in $(seq 1 30); do   # the heartbeat (about once a second) carries the leases held
    k=$(rcli --scan --pattern '{threads}:proc:*' | head -1)
    leases=$(rcli GET "$k" | cut -d'|' -f4)
    [ "${leases:-0}" -ge 400 ] && break
    sleep 0.1
done
echo "threads: $sent requests on the wire, $leases fleet leases held, the process has $threads threads"
expect_eq "threads: 400 requests in flight" "$sent" 400
expect_eq "threads: each holds a lease the fleet admitted" "$leases" 400
expect_le "threads: no thread per request (a few loop threads + the backend's)" "$threads" 16
kill "$tp" 2>/dev/null; wait "$tp" 2>/dev/null

# ---- shared budget: 3 processes x 16 workers, 5 rounds ------------------------
# Each job: prompt ceil(40/4)=10 + max_tokens 40 at $1000/Mtok = $0.05
# reserved; the mock bills 10 + ~22 completion tokens, about $0.032.
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
gen_jobs 30 b1 40 default x > "$TMP/bud.jsonl"
over=0 spent_max=0
for round in 1 2 3 4 5; do
    WORKERS=16 config "$TMP/bud.json" "bud$round" "" ', "budget": {"day_usd": 1.0}'
    pids=()
    for p in 1 2 3; do
        "$QT_BIN" run -c "$TMP/bud.json" --headless -o "$TMP/bud$p.out" --summary "$TMP/bud$p.sum" \
            "$TMP/bud.jsonl" 2>"$TMP/bud$p.err" & pids+=($!)
    done
    wait_all "${pids[@]}"
    total=$(python3 -c "import json; print(sum(json.load(open('$TMP/bud%d.sum' % p))['cost_usd'] for p in (1,2,3)))")
    redis_spent=$(rcli HGET "{bud$round}:b:day:$(( $(date -u +%s) / 86400 ))" spent)
    echo "budget round $round: fleet spend \$$total (redis $redis_spent nUSD) of \$1.00"
    awk -v t="$total" 'BEGIN{exit !(t > 1.0)}' && over=$((over + 1))
    awk -v t="$total" -v m="$spent_max" 'BEGIN{exit !(t > m)}' && spent_max=$total
done
expect_eq "budget: the fleet's spend never above the day budget (5 rounds)" "$over" 0
expect_ge "budget: the budget was used (not refused early)" "$spent_max" 0.85
expect_ge "budget: jobs past the budget were rejected" "$(cat "$TMP"/bud?.out | grep -c '"rejected"')" 1

# ---- outage: Redis killed mid-run and restarted -------------------------------
outage() {   # outage POLICY
    local policy=$1
    curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
    config "$TMP/o.json" "out$policy" ", \"on_error\": \"$policy\", \"expected_processes\": 3, \"timeout_ms\": 200"
    gen_jobs 80 m1 16 default o > "$TMP/o.jsonl"
    local pids=() p
    for p in 1 2 3; do
        "$QT_BIN" run -c "$TMP/o.json" --headless -v -o "$TMP/o$p.out" "$TMP/o.jsonl" 2>"$TMP/o$p.err" & pids+=($!)
    done
    sleep 3
    stop_redis
    sleep 1
    local sent_down0 sent_down1 ta tb
    sent_down0=$(mock_stat 'd["total"]["requests"]'); ta=$(now_s)
    sleep 2.5
    sent_down1=$(mock_stat 'd["total"]["requests"]'); tb=$(now_s)
    REDIS_FIXED_PORT=$REDIS_PORT start_redis
    wait_all "${pids[@]}"
    local ok=0
    for p in 1 2 3; do ok=$((ok + $(results_count "$TMP/o$p.out" ok))); done
    echo "outage ($policy): sent while down $((sent_down1 - sent_down0)) in $(python3 -c "print(round($tb - $ta, 2))") s, 429s $(mock_stat 'd["total"]["rate_limited"]'), ok $ok/240"
    expect_eq "outage $policy: every job ok after recovery" "$ok" 240
    expect_eq "outage $policy: 0 upstream 429s (no multiplied limit)" "$(mock_stat 'd["total"]["rate_limited"]')" 0
    expect_contains "outage $policy: an event says redis is down" "$(cat "$TMP"/o?.err)" "redis down"
    expect_contains "outage $policy: an event says redis is back" "$(cat "$TMP"/o?.err)" "redis back"
    if [ "$policy" = closed ]; then
        expect_eq "outage closed: nothing sent while redis was down" "$((sent_down1 - sent_down0))" 0
    else
        # this process's share: 3 x 1188/3 per minute = 19.8/s at most over the
        # time between the two samples, plus one request per process (a
        # sample can fall just after a send); a multiplied limit would be 3x.
        expect_le "outage local: the fleet kept to the limit while down" "$((sent_down1 - sent_down0))" \
            "$(python3 -c "print(19.8 * ($tb - $ta) + 3)")"
        expect_ge "outage local: dispatch went on while down" "$((sent_down1 - sent_down0))" 20
    fi
}
outage local
outage closed

# ---- dead process: kill -9 with slots and reservations held -------------------
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
PROVIDER_EXTRA=', "max_concurrent": 4' config "$TMP/d.json" dead ', "lease_ms": 2000' ', "budget": {"day_usd": 100}'
gen_jobs 4 slow 16 default s > "$TMP/slow.jsonl"
gen_jobs 4 m1 16 default f > "$TMP/fast.jsonl"
"$QT_BIN" run -c "$TMP/d.json" --headless -o "$TMP/slow.out" "$TMP/slow.jsonl" 2>"$TMP/slow.err" & victim=$!
held=0
for i in $(seq 1 50); do
    held=$(rcli ZCARD "{dead}:sl:provider:mock")
    [ "${held:-0}" -ge 4 ] && break
    sleep 0.1
done
expect_eq "dead: the victim holds all 4 slots" "$held" 4
day=$(( $(date -u +%s) / 86400 ))
reserved=$(rcli HGET "{dead}:b:day:$day" reserved)
expect_ge "dead: the victim holds budget reservations" "${reserved:-0}" 1
kill -9 "$victim"; wait "$victim" 2>/dev/null
t0=$(now_s)
"$QT_BIN" run -c "$TMP/d.json" --headless -o "$TMP/fast.out" "$TMP/fast.jsonl" 2>"$TMP/fast.err"
took=$(python3 -c "print(round($(now_s) - $t0, 2))")
echo "dead: the next process got the slots after ${took}s (lease 2 s)"
expect_eq "dead: the next process's 4 jobs ok" "$(results_count "$TMP/fast.out" ok)" 4
expect_ge "dead: it waited for the lease" "$took" 0.8
expect_le "dead: slots freed within the lease (+ heartbeat and start-up)" "$took" 4.5
expect_eq "dead: the victim's reservations were freed" "$(rcli HGET "{dead}:b:day:$day" reserved)" 0

# ---- fleet pause: the pause key on one dashboard stops all three --------------
use_tmux
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
config "$TMP/p.json" pause ', "lease_ms": 3000'
gen_jobs 150 m1 16 default p > "$TMP/p.jsonl"
tm new-session -d -s dash -x 160 -y 50 "$QT_BIN run -c $TMP/p.json -o $TMP/p0.out $TMP/p.jsonl 2>$TMP/p0.err"
"$QT_BIN" run -c "$TMP/p.json" --headless -v -o "$TMP/p1.out" "$TMP/p.jsonl" 2>"$TMP/p1.err" & p1=$!
"$QT_BIN" run -c "$TMP/p.json" --headless -v -o "$TMP/p2.out" "$TMP/p.jsonl" 2>"$TMP/p2.err" & p2=$!
sleep 2.5
tm send-keys -t dash p
sleep 1
before=$(mock_stat 'd["total"]["requests"]')
sleep 2
after=$(mock_stat 'd["total"]["requests"]')
echo "pause: requests during 2 s of fleet pause: $((after - before)) (before: $before)"
expect_ge "pause: the fleet was sending before" "$before" 20
expect_eq "pause: nothing sent by any process while paused" "$((after - before))" 0
expect_contains "pause: the headless processes saw the fleet pause" "$(cat "$TMP/p1.err" "$TMP/p2.err")" "paused (fleet)"
tm send-keys -t dash p
sleep 1.5
resumed=$(mock_stat 'd["total"]["requests"]')
expect_ge "pause: resume from the same key restarts the fleet" "$((resumed - after))" 10
wait_for dash "fleet 3 procs" 5
expect_contains "dashboard: the header shows the fleet" "$(cap dash)" "fleet 3 procs"
tm send-keys -t dash '['   # LIMITS (focused first): lower the selected row's RPM by 10%
sleep 0.5
expect_contains "limits: a limit changed on one dashboard is stored for the fleet" \
    "$(rcli HGETALL '{pause}:ctl' | tr '\n' ' ')" "rpm:"
stop_redis
wait_for dash "REDIS DOWN" 5
expect_contains "dashboard: marks Redis down and the share in force" "$(cap dash)" "REDIS DOWN: this process's share, limits /3"
tm kill-session -t dash
kill "$p1" "$p2" 2>/dev/null; wait_all "$p1" "$p2"

# ---- Redis Cluster: 3 masters, the quota test ---------------------------------
stop_redis
ports=()
# A cluster node also listens on port + 10000 (the bus): both must be free
# and below the ephemeral range (32768+).
cluster_port() {
    local p
    while :; do
        p=$(( 20000 + RANDOM % 2500 ))
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && continue
        (exec 3<>/dev/tcp/127.0.0.1/$((p + 10000))) 2>/dev/null && continue
        echo "$p"; return
    done
}
for n in 1 2 3; do
    REDIS_FIXED_PORT=$(cluster_port) start_redis --cluster-enabled yes --cluster-config-file "$TMP/nodes.$n.conf" --cluster-node-timeout 2000
    ports+=("$REDIS_PORT")
done
yes yes | redis-cli --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}" \
    --cluster-replicas 0 --cluster-yes >"$TMP/cluster.log" 2>&1
for i in $(seq 1 50); do
    redis-cli -p "${ports[0]}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
    sleep 0.2
done
expect_contains "cluster: 3 masters up" "$(redis-cli -p "${ports[0]}" cluster info)" "cluster_state:ok"
slot=$(redis-cli -p "${ports[0]}" cluster keyslot "{cq}")
owner=$(redis-cli -p "${ports[0]}" cluster nodes | awk -v s="$slot" '{ for (i = 9; i <= NF; i++) { split($i, r, "-"); if (s >= r[1] && s <= (r[2] == "" ? r[1] : r[2])) print $2 } }' | head -1)
# Point the processes at a node that does not own the slot: MOVED must be followed.
for p in "${ports[@]}"; do [[ "$owner" != *":$p@"* ]] && { URL_PORT=$p; break; }; done
echo "cluster: slot $slot of {cq} on ${owner%@*}; processes told 127.0.0.1:$URL_PORT"
curl -s -X POST "$MOCK_URL/stats/reset" >/dev/null
URL_PORT=$URL_PORT config "$TMP/c.json" cq
gen_jobs 60 m1 16 default c > "$TMP/c.jsonl"
t0=$(now_s)
pids=()
for p in 1 2 3; do
    "$QT_BIN" run -c "$TMP/c.json" --headless -o "$TMP/c$p.out" "$TMP/c.jsonl" 2>"$TMP/c$p.err" & pids+=($!)
done
wait_all "${pids[@]}"
took=$(python3 -c "print(round($(now_s) - $t0, 2))")
ok=0; for p in 1 2 3; do ok=$((ok + $(results_count "$TMP/c$p.out" ok))); done
echo "cluster: 180 jobs by 3 processes in ${took}s (ideal 9.1 s), 429s $(mock_stat 'd["total"]["rate_limited"]')"
expect_eq "cluster: 180 ok" "$ok" 180
expect_eq "cluster: 0 upstream 429s" "$(mock_stat 'd["total"]["rate_limited"]')" 0
expect_ge "cluster: paced as one quota (not 3 x)" "$took" 8.7
expect_le "cluster: near the ideal 9.1 s" "$took" 10.5
owner_port=$(echo "$owner" | sed 's/.*:\([0-9]*\)@.*/\1/')
expect_ge "cluster: the fleet's keys live on the slot's node" \
    "$(redis-cli -p "$owner_port" --scan --pattern '{cq}*' 2>/dev/null | wc -l)" 1
