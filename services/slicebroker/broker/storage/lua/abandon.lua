-- Forgets a refused pending grant, as if it had never been asked for.
-- KEYS[1] grant hash   KEYS[2] idempotency key (or a throwaway key)   KEYS[3] all-grants index
-- KEYS[4] project index   KEYS[5] pending set
-- ARGV[1] grant id
-- Returns 1 when forgotten, 0 when the grant was not pending.
if redis.call("HGET", KEYS[1], "state") ~= "pending" then
  return 0
end
if redis.call("GET", KEYS[2]) == ARGV[1] then
  redis.call("DEL", KEYS[2])
end
redis.call("DEL", KEYS[1])
redis.call("ZREM", KEYS[3], ARGV[1])
redis.call("ZREM", KEYS[4], ARGV[1])
redis.call("ZREM", KEYS[5], ARGV[1])
return 1
