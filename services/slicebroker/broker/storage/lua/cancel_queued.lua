-- Queued -> ended ("cancelled"): the request leaves the queue (or the scheduled set); nothing was
-- held for it. Announced as released.
-- KEYS[1] grant hash   KEYS[2] queue   KEYS[3] scheduled set   KEYS[4] change stream
-- ARGV[1] grant id   ARGV[2] now ms   ARGV[3] most entries the change stream keeps
-- Returns 1 when cancelled, 0 when the grant was not queued.
if redis.call("HGET", KEYS[1], "state") ~= "queued" then
  return 0
end
redis.call("HSET", KEYS[1], "state", "ended", "ended_ms", ARGV[2], "end_reason", "cancelled")
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("ZREM", KEYS[3], ARGV[1])
local rev = redis.call("XADD", KEYS[4], "MAXLEN", "~", ARGV[3], "*", "_t", "released", "_at", ARGV[2],
  unpack(redis.call("HGETALL", KEYS[1])))
redis.call("HSET", KEYS[1], "rev", rev)
return 1
