#!lua
-- Binds an object to a process of a host ("host:pid"), or unbinds it (who
-- ""): the binding host removes it when the process exits (ns-expire), and
-- keeps the binding alive with ns-renew; a binding not renewed for the
-- lease is swept (ns-expire), so a host that died leaves nothing behind.
-- KEYS {P}:meta; ARGV oid, who, lease ms
-- Returns {0} or {-ENOENT} (gone, unlinked, or a directory).
--#include "ns.lua"
local oid, who = ARGV[1], ARGV[2]
local f = redis.call('HMGET', ikey(oid), 'k', 'ul')
if f[1] ~= 'f' or f[2] then return {-ENOENT} end
if who == '' then
  redis.call('HDEL', ikey(oid), 'lt')
  redis.call('ZREM', LT, oid)
  return {0}
end
redis.call('HSET', ikey(oid), 'lt', who)
redis.call('ZADD', LT, now_ms() + tonumber(ARGV[3]), oid)
return {0}
