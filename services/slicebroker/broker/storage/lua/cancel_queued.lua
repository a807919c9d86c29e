-- Queued -> ended ("cancelled"): the request leaves the queue; nothing was held for it.
-- KEYS[1] grant hash   KEYS[2] queue
-- ARGV[1] grant id   ARGV[2] now ms
-- Returns 1 when cancelled, 0 when the grant was not queued.
if redis.call("HGET", KEYS[1], "state") ~= "queued" then
  return 0
end
redis.call("HSET", KEYS[1], "state", "ended", "ended_ms", ARGV[2], "end_reason", "cancelled")
redis.call("ZREM", KEYS[2], ARGV[1])
return 1
