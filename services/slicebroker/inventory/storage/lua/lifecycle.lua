-- lifecycle.lua: one lifecycle write to one node, compare-and-increment on its generation.
--
-- KEYS[1]      the node's hash
-- KEYS[2]      every node id (sorted set)
-- KEYS[3]      "<sku>|<node id>" (sorted set)
-- KEYS[4]      "<leaf>|<node id>" (sorted set)
-- KEYS[5]      capacity counters (hash)
-- KEYS[6]      the global revision (string counter)
-- KEYS[7]      the change log (stream)
-- ARGV[1]      operation: "state", "health", "heartbeat" or "remove"
-- ARGV[2]      node id
-- ARGV[3]      expected generation; 0 skips the check (heartbeats: the agent reports facts, it
--              does not decide on a snapshot)
-- ARGV[4]      now (epoch ms)
-- ARGV[5]      change log length to keep (entries, approximate)
-- ARGV[6..]    "state": the new state ("active", "cordoned", "draining")
--              "health", "heartbeat": pairs of device name ("gpu3") and "1" (healthy) / "0"
-- Returns {status, generation, detail...}:
--   "OK", new (or unchanged) generation, then for "state" the grants holding devices on the node
--   "NODE_NOT_FOUND", 0
--   "GENERATION_CONFLICT", current generation
--   "DEVICE_NOT_FOUND", current generation, the device name
--   "NODE_NOT_EMPTY", current generation, the grants holding devices (remove only)
-- Device values: "" free, "<grant>" held whole, "*" carrying slices; "!" prefixes an unhealthy one.

local key, nodes_key, by_sku_key, by_leaf_key, cap_key, rev_key, log_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local op, id, expected, now, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]

local cur = redis.call('HMGET', key, 'gen', 'sku', 'kind', 'n', 'held', 'sliced', 'leaf')
if not cur[1] then
  return {'NODE_NOT_FOUND', 0}
end
local gen, sku, kind, n = tonumber(cur[1]), cur[2], cur[3], tonumber(cur[4])
if expected ~= 0 and expected ~= gen then
  return {'GENERATION_CONFLICT', gen}
end

local function count_by(field, by)
  if by ~= 0 then
    redis.call('HINCRBY', cap_key, field, by)
  end
end

local function bump()
  gen = redis.call('HINCRBY', key, 'gen', 1)
  redis.call('XADD', log_key, 'MAXLEN', '~', maxlen, redis.call('INCR', rev_key) .. '-0', 'node', id)
end

-- Grants holding devices of the node: whole holders from the device values, slice holders from
-- the node's slice fields ("s|<device>|<grant>").
local function holders()
  local names = {}
  for d = 0, n - 1 do
    names[#names + 1] = kind .. d
  end
  local vals = redis.call('HMGET', key, unpack(names))
  local seen, out = {}, {}
  for d = 1, n do
    local v = string.gsub(vals[d] or '', '^!', '')
    if v ~= '' and v ~= '*' and not seen[v] then
      seen[v] = true
      out[#out + 1] = v
    end
  end
  local fields = redis.call('HKEYS', key)
  for j = 1, #fields do
    local grant = string.match(fields[j], '^s|[^|]+|(.+)$')
    if grant and not seen[grant] then
      seen[grant] = true
      out[#out + 1] = grant
    end
  end
  table.sort(out)
  return out
end

if op == 'state' then
  local state = ARGV[6]
  local was = redis.call('HGET', key, 'state') or 'active'
  if was ~= state then
    redis.call('HSET', key, 'state', state, 'sched', state == 'active' and 1 or 0)
    bump()
  end
  local result = {'OK', gen}
  for _, g in ipairs(holders()) do
    result[#result + 1] = g
  end
  return result
end

if op == 'health' or op == 'heartbeat' then
  -- 1. Check every device first so that a bad name writes nothing.
  local names = {}
  for j = 6, #ARGV, 2 do
    local d = string.match(ARGV[j], '^' .. kind .. '(%d+)$')
    if not d or tonumber(d) >= n then
      return {'DEVICE_NOT_FOUND', gen, ARGV[j]}
    end
    names[#names + 1] = ARGV[j]
  end
  -- 2. Flip what changed; counters follow ("free" counts healthy devices nobody holds).
  local changed = false
  if #names > 0 then
    local vals = redis.call('HMGET', key, unpack(names))
    for j = 1, #names do
      local v, healthy = vals[j], ARGV[5 + 2 * j] == '1'
      local sick = string.byte(v, 1) == 33
      if healthy and sick then
        local nv = string.sub(v, 2)
        redis.call('HSET', key, names[j], nv)
        count_by(sku .. '|unhealthy', -1)
        if nv == '' then
          count_by(sku .. '|free', 1)
        end
        changed = true
      elseif not healthy and not sick then
        redis.call('HSET', key, names[j], '!' .. v)
        count_by(sku .. '|unhealthy', 1)
        if v == '' then
          count_by(sku .. '|free', -1)
        end
        changed = true
      end
    end
  end
  if op == 'heartbeat' then
    redis.call('HSET', key, 'hb', now)
  end
  if changed then
    bump()
  end
  return {'OK', gen}
end

if op == 'remove' then
  if (tonumber(cur[5]) or 0) > 0 or (tonumber(cur[6]) or 0) > 0 then
    local result = {'NODE_NOT_EMPTY', gen}
    for _, g in ipairs(holders()) do
      result[#result + 1] = g
    end
    return result
  end
  local names = {}
  for d = 0, n - 1 do
    names[#names + 1] = kind .. d
  end
  local vals = redis.call('HMGET', key, unpack(names))
  local free, unhealthy = 0, 0
  for d = 1, n do
    if vals[d] == '' then
      free = free + 1
    elseif vals[d] then
      unhealthy = unhealthy + 1
    end
  end
  redis.call('DEL', key)
  redis.call('ZREM', nodes_key, id)
  redis.call('ZREM', by_sku_key, sku .. '|' .. id)
  if cur[7] and cur[7] ~= '' then
    redis.call('ZREM', by_leaf_key, cur[7] .. '|' .. id)
  end
  count_by(sku .. '|nodes', -1)
  count_by(sku .. '|devices', -n)
  count_by(sku .. '|free', -free)
  count_by(sku .. '|unhealthy', -unhealthy)
  redis.call('XADD', log_key, 'MAXLEN', '~', maxlen, redis.call('INCR', rev_key) .. '-0', 'node', id)
  return {'OK', gen + 1}
end

return redis.error_reply('unknown operation ' .. op)
