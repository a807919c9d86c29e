-- Extends an active grant's lease.
-- KEYS[1] grant hash   KEYS[2] expiry set
-- ARGV[1] grant id   ARGV[2] now ms   ARGV[3] new lease end ms
-- Returns the grant's state after the call ("active" when renewed), or "" if there is no grant.
-- A lease that already ran out cannot be renewed: the grant is reported as "expired".
local state = redis.call("HGET", KEYS[1], "state")
if not state then
  return ""
end
if state ~= "active" then
  return state
end
if tonumber(redis.call("HGET", KEYS[1], "expires_ms")) <= tonumber(ARGV[2]) then
  return "expired"
end
redis.call("HSET", KEYS[1], "expires_ms", ARGV[3])
redis.call("ZADD", KEYS[2], ARGV[3], ARGV[1])
return "active"
