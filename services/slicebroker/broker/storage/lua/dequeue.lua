-- Queued -> pending: the dispatcher is about to try the request; from here it is granted,
-- queued again, or failed by the reconciler if the dispatcher dies mid-way.
-- KEYS[1] grant hash   KEYS[2] pending set   KEYS[3] queue
-- ARGV[1] grant id   ARGV[2] now ms
-- Returns 1 when taken off the queue, 0 when it was no longer queued (cancelled, or taken).
if redis.call("HGET", KEYS[1], "state") ~= "queued" then
  redis.call("ZREM", KEYS[3], ARGV[1])
  return 0
end
redis.call("HSET", KEYS[1], "state", "pending")
redis.call("ZREM", KEYS[3], ARGV[1])
redis.call("ZADD", KEYS[2], ARGV[2], ARGV[1])
return 1
