--[[ sweep.lua — releases reservations whose TTL has passed, oldest expiry first, and forgets
lapsed marks older than the retention. Atomic per call: a reservation is released here or
committed by commit.lua, never both.

KEYS[1]  reservations hash: grant id -> "<phase>|<count>|<created ms>|<expires ms>|<in-use field>"
KEYS[2]  expiries zset: grant id -> expiry (epoch ms), reserved phase only
KEYS[3]  in-use hash: "<project>/<sku>" -> devices held
KEYS[4]  lapsed zset: grant id -> when its reservation lapsed (epoch ms)
ARGV[1]  now, epoch ms: reservations expiring at or before it are released
ARGV[2]  most reservations to release in this call
ARGV[3]  how long a lapsed mark is kept, ms

Returns the grant ids whose reservations were released.
]]
local reservations, expiries, in_use, lapsed = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local released = {}

local due = redis.call('ZRANGEBYSCORE', expiries, '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due, 2 do
  local grant, expires = due[i], due[i + 1]
  local held = redis.call('HGET', reservations, grant)
  if held then
    local phase, count, field = string.match(held, '^(%u)|(%d+)|%d+|%d+|(.+)$')
    if phase == 'R' then
      if redis.call('HINCRBY', in_use, field, -tonumber(count)) <= 0 then
        redis.call('HDEL', in_use, field)
      end
      redis.call('HDEL', reservations, grant)
      redis.call('ZADD', lapsed, expires, grant)
      released[#released + 1] = grant
    end
  end
  redis.call('ZREM', expiries, grant)
end
redis.call('ZREMRANGEBYSCORE', lapsed, '-inf', now - tonumber(ARGV[3]))
return released
