#!lua
-- rename(2) as shm_tree_rename, with its errnos in its order (the fs side
-- checked the flags and the new name).
-- KEYS {P}:meta; ARGV olddir, oldname, newdir, newname, flags (1 NOREPLACE,
-- 2 EXCHANGE), lease ms, the new name's error (0, or EINVAL/ENAMETOOLONG
-- from the fs side's check: returned where shm_tree_rename checks it)
-- Returns {0, moved, replaced (0: none), replaced_typed} or {-errno}.
--#include "ns.lua"
local odir, oname, ndir, nname = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local flags = tonumber(ARGV[5])
local ok, nk = field(odir, 'k'), field(ndir, 'k')
if not ok or not nk then return {-ENOENT} end
if ok ~= 'd' or nk ~= 'd' then return {-ENOTDIR} end
local src = redis.call('HGET', dkey(odir), oname)
if not src then return {-ENOENT} end
if ARGV[7] ~= '0' then return {-tonumber(ARGV[7])} end
local dst = redis.call('HGET', dkey(ndir), nname)
local sk = field(src, 'k')
local ts = now()

if flags == 2 then
  if not dst then return {-ENOENT} end
  if src == dst then return {0, src, dst, 0} end
  local dk = field(dst, 'k')
  if (sk == 'd' and is_ancestor(src, ndir)) or (dk == 'd' and is_ancestor(dst, odir)) then
    return {-EINVAL}
  end
  detach(odir, oname, src, sk)
  detach(ndir, nname, dst, dk)
  link(ndir, nname, src, sk)
  link(odir, oname, dst, dk)
  touch(src, ts, false)
  touch(dst, ts, false)
  touch(odir, ts, true)
  touch(ndir, ts, true)
  publish(odir, oname)
  publish(ndir, nname)
  return {0, src, dst, 0}
end

if sk == 'd' and is_ancestor(src, ndir) then return {-EINVAL} end
local typed = 0
if dst then
  if flags == 1 then return {-EEXIST} end
  if src == dst then return {0, src, 0, 0} end
  local dk = field(dst, 'k')
  if sk == 'd' and dk ~= 'd' then return {-ENOTDIR} end
  if sk ~= 'd' and dk == 'd' then return {-EISDIR} end
  if dk == 'd' and redis.call('HLEN', dkey(dst)) > 0 then return {-ENOTEMPTY} end
  detach(ndir, nname, dst, dk)
  typed = drop(dst, dk, ts, ARGV[6])
end
detach(odir, oname, src, sk)
link(ndir, nname, src, sk)
touch(src, ts, false)
touch(odir, ts, true)
touch(ndir, ts, true)
publish(odir, oname)
publish(ndir, nname)
return {0, src, dst or 0, typed}
