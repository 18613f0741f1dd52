#!lua flags=no-writes
-- name in dir.  KEYS {P}:meta; ARGV dir, name
-- Returns {0, oid, fields} or {-ENOENT}, {-ENOTDIR} (dir an object or gone).
--#include "ns.lua"
if field(ARGV[1], 'k') ~= 'd' then return {-ENOTDIR} end
local oid = redis.call('HGET', dkey(ARGV[1]), ARGV[2])
if not oid then return {-ENOENT} end
local f = node(oid)
if not f then return {-ENOENT} end
return {0, oid, f}
