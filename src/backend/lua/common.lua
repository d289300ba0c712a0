-- common.lua: prepended to every quotatop script (admit, commit, release,
-- heartbeat, control) when they are embedded at build time.
--
-- Time is Redis's own (TIME, microseconds) unless ARGV[1] is a positive
-- override (unit tests drive the arithmetic with it; quotatop sends "0").
-- Every key of one fleet shares the hash tag ARGV[2] ("{prefix}"), so a
-- script touches one Redis Cluster slot. Numbers are written with %.0f:
-- Redis's Lua prints numbers with 14 digits, too few for microseconds.
-- Leases ("<proc>#<seq>") sit in sorted sets scored by a deadline (ms).
-- A sweep takes the members whose deadline passed: a live process (its
-- heartbeat key "<tag>:proc:<proc>" exists) gets a new deadline, when that
-- key expires; a dead one's lease is dropped and on_dead frees what it held.
if redis.replicate_commands then pcall(redis.replicate_commands) end

local function num(x) return string.format('%.0f', x) end

local function now_us(override)
    local o = tonumber(override) or 0
    if o > 0 then return o end
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function sweep(tag, z, now_ms, on_dead)
    local exp = redis.call('ZRANGEBYSCORE', z, '-inf', num(now_ms), 'LIMIT', 0, 64)
    local freed = 0
    for _, m in ipairs(exp) do
        local p = string.match(m, '^(.*)#')
        local ttl = -2
        if p then ttl = redis.call('PTTL', tag .. ':proc:' .. p) end
        if ttl > 0 then
            redis.call('ZADD', z, num(now_ms + ttl), m)
        else
            redis.call('ZREM', z, m)
            if on_dead then on_dead(m) end
            freed = freed + 1
        end
    end
    return freed
end

-- Ring of 6 buckets of 10 s in a key's GCRA hash: fleet-wide requests and
-- tokens of about the last minute for the fleet view.
local function count(h, now_ms, dr, dt)
    local b = math.floor(now_ms / 10000)
    local i = b % 6
    if tonumber(redis.call('HGET', h, 'b' .. i) or '-1') ~= b then
        redis.call('HSET', h, 'b' .. i, num(b), 'r' .. i, '0', 't' .. i, '0')
    end
    if dr ~= 0 then redis.call('HINCRBY', h, 'r' .. i, num(dr)) end
    if dt ~= 0 then redis.call('HINCRBY', h, 't' .. i, num(dt)) end
end

-- rpm, tpm and conc of a key in one call: the override if set, else as configured.
local function limits_of(ctl, name, rpm, tpm, conc)
    local v = redis.call('HMGET', ctl, 'rpm:' .. name, 'tpm:' .. name, 'conc:' .. name)
    local function pick(o, c) if o then return tonumber(o) or 0 end return tonumber(c) or 0 end
    return pick(v[1], rpm), pick(v[2], tpm), pick(v[3], conc)
end

-- A budget's hash: per-day budgets (day, workflow) carry the UTC day
-- number; admit takes it from TIME and returns it, commit and release get it
-- back from the caller, so a call admitted before midnight settles there.
local function budget_key(base, day)
    if day and day ~= '' and day ~= '-' then return base .. ':' .. day end
    return base
end

local KEEP_MS = 86400000   -- TTL of slot sets and budgets, refreshed at each write

-- commit (refund = false) and release (refund = true): one lease settled.
-- KEYS: 1 ctl, then per rate key its GCRA hash and slot set, then per budget
-- its hash and lease set. ARGV: 1 now override, 2 tag, 3 lease, 4 n rate,
-- 5 n budget, then per rate key: name, rpm, tpm, token delta (actual - est,
-- ignored on release), est tokens; per budget: day ("-" none), actual nUSD,
-- unused. Returns { now_ms, spent nUSD of each budget after it }.
local function settle(refund)
    local tag, lease = ARGV[2], ARGV[3]
    local nr, nb = tonumber(ARGV[4]), tonumber(ARGV[5])
    local now = now_us(ARGV[1])
    local now_ms = math.floor(now / 1000)
    local ctl = KEYS[1]
    local a = 6
    for i = 1, nr do
        local h, sl = KEYS[2 * i], KEYS[2 * i + 1]
        local name = ARGV[a]
        local rpm, tpm = limits_of(ctl, name, ARGV[a + 1], ARGV[a + 2], 0)
        local delta = tonumber(ARGV[a + 3]) or 0
        local est = tonumber(ARGV[a + 4]) or 0
        a = a + 5
        redis.call('ZREM', sl, lease)
        if refund then delta = -est end
        local t = redis.call('HMGET', h, 'tr', 'tt')
        local tr, tt = tonumber(t[1]), tonumber(t[2])
        if refund and rpm > 0 and tr then
            tr = math.max(tr - math.ceil(60000000 / rpm), now)
            redis.call('HSET', h, 'tr', num(tr))
        end
        if delta ~= 0 and tpm > 0 and tt then
            tt = tt + delta * 60000000 / tpm
            if delta < 0 then tt = math.max(tt, now) end
            redis.call('HSET', h, 'tt', num(math.ceil(tt)))
        end
        if tr or tt then count(h, now_ms, refund and -1 or 0, delta) end
    end
    local out = { now_ms }
    for j = 1, nb do
        local base, z = KEYS[2 * nr + 2 * j], KEYS[2 * nr + 2 * j + 1]
        local b = budget_key(base, ARGV[a])
        local actual = tonumber(ARGV[a + 1]) or 0
        a = a + 3
        local amt = redis.call('HGET', b, 'r:' .. lease)
        if amt then
            redis.call('HINCRBY', b, 'reserved', '-' .. amt)
            redis.call('HDEL', b, 'r:' .. lease)
        end
        redis.call('ZREM', z, lease)
        if actual > 0 and not refund then
            redis.call('HINCRBY', b, 'spent', num(actual))
            redis.call('PEXPIRE', b, KEEP_MS * 2)
        end
        out[#out + 1] = tonumber(redis.call('HGET', b, 'spent') or '0')
    end
    return out
end
