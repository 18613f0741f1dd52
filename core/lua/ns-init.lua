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
-- the next oid is 2 at least
if tonumber(redis.call('GET', CTR) or 0) < 1 then redis.call('SET', CTR, 1) end
return {0, meta[3]}
