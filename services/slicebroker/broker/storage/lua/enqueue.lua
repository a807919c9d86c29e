-- Pending -> queued: no capacity now (or asked to start later), the request waits. Keeps its
-- place if it was queued before. A request that starts later waits in the scheduled set until
-- due (promote.lua moves it into the queue).
-- KEYS[1] grant hash   KEYS[2] pending set   KEYS[3] queue (sorted set)   KEYS[4] scheduled set
-- KEYS[5] change stream
-- ARGV[1] grant id   ARGV[2] queue score (priority class rank x 1e13 + age ms: class, then age)
-- ARGV[3] why it waits   ARGV[4] "1": announce the change (a fresh request), "0": a dispatch
-- attempt put it back (not a change anyone needs to hear about)   ARGV[5] now ms
-- ARGV[6] most entries the change stream keeps   ARGV[7] start-after ms (0: none)
-- Returns 1 when queued, 0 when the grant was not pending.
if redis.call("HGET", KEYS[1], "state") ~= "pending" then
  return 0
end
redis.call("HSET", KEYS[1], "state", "queued", "waiting_reason", ARGV[3], "queue_score", ARGV[2])
redis.call("ZREM", KEYS[2], ARGV[1])
if tonumber(ARGV[7]) > tonumber(ARGV[5]) then
  redis.call("ZADD", KEYS[4], ARGV[7], ARGV[1])
else
  redis.call("ZADD", KEYS[3], ARGV[2], ARGV[1])
end
if ARGV[4] == "1" then
  local rev = redis.call("XADD", KEYS[5], "MAXLEN", "~", ARGV[6], "*", "_t", "queued", "_at", ARGV[5],
    unpack(redis.call("HGETALL", KEYS[1])))
  redis.call("HSET", KEYS[1], "rev", rev)
end
return 1
