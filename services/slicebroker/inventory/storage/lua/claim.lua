-- claim.lua: claims devices for a batch of grants. Claims are applied in order; each is
-- all-or-nothing and independent of the others, and a later claim sees what earlier ones wrote
-- (including incremented generations of a shared node).
--
-- KEYS[1]      grant ids holding devices (set)
-- KEYS[2]      capacity counters (hash "<sku>|free", ...)
-- then per claim: the grant's hash (node id -> "gpu0 gpu3"), then the hash of each node it names
-- ARGV[1]      number of claims
-- then per claim: grant id, node count; then per node: node id, expected generation,
--              device count, device names ("gpu3")
-- Returns one array per claim: {status, node position, device position, gen_1, ..., gen_n}
--   status     "OK", "NODE_NOT_FOUND", "NODE_NOT_SCHEDULABLE", "GENERATION_CONFLICT",
--              "DEVICE_NOT_FOUND", "DEVICE_UNHEALTHY" or "DEVICE_TAKEN"
--   positions  1-based node and device of the failure; 0 when not applicable
--   gen_i      generation of node i after the claim (0: no such node)
-- A claim whose devices are all held by its grant already is a replay: "OK", nothing written,
-- expected generations not checked.

local holders, capacity = KEYS[1], KEYS[2]
local k, a = 3, 2
local results = {}
for c = 1, tonumber(ARGV[1]) do
  local grant, grant_key, n_nodes = ARGV[a], KEYS[k], tonumber(ARGV[a + 1])
  local held_by_grant = '!' .. grant
  a, k = a + 2, k + 1

  -- 1. Read every node of the claim once: generation, schedulable, SKU and the devices.
  local nodes = {}
  local replay = true
  for i = 1, n_nodes do
    local n_dev = tonumber(ARGV[a + 2])
    local names = {}
    for d = 1, n_dev do
      names[d] = ARGV[a + 2 + d]
    end
    local vals = redis.call('HMGET', KEYS[k], 'gen', 'sched', 'sku', unpack(names))
    nodes[i] = {KEYS[k], ARGV[a], ARGV[a + 1], names, vals}
    if replay then
      if not vals[1] then
        replay = false
      else
        for d = 1, n_dev do
          local v = vals[3 + d]
          if v ~= grant and v ~= held_by_grant then
            replay = false
            break
          end
        end
      end
    end
    a, k = a + 3 + n_dev, k + 1
  end

  -- 2. Check node by node, device by device; the first failure decides.
  local status, bad_node, bad_dev = 'OK', 0, 0
  if not replay then
    for i = 1, n_nodes do
      local node = nodes[i]
      local vals = node[5]
      if not vals[1] then
        status = 'NODE_NOT_FOUND'
      elseif vals[2] ~= '1' then
        status = 'NODE_NOT_SCHEDULABLE'
      elseif vals[1] ~= node[3] then
        status = 'GENERATION_CONFLICT'
      else
        for d = 1, #node[4] do
          local v = vals[3 + d]
          if not v then
            status = 'DEVICE_NOT_FOUND'
          elseif string.byte(v, 1) == 33 then -- "!": unhealthy
            status = 'DEVICE_UNHEALTHY'
          elseif v ~= '' and v ~= grant then
            status = 'DEVICE_TAKEN'
          end
          if status ~= 'OK' then
            bad_dev = d
            break
          end
        end
      end
      if status ~= 'OK' then
        bad_node = i
        break
      end
    end
  end

  -- 3. Apply: hold the free devices, record them under the grant, one generation step per node written.
  local result = {status, bad_node, bad_dev}
  if status == 'OK' and not replay then
    local wrote = false
    for i = 1, n_nodes do
      local node = nodes[i]
      local key, names, vals = node[1], node[4], node[5]
      local set, added = {}, {}
      for d = 1, #names do
        if vals[3 + d] == '' then
          set[#set + 1] = names[d]
          set[#set + 1] = grant
          added[#added + 1] = names[d]
        end
      end
      if #added > 0 then
        redis.call('HSET', key, unpack(set))
        redis.call('HINCRBY', key, 'held', #added)
        redis.call('HINCRBY', capacity, vals[3] .. '|free', -#added)
        local list = table.concat(added, ' ')
        local prior = redis.call('HGET', grant_key, node[2])
        if prior then
          list = prior .. ' ' .. list
        end
        redis.call('HSET', grant_key, node[2], list)
        result[3 + i] = redis.call('HINCRBY', key, 'gen', 1)
        wrote = true
      else
        result[3 + i] = tonumber(vals[1])
      end
    end
    if wrote then
      redis.call('SADD', holders, grant)
    end
  else
    for i = 1, n_nodes do
      result[3 + i] = tonumber(nodes[i][5][1]) or 0
    end
  end
  results[c] = result
end
return results
