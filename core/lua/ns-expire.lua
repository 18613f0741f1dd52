#!lua flags=allow-oom
-- Removes bound objects, as unlink does: the one bound to "host:pid" whose
-- process exited (ARGV 'one', oid, who, lease ms), or every one whose
-- binding was not renewed in time (ARGV 'sweep', lease ms; at most 100 a
-- call).  allow-oom: removing must work when Redis is full.
-- KEYS {P}:meta
-- Returns {0, oid, typed, dir, name, ...} for each object removed, or
-- {-ENOENT} ('one': not bound so, or gone).
--#include "ns.lua"
local out, oids, lease = {0}, {}, nil
if ARGV[1] == 'one' then
  if field(ARGV[2], 'lt') ~= ARGV[3] then return {-ENOENT} end
  oids[1], lease = ARGV[2], ARGV[4]
else
  oids, lease = redis.call('ZRANGEBYSCORE', LT, '-inf', now_ms(), 'LIMIT', 0, 100), ARGV[2]
end
local ts = now()
for _, oid in ipairs(oids) do
  local f = redis.call('HMGET', ikey(oid), 'par', 'nm', 'ul', 'k')
  redis.call('ZREM', LT, oid)
  if f[1] and not f[3] and f[4] == 'f' then
    detach(f[1], f[2], oid, 'f')
    local typed = drop(oid, 'f', ts, lease)
    touch(f[1], ts, true)
    publish(f[1], f[2])
    for _, v in ipairs({oid, typed, f[1], f[2]}) do out[#out + 1] = v end
  end
end
return out
