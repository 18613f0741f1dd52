#!lua flags=no-writes
-- Up to max children of dir with oids above after, in oid order.
-- KEYS {P}:meta; ARGV dir, after, max
-- Returns {0, {oid, fields}, ...} or {-ENOENT}, {-ENOTDIR}.
--#include "ns.lua"
local k = field(ARGV[1], 'k')
if not k then return {-ENOENT} end
if k ~= 'd' then return {-ENOTDIR} end
local names = redis.call('ZRANGEBYSCORE', okey(ARGV[1]), '(' .. ARGV[2], '+inf',
                         'LIMIT', 0, tonumber(ARGV[3]))
local out = {0}
for _, name in ipairs(names) do
  local oid = redis.call('HGET', dkey(ARGV[1]), name)
  local f = oid and node(oid)
  if f then out[#out + 1] = {oid, f} end
end
return out
