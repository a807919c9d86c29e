--[[ reserve.lua — holds devices against project caps for a batch of grants, each item on its own
(a refused item does not undo the others). Atomic per call, so concurrent batches can never take a
project past its cap. The cap rule is `slicebroker.quota.domain.caps.fits`: in use + count <= cap.

KEYS[1]    reservations hash: grant id -> "<phase>|<count>|<created ms>|<expires ms>|<in-use field>",
           phase R (reserved) or C (committed), expires 0 once committed
KEYS[2]    expiries zset: grant id -> expiry (epoch ms), reserved phase only
KEYS[3]    in-use hash: in-use field ("<project>/<sku>") -> devices held, reserved or committed
KEYS[4]    lapsed zset: grant id -> when its reservation lapsed (epoch ms)
KEYS[4+i]  the project hash of item i (fields institution and cap:<sku>)
ARGV[1]    now, epoch ms
ARGV[2..]  five per item i, from ARGV[2 + 5*(i-1)]: grant id, in-use field, cap field,
           count (devices), ttl (ms)

Returns one array per item, in order:
  {"OK", institution} | {"PROJECT_NOT_FOUND"} | {"MISMATCH", held in-use field, held count}
  | {"QUOTA_EXCEEDED", cap, devices in use}
A grant id already holding the same project, SKU and count is OK again and changes nothing.
]]
local reservations, expiries, in_use, lapsed = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local results = {}

for i = 1, (#ARGV - 1) / 5 do
  local a = 2 + 5 * (i - 1)
  local grant, field, cap_field = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local count, ttl = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local project = KEYS[4 + i]

  local held = redis.call('HGET', reservations, grant)
  if held then
    local phase, held_count, _, expires, held_field = string.match(held, '^(%u)|(%d+)|(%d+)|(%d+)|(.+)$')
    held_count = tonumber(held_count)
    if phase == 'R' and tonumber(expires) <= now then
      -- Lapsed but not swept yet: release it here and treat this item as a new reservation.
      if redis.call('HINCRBY', in_use, held_field, -held_count) <= 0 then
        redis.call('HDEL', in_use, held_field)
      end
      redis.call('HDEL', reservations, grant)
      redis.call('ZREM', expiries, grant)
      redis.call('ZADD', lapsed, expires, grant)
      held = false
    elseif held_field == field and held_count == count then
      results[i] = {'OK', redis.call('HGET', project, 'institution') or ''}
    else
      results[i] = {'MISMATCH', held_field, held_count}
    end
  end

  if not held then
    local p = redis.call('HMGET', project, 'institution', cap_field)
    if not p[1] then
      results[i] = {'PROJECT_NOT_FOUND'}
    else
      local cap = tonumber(p[2]) or 0
      local used = tonumber(redis.call('HGET', in_use, field)) or 0
      if used + count > cap then
        results[i] = {'QUOTA_EXCEEDED', cap, used}
      else
        local expires = now + ttl
        redis.call('HINCRBY', in_use, field, count)
        redis.call('HSET', reservations, grant, string.format('R|%d|%d|%d|%s', count, now, expires, field))
        redis.call('ZADD', expiries, expires, grant)
        redis.call('ZREM', lapsed, grant)
        results[i] = {'OK', p[1]}
      end
    end
  end
end
return results
