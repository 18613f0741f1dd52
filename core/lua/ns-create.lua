#!lua
-- Creates name in dir (the fs side checked the name).  Not allow-oom: at
-- maxmemory the whole script is refused (ENOSPC) before it changes anything.
-- KEYS {P}:meta; ARGV dir, name, is_dir (0/1), permission bits, uid, gid
-- Returns {0, oid, fields} or {-ENOENT}, {-ENOTDIR}, {-EEXIST}.
--#include "ns.lua"
local dir, name, is_dir = ARGV[1], ARGV[2], ARGV[3] == '1'
local d = redis.call('HMGET', ikey(dir), 'k', 'mode', 'gid')
if not d[1] then return {-ENOENT} end
if d[1] ~= 'd' then return {-ENOTDIR} end
if redis.call('HEXISTS', dkey(dir), name) == 1 then return {-EEXIST} end
local mode, gid = tonumber(ARGV[4]) % 4096, ARGV[6]
if math.floor(tonumber(d[2]) / 1024) % 2 == 1 then
  -- a setgid directory gives its group, and its setgid bit to directories
  gid = d[3]
  if is_dir and math.floor(mode / 1024) % 2 == 0 then mode = mode + 1024 end
end
local ts = now()
-- %d: tostring() would print a 16-digit oid with an exponent
local oid = string.format('%d', redis.call('INCR', CTR))
local kind = is_dir and 'd' or 'f'
redis.call('HSET', ikey(oid), 'k', kind, 'mode', mode + (is_dir and 16384 or 32768),
           'uid', ARGV[5], 'gid', gid, 'at', ts, 'mt', ts, 'ct', ts)
if is_dir then redis.call('HSET', ikey(oid), 'nd', 0) end
link(dir, name, oid, kind)
touch(dir, ts, true)
publish(dir, name)
return {0, oid, node(oid)}
