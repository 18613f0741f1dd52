#!lua flags=allow-oom
-- Typing, step 3 of 3: the value exists; the type shows.
-- KEYS {P}:meta; ARGV oid
-- Returns {0, unlinked} ({0, 1}: unlinked meanwhile, the caller expires
-- the value) or {-ENOENT} (gone, or not being typed).
--#include "ns.lua"
local f = redis.call('HMGET', ikey(ARGV[1]), 'tp', 'ul', 'par', 'nm')
if not f[1] then return {-ENOENT} end
redis.call('HDEL', ikey(ARGV[1]), 'tp')
touch(ARGV[1], now(), true)
if f[2] then return {0, 1} end
publish(f[3], f[4])
return {0, 0}
