-- Helpers of the namespace scripts (included by ns-*.lua).
--
-- KEYS[1] is always {P}:meta; every other namespace key shares its slot:
--   {P}:ctr        the last oid (INCR); the root is 1
--   {P}:i:<oid>    the node: k (d/f), mode (with S_IFDIR/S_IFREG), uid, gid,
--                  at/mt/ct ("sec.nsec", server TIME), par, nm, nd (dirs:
--                  subdirectories), t/nb (type spec, bytes), tp (typing
--                  pending), ul (unlinked, kept for hosts that have it open),
--                  lt (bound to a process: "host:pid")
--   {P}:d:<dir>    hash name -> oid
--   {P}:o:<dir>    zset name scored by oid: readdir in oid order
--   {P}:used       bytes of typed objects
--   {P}:lt         zset oid scored by when its lifetime binding ends
--                  unless renewed (ns-bind, ns-renew, ns-expire)
--   {P}:ns         channel: "dir name" of each change
-- Errors are returned as {-errno} (Linux numbers).
--#include "fence.lua"
local B = string.sub(KEYS[1], 1, -6)           -- "{P}" (KEYS[1] ends in ":meta")
local CTR, USED, NS, LT = B .. ':ctr', B .. ':used', B .. ':ns', B .. ':lt'
local EPERM, ENOENT, EEXIST, ENOTDIR, EISDIR, EINVAL, ENOSPC, ENOTEMPTY =
      1, 2, 17, 20, 21, 22, 28, 39

local function ikey(oid) return B .. ':i:' .. oid end
local function dkey(oid) return B .. ':d:' .. oid end
local function okey(oid) return B .. ':o:' .. oid end

-- The server's clock in ms.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The server's time as "sec.nsec".
local function now()
  local t = redis.call('TIME')
  return t[1] .. '.' .. string.format('%06d', tonumber(t[2])) .. '000'
end

local function field(oid, name) return redis.call('HGET', ikey(oid), name) end

-- The node's fields as a flat array, or nil when it is gone.
local function node(oid)
  local f = redis.call('HGETALL', ikey(oid))
  if #f == 0 then return nil end
  return f
end

-- Sets ctime (and mtime) of oid to ts.
local function touch(oid, ts, mtime)
  if mtime then redis.call('HSET', ikey(oid), 'mt', ts, 'ct', ts)
  else redis.call('HSET', ikey(oid), 'ct', ts) end
end

local function link(dir, name, oid, kind)
  redis.call('HSET', dkey(dir), name, oid)
  redis.call('ZADD', okey(dir), oid, name)
  redis.call('HSET', ikey(oid), 'par', dir, 'nm', name)
  if kind == 'd' then redis.call('HINCRBY', ikey(dir), 'nd', 1) end
end

local function detach(dir, name, oid, kind)
  redis.call('HDEL', dkey(dir), name)
  redis.call('ZREM', okey(dir), name)
  if kind == 'd' then redis.call('HINCRBY', ikey(dir), 'nd', -1) end
end

-- Whether anc is oid or one of its ancestors (walks par up to the root).
local function is_ancestor(anc, oid)
  while oid and oid ~= '0' do
    if oid == anc then return true end
    oid = field(oid, 'par')
  end
  return false
end

-- Drops a node just detached: a directory (empty) goes at once; an object
-- stays as ul=1 for lease_ms, so that hosts that have it open still see
-- it, and its bytes leave {P}:used.  Returns 1 when the object was typed:
-- the caller expires its value keys after the same lease.
local function drop(oid, kind, ts, lease_ms)
  if kind == 'd' then
    redis.call('DEL', ikey(oid), dkey(oid), okey(oid))
    return 0
  end
  local f = redis.call('HMGET', ikey(oid), 't', 'nb')
  if f[2] then redis.call('DECRBY', USED, f[2]) end
  redis.call('ZREM', LT, oid)
  redis.call('HSET', ikey(oid), 'ul', 1, 'par', 0, 'nm', '', 'ct', ts)
  redis.call('PEXPIRE', ikey(oid), lease_ms)
  if f[1] then return 1 end
  return 0
end

local function publish(dir, name) redis.call('PUBLISH', NS, dir .. ' ' .. name) end
