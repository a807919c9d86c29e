-- Pending -> active, with the GRANTED event appended to the outbox and the change to the change
-- stream in the same step.
-- KEYS[1] grant hash   KEYS[2] pending set   KEYS[3] expiry set   KEYS[4] outbox stream
-- KEYS[5] change stream
-- ARGV[1] grant id   ARGV[2] lease end ms   ARGV[3] event (JSON)   ARGV[4] now ms
-- ARGV[5] most entries the change stream keeps (approximate trim)
-- ARGV[6..] field/value pairs the active grant sets (state, institution, slices, the alternative granted…)
-- Returns 1 when activated, 0 when the grant is no longer pending (the reconciler failed it).
if redis.call("HGET", KEYS[1], "state") ~= "pending" then
  return 0
end
local fields = {}
for i = 6, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call("HSET", KEYS[1], unpack(fields))
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("ZADD", KEYS[3], ARGV[2], ARGV[1])
redis.call("XADD", KEYS[4], "*", "e", ARGV[3])
local rev = redis.call("XADD", KEYS[5], "MAXLEN", "~", ARGV[5], "*", "_t", "granted", "_at", ARGV[4],
  unpack(redis.call("HGETALL", KEYS[1])))
redis.call("HSET", KEYS[1], "rev", rev)
return 1
