#!lua flags=allow-oom
-- Sets the attributes named by mask (1 mode, 2 uid, 4 gid, 8 atime,
-- 16 mtime, 32 ctime); mode keeps the node's file type.
-- KEYS {P}:meta; ARGV oid, mask, mode, uid, gid, atime, mtime, ctime
-- Returns {0, oid, fields} or {-ENOENT}.
--#include "ns.lua"
local oid, mask = ARGV[1], tonumber(ARGV[2])
local mode = field(oid, 'mode')
if not mode then return {-ENOENT} end
local function has(bit) return math.floor(mask / bit) % 2 == 1 end
if has(1) then
  mode = tonumber(mode)
  redis.call('HSET', ikey(oid), 'mode', mode - mode % 4096 + tonumber(ARGV[3]) % 4096)
end
local names = { [2] = {'uid', 4}, [4] = {'gid', 5}, [8] = {'at', 6}, [16] = {'mt', 7}, [32] = {'ct', 8} }
for bit, f in pairs(names) do
  if has(bit) then redis.call('HSET', ikey(oid), f[1], ARGV[f[2]]) end
end
return {0, oid, node(oid)}
