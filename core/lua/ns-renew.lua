#!lua flags=allow-oom
-- Renews the bindings of objects bound on this host (ns-bind) for another
-- lease.  allow-oom: nothing grows.
-- KEYS {P}:meta; ARGV lease ms, oid...
-- Returns {0, number renewed}.
--#include "ns.lua"
local until_ms, n = now_ms() + tonumber(ARGV[1]), 0
for i = 2, #ARGV do
  n = n + redis.call('ZADD', LT, 'XX', 'CH', until_ms, ARGV[i])
end
return {0, n}
