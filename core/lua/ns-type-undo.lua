#!lua flags=allow-oom
-- Typing failed at step 2: undoes step 1.
-- KEYS {P}:meta; ARGV oid
-- Returns {0}.
--#include "ns.lua"
local f = redis.call('HMGET', ikey(ARGV[1]), 'tp', 'nb', 'ul')
if f[1] then
  redis.call('HDEL', ikey(ARGV[1]), 't', 'nb', 'tp')
  if not f[3] then redis.call('DECRBY', USED, f[2]) end   -- drop() gave them back
end
return {0}
