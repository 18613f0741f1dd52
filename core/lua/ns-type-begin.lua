#!lua
-- Typing, step 1 of 3 (docs/design/remote.md §3.4): sets t and nb with
-- tp=1 (others see the object untyped until step 3) and counts its bytes.
-- Simplified: no lease on the pending typing yet; a daemon that dies
-- between the steps leaves tp=1 (the sweep of §3.7 will undo it).
-- KEYS {P}:meta; ARGV oid, spec, nbytes
-- Returns {0} or {-ENOENT}, {-EPERM} (a directory, typed or being typed),
-- {-ENOSPC} (over {P}:meta cap).
--#include "ns.lua"
local f = redis.call('HMGET', ikey(ARGV[1]), 'k', 't')
if not f[1] then return {-ENOENT} end
if f[1] == 'd' or f[2] then return {-EPERM} end
local nb = tonumber(ARGV[3])
local cap = tonumber(redis.call('HGET', KEYS[1], 'cap') or 0)
if cap > 0 and tonumber(redis.call('GET', USED) or 0) + nb > cap then return {-ENOSPC} end
redis.call('HSET', ikey(ARGV[1]), 't', ARGV[2], 'nb', nb, 'tp', 1)
redis.call('INCRBY', USED, nb)
return {0}
