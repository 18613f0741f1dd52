#!lua flags=allow-oom
-- An object's lock lease (docs/design/remote.md §3.6): one holder per lock
-- owner of a host, a field of L: token -> "mode:expiry_ms:who".  Expired
-- holders are dropped; L itself expires with its last holder.
-- KEYS v, m, l; ARGV token, mode ('r', 'w'; 'e' to extend the lease the
-- token holds, in its mode; 'u' to give it back), lease ms, who (host:pid)
-- Returns {0} (granted, extended, changed or given back), {-ENOENT} ('e':
-- the token holds no live lease), {-EAGAIN} while another token's live
-- lease conflicts.  An untyped object (no value yet) has a lock too.
--#include "value.lua"
local L = KEYS[3]
local tok, mode, lease, who = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if mode == 'u' then
  if redis.call('HDEL', L, tok) == 1 then redis.call('PUBLISH', EV, 'u') end
  return {0}
end
local t = now_ms()
if mode == 'e' then
  -- A renewal never changes a mode nor brings back a lease given back.
  local held = redis.call('HGET', L, tok)
  local m, e = string.match(held or '', '^(%a):(%d+):')
  if not m or tonumber(e) <= t then return {-ENOENT} end
  mode = m
end
local last = t + lease
for i, e, m, holder in holders(L, t) do
  if i ~= tok then
    if m == 'w' or mode == 'w' then return {-EAGAIN} end
    if e > last then last = e end
  end
end
redis.call('HSET', L, tok, mode .. ':' .. (t + lease) .. ':' .. who)
redis.call('PEXPIREAT', L, last)
return {0}
