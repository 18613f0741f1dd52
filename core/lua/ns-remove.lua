#!lua flags=allow-oom
-- unlink (is_dir 0) or rmdir (1) of name in dir, as shm_tree_remove.
-- allow-oom: removing must work when Redis is full.
-- KEYS {P}:meta; ARGV dir, name, is_dir, lease ms
-- Returns {0, oid, typed} or {-ENOENT}, {-ENOTDIR}, {-EISDIR}, {-ENOTEMPTY}.
--#include "ns.lua"
local dir, name, want_dir = ARGV[1], ARGV[2], ARGV[3] == '1'
if field(dir, 'k') ~= 'd' then return {-ENOENT} end
local oid = redis.call('HGET', dkey(dir), name)
if not oid then return {-ENOENT} end
local k = field(oid, 'k')
if want_dir and k ~= 'd' then return {-ENOTDIR} end
if not want_dir and k == 'd' then return {-EISDIR} end
if k == 'd' and redis.call('HLEN', dkey(oid)) > 0 then return {-ENOTEMPTY} end
local ts = now()
detach(dir, name, oid, k)
local typed = drop(oid, k, ts, ARGV[4])
touch(dir, ts, true)
publish(dir, name)
return {0, oid, typed}
