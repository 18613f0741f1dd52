#!lua flags=no-writes
-- The node oid.  KEYS {P}:meta; ARGV oid
-- Returns {0, oid, fields} or {-ENOENT}.
--#include "ns.lua"
local f = node(ARGV[1])
if not f then return {-ENOENT} end
return {0, ARGV[1], f}
