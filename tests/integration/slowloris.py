#!/usr/bin/env python3
"""slowloris.py: slow and idle clients, and a well-behaved probe, for the
serve tests and benches.

  slowloris.py trickle HOST PORT N SECONDS [INTERVAL_S]
      keeps N connections that each send the start of a POST and then one
      header byte every INTERVAL_S (default 1), reopening any the server
      cuts, for SECONDS. Connections come from 127.0.0.x source addresses
      (x = 2..250) so per-address caps see many clients. Prints JSON:
      opened, cut, open_at_end, refused.
  slowloris.py idle HOST PORT N SECONDS [SRC]
      opens N connections that send nothing and holds them SECONDS, from
      127.0.0.x addresses, or all from SRC when given. Prints JSON: opened,
      open_at_end (not closed by the server when it ends).
  slowloris.py burst HOST PORT N BODY
      N POSTs to /v1/chat/completions at once, each on its own connection
      (from 127.0.0.x addresses), and waits for every answer. Prints JSON:
      n, ok (status 200), elapsed_ms.
  slowloris.py probe URL N [TOKEN] [BODY]
      N requests one after another, each on a new connection (POST BODY to
      URL, or GET when BODY is absent). Prints JSON: n, ok, statuses,
      p50_ms, p99_ms, max_ms.
"""
import json
import selectors
import socket
import sys
import time
import urllib.request


def connect(host, port, i, spread):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if spread:
        s.bind(("127.0.0.%d" % (2 + i % 249), 0))
    s.setblocking(False)
    try:
        s.connect((host, port))
    except BlockingIOError:
        pass
    return s


HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"


def trickle(host, port, n, secs, interval):
    sel = selectors.DefaultSelector()
    socks = {}
    opened = cut = refused = 0

    def open_one(i):
        nonlocal opened, refused
        try:
            s = connect(host, port, i, True)
        except OSError:
            refused += 1
            return
        opened += 1
        socks[i] = [s, 0]
        sel.register(s, selectors.EVENT_READ, i)

    for i in range(n):
        open_one(i)
    end = time.time() + secs
    next_tick = time.time()
    while time.time() < end:
        for key, _ in sel.select(timeout=0.05):
            i = key.data
            s = socks[i][0]
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                cut += 1
                del socks[i]
                open_one(i)
        if time.time() >= next_tick:
            next_tick += interval
            for i, st in list(socks.items()):
                s, pos = st
                byte = HEAD[pos:pos + 1] if pos < len(HEAD) else b"X"
                try:
                    s.send(byte)
                    st[1] = pos + 1
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    pass
    out = {"opened": opened, "cut": cut, "open_at_end": len(socks), "refused": refused}
    for s, _ in socks.values():
        s.close()
    print(json.dumps(out))


def idle(host, port, n, secs, src):
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src or "127.0.0.%d" % (2 + i % 249), 0))
        s.connect((host, port))
        socks.append(s)
    time.sleep(secs)
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            alive += 1 if s.recv(1) else 0
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
        s.close()
    print(json.dumps({"opened": len(socks), "open_at_end": alive}))


def burst(host, port, n, body):
    sel = selectors.DefaultSelector()
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body.encode()
    t0 = time.time()
    state = {}
    for i in range(n):
        s = connect(host, port, i, True)
        state[s] = [req, b""]
        sel.register(s, selectors.EVENT_WRITE)
    ok = done = 0
    while done < n and time.time() - t0 < 60:
        for key, ev in sel.select(timeout=1):
            s = key.fileobj
            st = state[s]
            try:
                if ev & selectors.EVENT_WRITE:
                    k = s.send(st[0])
                    st[0] = st[0][k:]
                    if not st[0]:
                        sel.modify(s, selectors.EVENT_READ)
                    continue
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                st[1] += data
                continue
            ok += st[1].startswith(b"HTTP/1.1 200")
            done += 1
            sel.unregister(s)
            s.close()
    print(json.dumps({"n": n, "ok": ok, "elapsed_ms": int((time.time() - t0) * 1000)}))


def probe(url, n, token, body):
    lat, statuses = [], {}
    for _ in range(n):
        hdr = {"Content-Type": "application/json", "Connection": "close"}
        if token:
            hdr["Authorization"] = "Bearer " + token
        req = urllib.request.Request(url, data=body.encode() if body else None, headers=hdr)
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
                code = r.status
        except urllib.error.HTTPError as e:
            code = e.code
        except Exception:
            code = 0
        lat.append((time.perf_counter() - t0) * 1000)
        statuses[code] = statuses.get(code, 0) + 1
    lat.sort()
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2)
    print(json.dumps({"n": n, "ok": statuses.get(200, 0), "statuses": statuses,
                      "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(lat[-1], 2)}))


def main(a):
    if a[0] == "trickle":
        trickle(a[1], int(a[2]), int(a[3]), float(a[4]), float(a[5]) if len(a) > 5 else 1.0)
    elif a[0] == "idle":
        idle(a[1], int(a[2]), int(a[3]), float(a[4]), a[5] if len(a) > 5 else "")
    elif a[0] == "burst":
        burst(a[1], int(a[2]), int(a[3]), a[4])
    elif a[0] == "probe":
        probe(a[1], int(a[2]), a[3] if len(a) > 3 else "", a[4] if len(a) > 4 else "")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
