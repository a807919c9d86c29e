-- Active -> ended, with the ENDED event appended to the outbox and the change to the change
-- stream in the same step. The grant joins the "ending" set until its devices and quota are
-- confirmed returned.
-- KEYS[1] grant hash   KEYS[2] expiry set   KEYS[3] ending set   KEYS[4] outbox stream
-- KEYS[5] preempting set   KEYS[6] change stream
-- ARGV[1] grant id   ARGV[2] now ms   ARGV[3] reason   ARGV[4] event (JSON)
-- ARGV[5] expired-by ms: when > 0, end only if the lease ended by then (a renewal wins)
-- ARGV[6] preempt-by ms: when > 0, end only if a preemption notice's deadline passed by then
-- ARGV[7] change type   ARGV[8] most entries the change stream keeps (approximate trim)
-- Returns 1 when ended, 0 when nothing changed.
if redis.call("HGET", KEYS[1], "state") ~= "active" then
  return 0
end
local expired_by = tonumber(ARGV[5])
if expired_by > 0 and tonumber(redis.call("HGET", KEYS[1], "expires_ms")) > expired_by then
  return 0
end
local preempt_by = tonumber(ARGV[6])
if preempt_by > 0 then
  local deadline = tonumber(redis.call("HGET", KEYS[1], "preemption_deadline_ms") or "0") or 0
  if deadline == 0 or deadline > preempt_by then
    return 0
  end
end
redis.call("HSET", KEYS[1], "state", "ended", "ended_ms", ARGV[2], "end_reason", ARGV[3])
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("ZREM", KEYS[5], ARGV[1])
redis.call("ZADD", KEYS[3], ARGV[2], ARGV[1])
redis.call("XADD", KEYS[4], "*", "e", ARGV[4])
local rev = redis.call("XADD", KEYS[6], "MAXLEN", "~", ARGV[8], "*", "_t", ARGV[7], "_at", ARGV[2],
  unpack(redis.call("HGETALL", KEYS[1])))
redis.call("HSET", KEYS[1], "rev", rev)
return 1
