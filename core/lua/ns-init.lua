#!lua
-- Opens the store: checks {P}:meta, or makes it with the root (oid 1).
-- KEYS {P}:meta; ARGV format, order, epoch, root mode (with S_IFDIR), uid, gid
-- Returns {0, epoch}, or {-1, format, order} of a store made otherwise.
--#include "ns.lua"
local meta = redis.call('HMGET', KEYS[1], 'format', 'order', 'epoch')
if meta[1] then
  if meta[1] ~= ARGV[1] or meta[2] ~= ARGV[2] then return {-1, meta[1], meta[2] or ''} end
else
  redis.call('HSET', KEYS[1], 'format', ARGV[1], 'order', ARGV[2], 'epoch', ARGV[3])
  meta[3] = ARGV[3]
end
if redis.call('EXISTS', ikey(1)) == 0 then
  local ts = now()
  redis.call('HSET', ikey(1), 'k', 'd', 'mode', ARGV[4], 'uid', ARGV[5], 'gid', ARGV[6],
             'at', ts, 'mt', ts, 'ct', ts, 'par', 0, 'nm', '', 'nd', 0)
end
-- A store made now numbers its objects from its time in ms times 1000:
-- above every oid of a store wiped before it (none makes 1000 objects a
-- millisecond), so that no host still holding an object of before (an
-- inode number the kernel keeps) meets its number again.  Under 2^53,
-- exact as a zset score (and written with %d: tostring would give an
-- exponent), for 280 years yet.
if tonumber(redis.call('GET', CTR) or 0) < 1 then
  local t = redis.call('TIME')
  redis.call('SET', CTR, string.format('%d', tonumber(t[1]) * 1000000 +
                                            math.floor(tonumber(t[2]) / 1000) * 1000))
end
return {0, meta[3]}
