#!/usr/bin/env python3
"""hostile_upstream.py: a scripted, misbehaving LLM upstream for tests (issue 12).

usage: hostile_upstream.py PORT SCRIPT.json

SCRIPT maps a model name (the "model" field of the request body) to a list
of answers; the n-th request for that model gets the n-th answer, the last
one repeats. An answer is an object:
  status   HTTP status (default 200)
  headers  {name: value} added to the answer
  body     a string sent as is, or an object sent as JSON (default: a normal
           OpenAI chat.completion, or an Anthropic message on /v1/messages)
  sse      a list of strings, each sent (and flushed) as is: a raw event stream
  sse_only_when_asked  true: the sse list only for "stream": true requests,
           else the default body
  sse_hang_ms  after the sse list, keep the connection open this long
           (an upstream that stalls mid-stream) before closing it
  delay_ms wait before answering
  close    true: close the connection without answering
Every answer of the default body carries usage {prompt 5, completion 7}.
GET /stats gives {model: {"requests": n, "times": [unix seconds...],
"auth": [authorization headers...]}}; POST /stats/reset empties it.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
stats = {}
script = {}


def default_body(path, model):
    if path.endswith("/messages"):
        return {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": "hello from hostile"}],
                "stop_reason": "end_turn", "usage": {"input_tokens": 5, "output_tokens": 7}}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello from hostile"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        if self.path == "/stats":
            with lock:
                return self.send_json(200, stats)
        self.send_json(404, {"error": "no"})

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(n)
        if self.path == "/stats/reset":
            with lock:
                stats.clear()
            return self.send_json(200, {})
        try:
            req = json.loads(raw)
            model, stream = req.get("model", ""), bool(req.get("stream"))
        except Exception:
            model, stream = "", False
        with lock:
            st = stats.setdefault(model, {"requests": 0, "times": [], "auth": []})
            i = st["requests"]
            st["requests"] += 1
            st["times"].append(time.time())
            st["auth"].append(self.headers.get("authorization") or self.headers.get("x-api-key") or "")
        answers = script.get(model) or [{}]
        a = answers[min(i, len(answers) - 1)]
        if a.get("delay_ms"):
            time.sleep(a["delay_ms"] / 1000.0)
        if a.get("close"):
            self.close_connection = True
            self.connection.close()
            return
        status = a.get("status", 200)
        if "sse" in a and (stream or not a.get("sse_only_when_asked")):
            self.send_response(status)
            self.send_header("content-type", "text/event-stream")
            for k, v in a.get("headers", {}).items():
                self.send_header(k, str(v))
            self.send_header("connection", "close")
            self.end_headers()
            for chunk in a["sse"]:
                self.wfile.write(chunk.encode() if isinstance(chunk, str) else bytes(chunk))
                self.wfile.flush()
                time.sleep(0.01)
            if a.get("sse_hang_ms"):
                time.sleep(a["sse_hang_ms"] / 1000.0)
            self.close_connection = True
            return
        body = a.get("body", default_body(self.path, model))
        b = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        for k, v in a.get("headers", {}).items():
            self.send_header(k, str(v))
        self.send_header("content-length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)


def main():
    global script
    port = int(sys.argv[1])
    with open(sys.argv[2]) as f:
        script = json.load(f)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


if __name__ == "__main__":
    main()
