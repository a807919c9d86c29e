-- Extends an active grant's lease, and appends the change to the change stream.
-- KEYS[1] grant hash   KEYS[2] expiry set   KEYS[3] change stream
-- ARGV[1] grant id   ARGV[2] now ms   ARGV[3] new lease end ms
-- ARGV[4] most entries the change stream keeps (approximate trim)
-- Returns the grant's state after the call ("active" when renewed), or "" if there is no grant.
-- A lease that already ran out cannot be renewed: the grant is reported as "expired".
-- A preemption notice stands: renewing extends the lease, never the notice's deadline.
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
local rev = redis.call("XADD", KEYS[3], "MAXLEN", "~", ARGV[4], "*", "_t", "renewed", "_at", ARGV[2],
  unpack(redis.call("HGETALL", KEYS[1])))
redis.call("HSET", KEYS[1], "rev", rev)
return "active"
