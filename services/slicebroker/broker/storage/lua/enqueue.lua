-- Pending -> queued: no capacity now, the request waits. Keeps its place if it was queued before.
-- KEYS[1] grant hash   KEYS[2] pending set   KEYS[3] queue (sorted set)
-- ARGV[1] grant id   ARGV[2] queue score (priority class rank x 1e13 + creation ms: class, then age)
-- ARGV[3] why it waits
-- Returns 1 when queued, 0 when the grant was not pending.
if redis.call("HGET", KEYS[1], "state") ~= "pending" then
  return 0
end
redis.call("HSET", KEYS[1], "state", "queued", "waiting_reason", ARGV[3])
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("ZADD", KEYS[3], ARGV[2], ARGV[1])
return 1
