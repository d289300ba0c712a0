-- serve_post.lua: wrk script for bench/serve_bench.sh: a small OpenAI chat
-- request for the model in $QT_BENCH_MODEL (default "fast"); at the end one
-- machine-readable line: RESULT rps=.. p50_us=.. p99_us=.. requests=..
-- errors=.. non2xx=..
wrk.method = "POST"
wrk.path   = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.body   = '{"model":"' .. (os.getenv("QT_BENCH_MODEL") or "fast") ..
             '","max_tokens":16,"messages":[{"role":"user","content":"Say hello in five words."}]}'

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d requests=%d errors=%d non2xx=%d\n",
      summary.requests / (summary.duration / 1e6), latency:percentile(50),
      latency:percentile(99), summary.requests, e.connect + e.read + e.write + e.timeout,
      e.status))
end
