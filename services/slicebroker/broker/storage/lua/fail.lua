-- Pending -> failed: the grant path was interrupted. Frees the idempotency key so that the
-- client's retry makes a fresh attempt instead of receiving the failure.
-- KEYS[1] grant hash   KEYS[2] idempotency key (or a throwaway key)   KEYS[3] pending set
-- ARGV[1] grant id   ARGV[2] now ms
-- Returns 1 when failed, 0 when the grant was not pending.
if redis.call("HGET", KEYS[1], "state") ~= "pending" then
  return 0
end
redis.call("HSET", KEYS[1], "state", "failed", "ended_ms", ARGV[2], "end_reason", "failed")
if redis.call("GET", KEYS[2]) == ARGV[1] then
  redis.call("DEL", KEYS[2])
end
redis.call("ZREM", KEYS[3], ARGV[1])
return 1
