-- proxy_post.lua: wrk script for bench/proxy_latency.sh: a small OpenAI chat
-- request, the same bytes whether wrk talks to the mock, to `quotatop serve`
-- or to nginx. Counts non-2xx answers so a run full of errors is visible.
wrk.method = "POST"
wrk.path   = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.body   = '{"model":"bench","max_tokens":16,"messages":[{"role":"user","content":"Say hello in five words."}]}'

done = function(summary, latency, requests)
   io.write(string.format("non2xx %d\n", summary.errors.status))
   io.write(string.format("p50_us %d\np99_us %d\n", latency:percentile(50), latency:percentile(99)))
end
