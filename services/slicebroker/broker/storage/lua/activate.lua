-- Pending -> active, with the GRANTED event appended to the outbox in the same step.
-- KEYS[1] grant hash   KEYS[2] pending set   KEYS[3] expiry set   KEYS[4] outbox stream
-- ARGV[1] grant id   ARGV[2] institution   ARGV[3] slices (JSON)   ARGV[4] lease end ms
-- ARGV[5] event (JSON)
-- Returns 1 when activated, 0 when the grant is no longer pending (the reconciler failed it).
if redis.call("HGET", KEYS[1], "state") ~= "pending" then
  return 0
end
redis.call("HSET", KEYS[1], "state", "active", "institution", ARGV[2], "slices", ARGV[3], "expires_ms", ARGV[4])
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("ZADD", KEYS[3], ARGV[4], ARGV[1])
redis.call("XADD", KEYS[4], "*", "e", ARGV[5])
return 1
