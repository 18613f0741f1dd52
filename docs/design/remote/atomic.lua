-- shmfs remote: one element's read-modify-write, as core/shm-atomic.c does it.
-- KEYS[1] value string   KEYS[2] meta hash   KEYS[3] lock hash
-- ARGV: op (0 load,1 add,2 sub,3 xchg,4 cas), kind ('i' integer/bool bits,
--       'f4', 'f8'), byte offset, width, operand bytes, expected bytes
--       (width bytes each, little-endian; the daemon truncates/converts
--       exactly as the local (type) casts do), caller "host:pid", channel
-- Returns {0, old_bytes, swapped, version} or {-1} gone, {-2, ms} locked
-- by another process (ms: earliest lease expiry to retry at).
local op, kind = tonumber(ARGV[1]), ARGV[2]
local off, w = tonumber(ARGV[3]), tonumber(ARGV[4])
local arg, exp, caller = ARGV[5], ARGV[6], ARGV[7]
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if redis.call('STRLEN', KEYS[1]) < off + w then return {-3} end
-- the object's lock: wait while another process holds it, in any mode
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holders = redis.call('HGETALL', KEYS[3])
local soonest = nil
for i = 1, #holders, 2 do
  local mode, exp_ms, who = string.match(holders[i + 1], '^(%a):(%d+):(.*)$')
  exp_ms = tonumber(exp_ms)
  if exp_ms <= now then
    redis.call('HDEL', KEYS[3], holders[i])            -- a dead host's lease
  elseif who ~= caller then
    if soonest == nil or exp_ms < soonest then soonest = exp_ms end
  end
end
if soonest ~= nil then return {-2, soonest - now} end
local old = redis.call('GETRANGE', KEYS[1], off, off + w - 1)
if op == 0 then return {0, old, 0, tonumber(redis.call('HGET', KEYS[2], 'ver') or 0)} end
local new, swapped = nil, 0
if kind == 'i' then
  if op == 1 or op == 2 then               -- wrap at the width: carry/borrow, bytewise
    local out, c = {}, 0
    for i = 1, w do
      local s
      if op == 1 then s = old:byte(i) + arg:byte(i) + c else s = old:byte(i) - arg:byte(i) - c end
      if s >= 256 then s = s - 256; c = 1 elseif s < 0 then s = s + 256; c = 1 else c = 0 end
      out[i] = string.char(s)
    end
    new = table.concat(out)
  elseif op == 3 then new = arg
  elseif old == exp then new = arg; swapped = 1 end  -- cas on the bits
else
  local f = (kind == 'f4') and '<f' or '<d'
  local v = struct.unpack(f, old)
  if op == 1 then new = struct.pack(f, v + struct.unpack(f, arg))
  elseif op == 2 then new = struct.pack(f, v - struct.unpack(f, arg))
  elseif op == 3 then new = arg
  elseif v == struct.unpack(f, exp) then new = arg; swapped = 1 end  -- cas by value (-0 == 0, NaN never)
end
local ver = tonumber(redis.call('HGET', KEYS[2], 'ver') or 0)
if new ~= nil then
  redis.call('SETRANGE', KEYS[1], off, new)
  ver = redis.call('HINCRBY', KEYS[2], 'ver', 1)
  redis.call('HSET', KEYS[2], 'mt', t[1] .. '.' .. t[2])
  redis.call('SPUBLISH', ARGV[8], ver)
end
return {0, old, swapped, ver}
