-- register.lua: creates or updates nodes. The call is all-or-nothing: every node is checked
-- before any is written.
--
-- KEYS[1]      every node id (sorted set, score 0)
-- KEYS[2]      "<sku>|<node id>" of every node (sorted set, score 0)
-- KEYS[3]      capacity counters (hash "<sku>|nodes", "|devices", "|free", "|unhealthy")
-- KEYS[3+i]    node i's hash, i = 1..N
-- ARGV[1]      "check" (look for refusals only, write nothing) or "apply"
-- ARGV[2+6(i-1) ..] node i: id, site, rack, sku, device kind ("gpu"/"npu"), device count
-- Returns {"OK", registered, unchanged}: registered counts created and changed nodes; or
--         {"HELD", i, held}: node i (1-based) would change its SKU or device count while `held`
--         of its devices are held, and nothing was written.
-- A change of site or rack is allowed while devices are held (the devices stay as they are).
-- Every change increments the node's generation; re-registering the same node is a no-op.

local nodes_key, by_sku_key, cap_key = KEYS[1], KEYS[2], KEYS[3]
local count = #KEYS - 3

local current = {}
for i = 1, count do
  local a = 2 + 6 * (i - 1)
  local cur = redis.call('HMGET', KEYS[3 + i], 'site', 'rack', 'sku', 'n', 'held', 'kind')
  current[i] = cur
  if cur[3] and (cur[3] ~= ARGV[a + 3] or cur[4] ~= ARGV[a + 5]) then
    local held = tonumber(cur[5]) or 0
    if held > 0 then
      return {'HELD', i, held}
    end
  end
end
if ARGV[1] == 'check' then
  return {'OK', 0, 0}
end

-- Lua turns -0 into "-0", which HINCRBY refuses; and a zero step need not be written.
local function count_by(field, by)
  if by ~= 0 then
    redis.call('HINCRBY', cap_key, field, by)
  end
end

-- New devices start free and healthy (empty value).
local function add_devices(key, id, sku, kind, n, fields)
  for d = 0, n - 1 do
    fields[#fields + 1] = kind .. d
    fields[#fields + 1] = ''
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('ZADD', by_sku_key, 0, sku .. '|' .. id)
  count_by(sku .. '|nodes', 1)
  count_by(sku .. '|devices', n)
  count_by(sku .. '|free', n)
end

local registered, unchanged = 0, 0
for i = 1, count do
  local key, a, cur = KEYS[3 + i], 2 + 6 * (i - 1), current[i]
  local id, site, rack, sku, kind, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  if not cur[3] then
    redis.call('ZADD', nodes_key, 0, id)
    add_devices(key, id, sku, kind, tonumber(n),
      {'site', site, 'rack', rack, 'sku', sku, 'kind', kind, 'n', n, 'gen', 1, 'sched', 1, 'held', 0})
    registered = registered + 1
  elseif cur[1] == site and cur[2] == rack and cur[3] == sku and cur[4] == n then
    unchanged = unchanged + 1
  else
    if cur[3] ~= sku or cur[4] ~= n then
      -- The shape changes and no device is held (checked above): drop the old devices.
      local old_sku, old_n, old_kind = cur[3], tonumber(cur[4]), cur[6]
      local names = {}
      for d = 0, old_n - 1 do
        names[#names + 1] = old_kind .. d
      end
      local vals = redis.call('HMGET', key, unpack(names))
      local free, unhealthy = 0, 0
      for d = 1, old_n do
        if vals[d] == '' then
          free = free + 1
        elseif vals[d] then
          unhealthy = unhealthy + 1
        end
      end
      redis.call('HDEL', key, unpack(names))
      redis.call('ZREM', by_sku_key, old_sku .. '|' .. id)
      count_by(old_sku .. '|nodes', -1)
      count_by(old_sku .. '|devices', -old_n)
      count_by(old_sku .. '|free', -free)
      count_by(old_sku .. '|unhealthy', -unhealthy)
      add_devices(key, id, sku, kind, tonumber(n), {'sku', sku, 'kind', kind, 'n', n})
    end
    redis.call('HSET', key, 'site', site, 'rack', rack)
    redis.call('HINCRBY', key, 'gen', 1)
    registered = registered + 1
  end
end
return {'OK', registered, unchanged}
