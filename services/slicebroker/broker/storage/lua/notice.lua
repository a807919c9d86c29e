-- Gives an active grant a preemption notice: it stays active until the deadline, then the reaper
-- ends it ("preempted"). A grant already under notice keeps its first notice.
-- KEYS[1] grant hash   KEYS[2] preempting set   KEYS[3] change stream
-- ARGV[1] grant id   ARGV[2] now ms   ARGV[3] deadline ms   ARGV[4] reason (plain words)
-- ARGV[5] most entries the change stream keeps (approximate trim)
-- Returns 1 when noticed, 0 when the grant is not active or already under notice.
if redis.call("HGET", KEYS[1], "state") ~= "active" then
  return 0
end
if (tonumber(redis.call("HGET", KEYS[1], "preemption_deadline_ms") or "0") or 0) > 0 then
  return 0
end
redis.call("HSET", KEYS[1], "preemption_deadline_ms", ARGV[3], "preemption_reason", ARGV[4])
redis.call("ZADD", KEYS[2], ARGV[3], ARGV[1])
local rev = redis.call("XADD", KEYS[3], "MAXLEN", "~", ARGV[5], "*", "_t", "preemption_notice", "_at", ARGV[2],
  unpack(redis.call("HGETALL", KEYS[1])))
redis.call("HSET", KEYS[1], "rev", rev)
return 1
