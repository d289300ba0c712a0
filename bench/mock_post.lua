-- mock_post.lua: wrk script for bench/mock_rps.sh: a small OpenAI chat request.
wrk.method = "POST"
wrk.path   = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.body   = '{"model":"bench","max_tokens":16,"messages":[{"role":"user","content":"Say hello in five words."}]}'

local codes = {}
response = function(status, headers, body)
   codes[status] = (codes[status] or 0) + 1
end

done = function(summary, latency, requests)
   io.write(string.format("non-2xx/3xx responses: %d\n", summary.errors.status))
end
