#!lua flags=allow-oom
-- One element's read-modify-write, bit for bit as core/shm-atomic.c
-- (docs/design/remote/atomic.lua, checked against it).  Lua numbers are doubles, so
-- integers are worked on as bytes: the daemon sends the operand and the
-- expected value as the element's own little-endian bytes, cast as the
-- local code casts them, and decodes the old bytes it gets back.
-- KEYS v, m, l; ARGV nbytes, op (0 load, 1 add, 2 sub, 3 xchg, 4 cas), kind
-- ('i' integers and bool, 'f4', 'f8'), byte offset, width, operand bytes,
-- expected bytes, who (host:pid)
-- Returns {0, old bytes, swapped, version} or {-ENOENT}, {-ESTALE}, or
-- {-EAGAIN} while another process holds the object's lock (KEYS[3], see
-- value-lock.lua): an operation runs inside the lock, as locally.
--#include "value.lua"
local e = check(ARGV[1])
if e then return e end
for tok, exp_ms, m, holder in holders(KEYS[3], now_ms()) do
  if holder ~= ARGV[8] then return {-EAGAIN} end
end
local op, kind = tonumber(ARGV[2]), ARGV[3]
local off, w = tonumber(ARGV[4]), tonumber(ARGV[5])
local arg, exp = ARGV[6], ARGV[7]
local old = redis.call('GETRANGE', V, off, off + w - 1)
local new, swapped = nil, 0
if op == 0 then
  -- load: nothing changes
elseif kind == 'i' then
  if op == 1 or op == 2 then
    -- add/sub wrap at the width: carry or borrow, byte by byte
    local out, c = {}, 0
    for i = 1, w do
      local s
      if op == 1 then s = old:byte(i) + arg:byte(i) + c else s = old:byte(i) - arg:byte(i) - c end
      if s >= 256 then s = s - 256; c = 1 elseif s < 0 then s = s + 256; c = 1 else c = 0 end
      out[i] = string.char(s)
    end
    new = table.concat(out)
  elseif op == 3 then new = arg
  elseif old == exp then new = arg; swapped = 1 end    -- cas on the bits, as the CPU
else
  local f = (kind == 'f4') and '<f' or '<d'
  local v = struct.unpack(f, old)
  -- f32: a double sum rounded once to float is the correctly rounded float sum
  if op == 1 then new = struct.pack(f, v + struct.unpack(f, arg))
  elseif op == 2 then new = struct.pack(f, v - struct.unpack(f, arg))
  elseif op == 3 then new = arg
  elseif v == struct.unpack(f, exp) then new = arg; swapped = 1 end  -- by value: -0 == 0, NaN never
end
local ver
if new ~= nil then
  redis.call('SETRANGE', V, off, new)
  ver = changed()
else
  ver = tonumber(redis.call('HGET', M, 'ver') or 0)
end
return {0, old, swapped, ver}
