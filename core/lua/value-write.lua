#!lua flags=allow-oom
-- Stores ranges into the value at once (a record merge is one call), then
-- bumps the version.  allow-oom: the value keeps its length, so an
-- existing object stays writable when Redis is full.
-- KEYS v, m; ARGV nbytes, off1, bytes1, off2, bytes2, ...
-- Returns {0, version} or {-ENOENT}, {-ESTALE} (not nbytes long).
--#include "value.lua"
local e = check(ARGV[1])
if e then return e end
for i = 2, #ARGV, 2 do redis.call('SETRANGE', V, tonumber(ARGV[i]), ARGV[i + 1]) end
return {0, changed()}
