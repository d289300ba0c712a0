#!/usr/bin/env bash
# test_run_priority.sh: priority holds for queued and waiting jobs alike
# (issue 10), and every job can be seen, cancelled and reprioritized in every
# state through the control socket.
#  1. Mixed workload: model a is missing at the upstream (404: fall back), so
#     its priority-5 jobs land on the shared model s (600 RPM), next to
#     priority-2 and priority-6 jobs of s; fewer workers than fallback jobs.
#     The urgent jobs finish first, the lazy ones last.
#  2. Cancel and reprioritize: a job on the wire (its transfer aborted), a
#     queued one, one waiting out a backoff; a reprioritized queued job goes
#     first. About 15 s.
source "$(dirname "$0")/lib.sh"
SLACK=0   # sanitizer builds answer commands more slowly
case "$QT_BIN" in *tsan*|*asan*) SLACK=6 ;; esac

start_mock --only-declared --model s --model slow:latency=2000 --model glacial:latency=20000 --model bad:fail=1
cat > "$TMP/cfg.json" <<JSON
{"workers": 10, "state_dir": "",
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"a": {"providers": ["mock"], "fallback": ["s"]},
            "s": {"providers": ["mock"], "rpm": 600}},
 "limits": {"headroom": 1.0}, "queue": {"aging_ms": 600000}}
JSON
python3 - > "$TMP/mixed.jsonl" <<'PY'
import json
def job(i, m, p): return json.dumps({"id": i, "model": m, "priority": p, "max_tokens": 8,
                                     "messages": [{"role": "user", "content": "hi " + i}]})
for k in range(20): print(job("lazy%d" % k, "s", 6))
for k in range(20): print(job("fb%d" % k, "a", 5))
for k in range(20): print(job("urgent%d" % k, "s", 2))
PY
"$QT_BIN" run -c "$TMP/cfg.json" --headless -o "$TMP/mixed.out" "$TMP/mixed.jsonl" 2>"$TMP/mixed.err"
expect_eq "mixed: exit 0" "$?" 0
read -r u_last fb_med lazy_first u_med lazy_med used <<<"$(python3 - "$TMP/mixed.out" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
pos = {k: [i for i, r in enumerate(rows) if r["id"].startswith(k)] for k in ("urgent", "fb", "lazy")}
used = sum(1 for r in rows if r["id"].startswith("fb") and r["model_used"] == "s" and r["status"] == "ok")
print(max(pos["urgent"]), statistics.median(pos["fb"]), min(pos["lazy"]),
      statistics.median(pos["urgent"]), statistics.median(pos["lazy"]), used)
PY
)"
echo "mixed: urgent median/last finish #$u_med/#$u_last, fallback median #$fb_med, lazy median/first #$lazy_med/#$lazy_first"
expect_eq "mixed: 60 ok" "$(results_count "$TMP/mixed.out" ok)" 60
expect_eq "mixed: the fallback jobs were answered by the shared model" "$used" 20
# A burst of up to 10 may leave in the first second (600 RPM), before the
# urgent lines are read; after that every urgent job goes first.
expect_le "mixed: every urgent job within the first 30 results" "$u_last" 30
expect_le "mixed: urgent before the fallbacks (median)" "$u_med" "$fb_med"
expect_le "mixed: the fallbacks before the lazy ones (median)" "$fb_med" "$lazy_med"

# --- 2. cancel and reprioritize in every state, through the control socket
cat > "$TMP/cfg2.json" <<JSON
{"workers": 1, "state_dir": "$TMP/state",
 "providers": {"mock": {"kind": "openai", "base_url": "$MOCK_URL/v1"}},
 "models": {"slow": {"providers": ["mock"]}, "glacial": {"providers": ["mock"]},
            "bad": {"providers": ["mock"]}},
 "retry": {"max_attempts": 3, "base_ms": 60000, "cap_ms": 60000}}
JSON
mkdir -p "$TMP/state"
python3 - > "$TMP/ctl.jsonl" <<'PY'
import json
def job(i, m, p=5): return json.dumps({"id": i, "model": m, "priority": p, "max_tokens": 8,
                                       "messages": [{"role": "user", "content": "hi " + i}]})
print(job("bo", "bad")); print(job("wire", "glacial"))
for k in range(1, 4): print(job("q%d" % k, "slow", 9))
PY
"$QT_BIN" run -c "$TMP/cfg2.json" --headless -o "$TMP/ctl.out" "$TMP/ctl.jsonl" 2>"$TMP/ctl.err" &
pid=$!
sock="$TMP/state/run-$pid.sock"
for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
sleep 1
ctl() { python3 - "$sock" "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    c = s.recv(65536)
    if not c: break
    buf += c
print(buf.decode().strip())
PY
}
# The backoff is full jitter in [0, 60 s]: now and then it draws a wait
# shorter than the time to here, and bo is back in the queue behind wire
# (routed), to fail and back off again; so look a few times.
for _ in $(seq 1 25); do
    states=$(ctl '{"op":"frame"}' | python3 -c 'import json,sys; f=json.load(sys.stdin); print(" ".join("%s=%s" % (j["id"], j["state"]) for j in f["jobs"]))')
    case "$states" in *bo=wait-backoff*) break ;; esac
    sleep 0.2
done
echo "ctl: states before: $states"
expect_contains "ctl: the job on the wire shows in-flight" "$states" "wire=in-flight"
expect_contains "ctl: the failed job shows its backoff" "$states" "bo=wait-backoff"
expect_contains "ctl: queued jobs show queued" "$states" "q1=queued"
t0=$(date +%s.%N)
ctl '{"op":"cmd","cmd":{"op":3,"name":"q3","value":1}}' >/dev/null   # reprioritize q3 -> 1
ctl '{"op":"cmd","cmd":{"op":2,"name":"q2"}}' >/dev/null               # cancel queued
ctl '{"op":"cmd","cmd":{"op":2,"name":"bo"}}' >/dev/null               # cancel in backoff
ctl '{"op":"cmd","cmd":{"op":2,"name":"wire"}}' >/dev/null       # cancel on the wire
wait $pid
t1=$(date +%s.%N)
st() { python3 -c 'import json,sys; print({json.loads(l)["id"]: json.loads(l)["status"] for l in open(sys.argv[1])}.get(sys.argv[2]))' "$TMP/ctl.out" "$1"; }
expect_eq "ctl: in-flight job cancelled" "$(st wire)" cancelled
expect_eq "ctl: queued job cancelled" "$(st q2)" cancelled
expect_eq "ctl: job in backoff cancelled" "$(st bo)" cancelled
expect_eq "ctl: q1 ok" "$(st q1)" ok
expect_eq "ctl: q3 ok" "$(st q3)" ok
order=$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["id"] for l in open(sys.argv[1]) if json.loads(l)["status"] == "ok"))' "$TMP/ctl.out")
expect_eq "ctl: the reprioritized job went first" "$order" "q3 q1"
# q3 then q1 take 2 s each on the one worker after the cancels: no 60 s
# backoff and not the 20 s of the aborted transfer are left in the run.
expect_le "ctl: cancels take effect at once (run ends ~4 s after them)" \
    "$(python3 -c "print($t1 - $t0)")" $((8 + SLACK))
expect_eq "ctl: the cancelled queued job never reached the upstream" \
    "$(mock_stat 'd["models"]["slow"]["requests"]')" 2
