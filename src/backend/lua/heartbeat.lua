-- heartbeat.lua: this process is alive; returns the fleet's state.
-- KEYS: 1 ctl hash, 2 paused-workflow set, 3 process set (zset by last
-- beat), 4 this process's key, then n GCRA hashes (the fleet view's rate
-- keys), then m budget hashes (per-day ones get ":<day>").
-- ARGV: 1 now override, 2 tag, 3 proc id, 4 lease_ms, 5 info ("" = leave the
-- fleet: a clean exit), 6 n, 7 m, then per budget its per-day flag.
-- Returns { now_ms, paused 0/1, { paused workflows }, { override field,
-- value, ... }, { info of each live process }, { requests, tokens of the last
-- minute per rate key }, { spent, reserved per budget (nUSD) }, day }.
local tag, proc, lease_ms, info = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local n, m = tonumber(ARGV[6]), tonumber(ARGV[7])
local now = now_us(ARGV[1])
local now_ms = math.floor(now / 1000)
local day = num(math.floor(now_ms / 86400000))
if info == '' then
    redis.call('DEL', KEYS[4])
    redis.call('ZREM', KEYS[3], proc)
else
    redis.call('SET', KEYS[4], info, 'PX', num(lease_ms))
    redis.call('ZADD', KEYS[3], num(now_ms), proc)
end
redis.call('PEXPIRE', KEYS[3], KEEP_MS)
for i = 1, 2 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], KEEP_MS * 7) end
end
local procs = {}
for _, p in ipairs(redis.call('ZRANGE', KEYS[3], 0, 199)) do
    local v = redis.call('GET', tag .. ':proc:' .. p)
    if v then procs[#procs + 1] = v else redis.call('ZREM', KEYS[3], p) end
end
local rates = {}
local b = math.floor(now_ms / 10000)
for i = 1, n do
    local h = redis.call('HGETALL', KEYS[4 + i])
    local f = {}
    for j = 1, #h, 2 do f[h[j]] = h[j + 1] end
    local r, t = 0, 0
    for s = 0, 5 do
        local bs = tonumber(f['b' .. s] or '-1')
        if bs and bs > b - 6 then
            r = r + (tonumber(f['r' .. s]) or 0)
            t = t + (tonumber(f['t' .. s]) or 0)
        end
    end
    rates[#rates + 1] = r
    rates[#rates + 1] = t
end
local spend = {}
for j = 1, m do
    local k = budget_key(KEYS[4 + n + j], ARGV[7 + j] == '1' and day or '')
    local v = redis.call('HMGET', k, 'spent', 'reserved')
    spend[#spend + 1] = tonumber(v[1]) or 0
    spend[#spend + 1] = tonumber(v[2]) or 0
end
local paused = redis.call('HGET', KEYS[1], 'paused') == '1' and 1 or 0
local over = {}
local c = redis.call('HGETALL', KEYS[1])
for j = 1, #c, 2 do
    if c[j] ~= 'paused' then over[#over + 1] = c[j]; over[#over + 1] = c[j + 1] end
end
return { now_ms, paused, redis.call('SMEMBERS', KEYS[2]), over, procs, rates, spend, tonumber(day) }
