#!lua flags=no-writes
-- [off, off+len) of the value and its version: one snapshot.
-- KEYS v, m; ARGV nbytes, off, len
-- Returns {0, bytes, version} or {-ENOENT}, {-ESTALE}.
--#include "value.lua"
local e = check(ARGV[1])
if e then return e end
local off, len = tonumber(ARGV[2]), tonumber(ARGV[3])
local data = ''
if len > 0 then data = redis.call('GETRANGE', V, off, off + len - 1) end
return {0, data, tonumber(redis.call('HGET', M, 'ver') or 0)}
