--[[ cancel.lua — ends reservations in either phase for a batch of grants and returns their devices.
Idempotent: a grant id holding nothing (unknown, cancelled, lapsed) is left as it is. Atomic per
call, so two cancels of one grant return its devices once.

KEYS[1]  reservations hash: grant id -> "<phase>|<count>|<created ms>|<expires ms>|<in-use field>"
KEYS[2]  expiries zset: grant id -> expiry (epoch ms), reserved phase only
KEYS[3]  in-use hash: "<project>/<sku>" -> devices held
KEYS[4]  lapsed zset: grant id -> when its reservation lapsed (epoch ms)
ARGV[1]  now, epoch ms (unused: a cancel needs no clock, but every reservation script takes one)
ARGV[2..] grant ids

Returns, per grant id in order, the devices returned (0 when it held none).
]]
local reservations, expiries, in_use, lapsed = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local results = {}

for i = 2, #ARGV do
  local grant = ARGV[i]
  local held = redis.call('HGET', reservations, grant)
  local returned = 0
  if held then
    local count, field = string.match(held, '^%u|(%d+)|%d+|%d+|(.+)$')
    returned = tonumber(count)
    if redis.call('HINCRBY', in_use, field, -returned) <= 0 then
      redis.call('HDEL', in_use, field)
    end
    redis.call('HDEL', reservations, grant)
    redis.call('ZREM', expiries, grant)
  end
  -- A cancelled grant id is no longer "lapsed": a later Commit finds nothing at all.
  redis.call('ZREM', lapsed, grant)
  results[i - 1] = returned
end
return results
