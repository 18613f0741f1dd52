-- shmfs remote: the object's lock lease.  KEYS[1] lock hash, KEYS[2] meta.
-- ARGV: token "host:owner", mode r|w|u (u: unlock), lease ms, who "host:pid", channel
-- Returns {0} granted/renewed/released, {-1} object gone, {-2, ms} conflict.
local tok, mode, lease, who = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if mode == 'u' then
  if redis.call('HDEL', KEYS[1], tok) == 1 then redis.call('SPUBLISH', ARGV[5], 'u') end
  return {0}
end
if redis.call('EXISTS', KEYS[2]) == 0 then return {-1} end
local h = redis.call('HGETALL', KEYS[1])
local soonest, last = nil, now + lease
for i = 1, #h, 2 do
  local m, e = string.match(h[i + 1], '^(%a):(%d+):')
  e = tonumber(e)
  if e <= now then redis.call('HDEL', KEYS[1], h[i])
  elseif h[i] ~= tok then
    if m == 'w' or mode == 'w' then
      if soonest == nil or e < soonest then soonest = e end
    end
    if e > last then last = e end
  end
end
if soonest ~= nil then return {-2, soonest - now} end
redis.call('HSET', KEYS[1], tok, mode .. ':' .. (now + lease) .. ':' .. who)
redis.call('PEXPIREAT', KEYS[1], last)
return {0}
