-- register.lua: creates or updates nodes. The call is all-or-nothing: every node is checked
-- before any is written.
--
-- KEYS[1]      every node id (sorted set, score 0)
-- KEYS[2]      "<sku>|<node id>" of every node (sorted set, score 0)
-- KEYS[3]      capacity counters (hash "<sku>|nodes", "|devices", "|free", "|unhealthy")
-- KEYS[4]      "<leaf>|<node id>" of every node with a leaf (sorted set, score 0)
-- KEYS[5]      the global revision (string counter)
-- KEYS[6]      the change log (stream; entry id "<revision>-0", field "node")
-- KEYS[6+i]    node i's hash, i = 1..N
-- ARGV[1]      "check" (look for refusals only, write nothing) or "apply"
-- ARGV[2]      change log length to keep (entries, approximate)
-- ARGV[3+14(i-1) ..] node i: id, site, rack, sku, device kind ("gpu"/"npu"), device count,
--              hall, pod, NVLink domain, leaf, spine, host CPU (milli-cores), host memory (MiB),
--              MIG layout ("<profile>:<instances>" joined by spaces, sorted; "" for none)
-- Returns {"OK", registered, unchanged}: registered counts created and changed nodes; or
--         {"HELD", i, held}: node i (1-based) would change its SKU or device count while `held`
--         of its devices are held, and nothing was written.
-- A change of place (site, hall, pod, rack, leaf, spine, NVLink domain), of host capacity or of
-- the MIG layout is allowed while devices are held (the devices, and the host CPU and memory in
-- use, stay as they are; a node shrunk below what is in use takes no claim asking for host
-- resources until enough is released; slices held outside a new layout stay until released).
-- Every change increments the node's generation and
-- the global revision; re-registering the same node is a no-op.

local nodes_key, by_sku_key, cap_key, by_leaf_key, rev_key, log_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local maxlen = ARGV[2]
local W = 14
local count = #KEYS - 6

local current = {}
for i = 1, count do
  local a = 3 + W * (i - 1)
  local cur = redis.call('HMGET', KEYS[6 + i], 'site', 'rack', 'sku', 'n', 'held', 'kind',
    'hall', 'pod', 'nvl', 'leaf', 'spine', 'sliced', 'cpu', 'mem', 'mig')
  current[i] = cur
  if cur[3] and (cur[3] ~= ARGV[a + 3] or cur[4] ~= ARGV[a + 5]) then
    local held = (tonumber(cur[5]) or 0) + (tonumber(cur[12]) or 0)
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

local function log_change(id)
  local rev = redis.call('INCR', rev_key)
  redis.call('XADD', log_key, 'MAXLEN', '~', maxlen, rev .. '-0', 'node', id)
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
  local key, a, cur = KEYS[6 + i], 3 + W * (i - 1), current[i]
  local id, site, rack, sku, kind, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local hall, pod, nvl, leaf, spine = ARGV[a + 6], ARGV[a + 7], ARGV[a + 8], ARGV[a + 9], ARGV[a + 10]
  local cpu, mem, mig = ARGV[a + 11], ARGV[a + 12], ARGV[a + 13]
  local place = {'site', site, 'rack', rack, 'hall', hall, 'pod', pod, 'nvl', nvl, 'leaf', leaf, 'spine', spine,
    'cpu', cpu, 'mem', mem, 'mig', mig}
  if not cur[3] then
    redis.call('ZADD', nodes_key, 0, id)
    if leaf ~= '' then
      redis.call('ZADD', by_leaf_key, 0, leaf .. '|' .. id)
    end
    local fields = {'sku', sku, 'kind', kind, 'n', n, 'gen', 1, 'sched', 1, 'state', 'active', 'held', 0}
    for j = 1, #place do
      fields[#fields + 1] = place[j]
    end
    add_devices(key, id, sku, kind, tonumber(n), fields)
    log_change(id)
    registered = registered + 1
  elseif cur[1] == site and cur[2] == rack and cur[3] == sku and cur[4] == n and (cur[7] or '') == hall
      and (cur[8] or '') == pod and (cur[9] or '') == nvl and (cur[10] or '') == leaf
      and (cur[11] or '') == spine and (cur[13] or '0') == cpu and (cur[14] or '0') == mem
      and (cur[15] or '') == mig then
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
    if (cur[10] or '') ~= leaf then
      if cur[10] and cur[10] ~= '' then
        redis.call('ZREM', by_leaf_key, cur[10] .. '|' .. id)
      end
      if leaf ~= '' then
        redis.call('ZADD', by_leaf_key, 0, leaf .. '|' .. id)
      end
    end
    redis.call('HSET', key, unpack(place))
    redis.call('HINCRBY', key, 'gen', 1)
    log_change(id)
    registered = registered + 1
  end
end
return {'OK', registered, unchanged}
