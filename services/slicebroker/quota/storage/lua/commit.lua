--[[ commit.lua — turns reservations into commitments (no expiry any more) for a batch of grants.
Atomic per call: a commit and the sweep never both act on one reservation, so its devices are
returned exactly once or not at all.

KEYS[1]  reservations hash: grant id -> "<phase>|<count>|<created ms>|<expires ms>|<in-use field>"
KEYS[2]  expiries zset: grant id -> expiry (epoch ms), reserved phase only
KEYS[3]  in-use hash: "<project>/<sku>" -> devices held
KEYS[4]  lapsed zset: grant id -> when its reservation lapsed (epoch ms)
ARGV[1]  now, epoch ms
ARGV[2..] grant ids

Returns one status per grant id, in order: "OK" (committed now or before) | "NOT_FOUND"
  | "EXPIRED" (the TTL had passed: the reservation is released now, or was by the sweep).
]]
local reservations, expiries, in_use, lapsed = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local results = {}

for i = 2, #ARGV do
  local grant = ARGV[i]
  local held = redis.call('HGET', reservations, grant)
  if not held then
    results[i - 1] = redis.call('ZSCORE', lapsed, grant) and 'EXPIRED' or 'NOT_FOUND'
  else
    local phase, count, created, expires, field = string.match(held, '^(%u)|(%d+)|(%d+)|(%d+)|(.+)$')
    if phase == 'C' then
      results[i - 1] = 'OK'
    elseif tonumber(expires) <= now then
      if redis.call('HINCRBY', in_use, field, -tonumber(count)) <= 0 then
        redis.call('HDEL', in_use, field)
      end
      redis.call('HDEL', reservations, grant)
      redis.call('ZREM', expiries, grant)
      redis.call('ZADD', lapsed, expires, grant)
      results[i - 1] = 'EXPIRED'
    else
      redis.call('HSET', reservations, grant, 'C|' .. count .. '|' .. created .. '|0|' .. field)
      redis.call('ZREM', expiries, grant)
      results[i - 1] = 'OK'
    end
  end
end
return results
