-- control.lua: a fleet-wide control, stored (admit enforces it at once) and
-- published on "<tag>:control" so every process updates its view now.
-- KEYS: 1 ctl hash, 2 paused-workflow set. ARGV: 1 tag, 2 op, 3.. args:
--   pause | resume | wfpause WF | wfresume WF
--   limit NAME rpm|tpm|conc VALUE | restore NAME
-- Returns 1, or an error for an unknown op.
local tag, op = ARGV[1], ARGV[2]
if op == 'pause' then
    redis.call('HSET', KEYS[1], 'paused', '1')
elseif op == 'resume' then
    redis.call('HDEL', KEYS[1], 'paused')
elseif op == 'wfpause' then
    redis.call('SADD', KEYS[2], ARGV[3])
elseif op == 'wfresume' then
    redis.call('SREM', KEYS[2], ARGV[3])
elseif op == 'limit' then
    local w = ARGV[4]
    if w ~= 'rpm' and w ~= 'tpm' and w ~= 'conc' then return redis.error_reply('bad limit') end
    redis.call('HSET', KEYS[1], w .. ':' .. ARGV[3], ARGV[5])
elseif op == 'restore' then
    redis.call('HDEL', KEYS[1], 'rpm:' .. ARGV[3], 'tpm:' .. ARGV[3], 'conc:' .. ARGV[3])
else
    return redis.error_reply('unknown control ' .. tostring(op))
end
for i = 1, 2 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], KEEP_MS * 7) end
end
redis.call('PUBLISH', tag .. ':control', op .. ' ' .. (ARGV[3] or ''))
return 1
