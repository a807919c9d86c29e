--[[ upsert_institution.lua — creates or changes an institution, compare-and-increment: the
generation grows only when something changed, so re-applying the same object is a no-op.

KEYS[1]  the institution hash (fields display_name, generation)
KEYS[2]  institutions zset (score 0, so ids list in name order)
ARGV[1]  institution id
ARGV[2]  display name ('' for none)

Returns the institution's generation after the call.
]]
local current = redis.call('HMGET', KEYS[1], 'generation', 'display_name')
if current[1] and (current[2] or '') == ARGV[2] then
  return tonumber(current[1])
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'display_name')
else
  redis.call('HSET', KEYS[1], 'display_name', ARGV[2])
end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'generation', 1)
