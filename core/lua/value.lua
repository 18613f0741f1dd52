-- Helpers of the value scripts (included by value-*.lua).
--
-- KEYS[1] {P:oid}:v   the value's bytes, exactly nb long
-- KEYS[2] {P:oid}:m   hash: ver (the version), mt (server TIME of the last change)
-- The change channel {P:oid}:ev (same slot) gets the new version.
-- Errors are returned as {-errno} (Linux numbers).
--#include "fence.lua"
local V, M = KEYS[1], KEYS[2]
local EV = string.sub(V, 1, -3) .. ':ev'
local ENOENT, EAGAIN, EEXIST, ESTALE = 2, 11, 17, 116

local function now()
  local t = redis.call('TIME')
  return t[1] .. '.' .. string.format('%06d', tonumber(t[2])) .. '000'
end

-- nil when the value exists and is nb long (nb nil: any length), else the error.
local function check(nb)
  if redis.call('EXISTS', V) == 0 then return {-ENOENT} end
  if nb and redis.call('STRLEN', V) ~= tonumber(nb) then return {-ESTALE} end
  return nil
end

-- The value changed: bumps the version, sets mt, tells the watchers.
local function changed()
  local ver = redis.call('HINCRBY', M, 'ver', 1)
  redis.call('HSET', M, 'mt', now())
  redis.call('PUBLISH', EV, ver)
  return ver
end

-- The server's clock in ms.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Iterates the live holders of lock hash l at time t (ms): token, expiry,
-- mode, who; drops the expired ones.
local function holders(l, t)
  local h = redis.call('HGETALL', l)
  local i = -1
  return function()
    while true do
      i = i + 2
      if i > #h then return nil end
      local m, e, w = string.match(h[i + 1], '^(%a):(%d+):(.*)$')
      e = tonumber(e)
      if e ~= nil and e > t then return h[i], e, m, w end
      redis.call('HDEL', l, h[i])
    end
  end
end
