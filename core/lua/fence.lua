-- The deadline fence (docs/design/remote.md §3.8), first in every script.
-- ARGV[1] is the server time in ms after which the daemon has given up
-- waiting for this reply (its request timed out).  A script that starts
-- later changes nothing and returns {-ETIMEDOUT}: a request stuck in a
-- stopped or overloaded server is never applied behind the caller's back.
-- The deadline is then taken off ARGV, so scripts see their own arguments
-- from ARGV[1].
local ETIMEDOUT = 110
do
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[1]) then
    return {-ETIMEDOUT}
  end
  table.remove(ARGV, 1)
end
