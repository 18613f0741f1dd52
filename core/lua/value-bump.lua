#!lua flags=allow-oom
-- Bumps the version (fsync, SHMFS_IOC_NOTIFY).
-- KEYS v, m; no ARGV
-- Returns {0, version} or {-ENOENT}.
--#include "value.lua"
local e = check(nil)
if e then return e end
return {0, changed()}
