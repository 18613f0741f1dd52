#!lua
-- Typing, step 2 of 3: makes the value, zero-filled (SETRANGE allocates it
-- all, so maxmemory refuses here) or the given bytes, at version 1.
-- Not allow-oom: it grows data.
-- KEYS v, m; ARGV nbytes [, initial bytes]
-- Returns {0, 1} or {-EEXIST}.
--#include "value.lua"
if redis.call('EXISTS', V) == 1 then return {-EEXIST} end
if #ARGV >= 2 then redis.call('SET', V, ARGV[2])
else redis.call('SETRANGE', V, tonumber(ARGV[1]) - 1, '\0') end
redis.call('DEL', M)
redis.call('HSET', M, 'ver', 1, 'mt', now())
redis.call('PUBLISH', EV, 1)
return {0, 1}
