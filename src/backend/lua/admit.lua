-- admit.lua: one admission decision for one request, every key at once.
-- KEYS: 1 ctl hash (paused, limit overrides), 2 paused-workflow set, then
-- per rate key (model, provider) its GCRA hash and its slot set, then per
-- budget (run, day, workflow) its hash (per-day ones get ":<day>") and its
-- lease set.
-- ARGV: 1 now override (0 = TIME), 2 tag, 3 lease "<proc>#<seq>",
-- 4 lease_ms, 5 burst tau (us), 6 workflow, 7 n rate, 8 n budget, 9 ahead
-- (us): a pacing wait up to this long is taken now, the caller sending after
-- the delay (one round trip per admission instead of asking again), then
-- per rate key: name, rpm, tpm, max_concurrent, est tokens; per budget:
-- per-day flag ("1"/"0"), limit nUSD (0 = none), estimate nUSD.
-- Nothing is written unless every key admits. Returns:
--   { 1, now_ms, day, delay, next_1, ... } admitted (slots and reservations held):
--                                           send after delay ms; next_i: ms until key
--                                           i admits again (0 now)
--   { 0, wait_ms, key index, now_ms }       GCRA: the same call succeeds in wait_ms
--   { 2, 0, key index, now_ms }             a key is at max_concurrent
--   { 3, budget index, spent, reserved, limit }  a budget refuses (nUSD)
--   { 4 } fleet paused   { 5 } this workflow paused fleet-wide
local tag, lease = ARGV[2], ARGV[3]
local lease_ms, tau = tonumber(ARGV[4]), tonumber(ARGV[5])
local wf = ARGV[6]
local nr, nb = tonumber(ARGV[7]), tonumber(ARGV[8])
local ahead = tonumber(ARGV[9]) or 0
local now = now_us(ARGV[1])
local now_ms = math.floor(now / 1000)
local day = num(math.floor(now_ms / 86400000))
local ctl = KEYS[1]
if redis.call('HGET', ctl, 'paused') == '1' then return { 4 } end
if redis.call('SISMEMBER', KEYS[2], wf) == 1 then return { 5 } end

local rk, a = {}, 10
local wait, which, full = 0, 0, 0
for i = 1, nr do
    local k = { h = KEYS[1 + 2 * i], sl = KEYS[2 + 2 * i], name = ARGV[a] }
    k.rpm, k.tpm, k.conc = limits_of(ctl, k.name, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
    k.est = tonumber(ARGV[a + 4]) or 0
    a = a + 5
    local t = redis.call('HMGET', k.h, 'tr', 'tt')
    k.tr, k.tt = tonumber(t[1]) or 0, tonumber(t[2]) or 0
    if k.rpm > 0 and k.tr - tau - now > wait then wait, which = k.tr - tau - now, i end
    if k.tpm > 0 and k.est > 0 and k.tt - tau - now > wait then wait, which = k.tt - tau - now, i end
    if k.conc > 0 then
        sweep(tag, k.sl, now_ms, nil)
        if full == 0 and redis.call('ZCARD', k.sl) >= k.conc then full = i end
    end
    rk[i] = k
end
if wait > ahead then return { 0, math.ceil((wait - ahead) / 1000), which, now_ms } end
if full > 0 then return { 2, 0, full, now_ms } end
-- Taken now, sent at now + wait: the keys count from the send time.
local at = now + math.max(wait, 0)

local bk = {}
for j = 1, nb do
    local base, z = KEYS[2 + 2 * nr + 2 * j - 1], KEYS[2 + 2 * nr + 2 * j]
    local b = { z = z }
    b.h = budget_key(base, ARGV[a] == '1' and day or '')
    b.limit, b.est = tonumber(ARGV[a + 1]) or 0, tonumber(ARGV[a + 2]) or 0
    a = a + 3
    sweep(tag, z, now_ms, function(m)
        local amt = redis.call('HGET', b.h, 'r:' .. m)
        if amt then
            redis.call('HINCRBY', b.h, 'reserved', '-' .. amt)
            redis.call('HDEL', b.h, 'r:' .. m)
        end
    end)
    if b.limit > 0 then
        local v = redis.call('HMGET', b.h, 'spent', 'reserved')
        local spent, res = tonumber(v[1]) or 0, tonumber(v[2]) or 0
        if spent + res + b.est > b.limit then return { 3, j, spent, res, b.limit } end
    end
    bk[j] = b
end

for _, k in ipairs(rk) do
    local keep = 0
    if k.rpm > 0 then
        k.tr = math.max(k.tr, at) + math.ceil(60000000 / k.rpm)
        keep = k.tr - now
    end
    if k.tpm > 0 and k.est > 0 then
        k.tt = math.ceil(math.max(k.tt, at) + k.est * 60000000 / k.tpm)
        keep = math.max(keep, k.tt - now)
    end
    redis.call('HSET', k.h, 'tr', num(k.tr), 'tt', num(k.tt))
    count(k.h, now_ms, 1, k.est)
    redis.call('PEXPIRE', k.h, num(math.floor(keep / 1000) + 120000))
    if k.conc > 0 then
        redis.call('ZADD', k.sl, num(now_ms + lease_ms), lease)
        redis.call('PEXPIRE', k.sl, KEEP_MS)
    end
end
for _, b in ipairs(bk) do
    if b.est > 0 then
        redis.call('HINCRBY', b.h, 'reserved', num(b.est))
        redis.call('HSET', b.h, 'r:' .. lease, num(b.est))
        redis.call('ZADD', b.z, num(now_ms + lease_ms), lease)
        redis.call('PEXPIRE', b.z, KEEP_MS * 2)
    end
    redis.call('PEXPIRE', b.h, KEEP_MS * 2)
end
local out = { 1, now_ms, tonumber(day), math.ceil(math.max(wait, 0) / 1000) }
for _, k in ipairs(rk) do
    local nw = 0
    if k.rpm > 0 then nw = k.tr - tau - now end
    if k.tpm > 0 and k.est > 0 then nw = math.max(nw, k.tt - tau - now) end
    out[#out + 1] = math.max(0, math.ceil(nw / 1000))
end
return out
