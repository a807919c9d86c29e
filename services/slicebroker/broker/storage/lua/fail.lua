-- Pending -> failed: the grant path was interrupted, or a request taken from the queue was
-- refused for good. Frees the idempotency key so that the client's retry makes a fresh attempt
-- instead of receiving the failure.
-- KEYS[1] grant hash   KEYS[2] idempotency key (or a throwaway key)   KEYS[3] pending set
-- KEYS[4] change stream
-- ARGV[1] grant id   ARGV[2] now ms   ARGV[3] most entries the change stream keeps
-- ARGV[4] why it failed ("" keeps the last waiting reason)
-- Returns 1 when failed, 0 when the grant was not pending.
if redis.call("HGET", KEYS[1], "state") ~= "pending" then
  return 0
end
redis.call("HSET", KEYS[1], "state", "failed", "ended_ms", ARGV[2], "end_reason", "failed")
if ARGV[4] ~= "" then
  redis.call("HSET", KEYS[1], "waiting_reason", ARGV[4])
end
if redis.call("GET", KEYS[2]) == ARGV[1] then
  redis.call("DEL", KEYS[2])
end
redis.call("ZREM", KEYS[3], ARGV[1])
local rev = redis.call("XADD", KEYS[4], "MAXLEN", "~", ARGV[3], "*", "_t", "failed", "_at", ARGV[2],
  unpack(redis.call("HGETALL", KEYS[1])))
redis.call("HSET", KEYS[1], "rev", rev)
return 1
