-- A queued request that asked to start later is due: it moves from the scheduled set into the
-- queue at the score it was given when queued.
-- KEYS[1] grant hash   KEYS[2] scheduled set   KEYS[3] queue
-- ARGV[1] grant id
-- Returns 1 when moved, 0 when it was no longer scheduled (cancelled meanwhile).
if redis.call("ZREM", KEYS[2], ARGV[1]) == 0 then
  return 0
end
if redis.call("HGET", KEYS[1], "state") ~= "queued" then
  return 0
end
redis.call("ZADD", KEYS[3], redis.call("HGET", KEYS[1], "queue_score"), ARGV[1])
return 1
