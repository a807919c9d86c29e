-- claim.lua: claims devices and slices of devices for a batch of grants. Claims are applied in
-- order; each is all-or-nothing and independent of the others, and a later claim sees what
-- earlier ones wrote (including incremented generations of a shared node).
--
-- KEYS[1]      grant ids holding devices (set)
-- KEYS[2]      capacity counters (hash "<sku>|free", ...)
-- KEYS[3]      the global revision (string counter)
-- KEYS[4]      the change log (stream; entry id "<revision>-0", field "node")
-- then per claim: the grant's hash (node id -> "gpu0 gpu3 gpu1#mig#3g.40gb#3#4"), then the hash
--              of each node it names
-- ARGV[1]      number of claims
-- ARGV[2]      change log length to keep (entries, approximate)
-- then per claim: grant id, node count; then per node: node id, expected generation, host CPU
--              (milli-cores) and host memory (MiB) taken there (0 0: none),
--              whole-device count, device names ("gpu3"), slice count, then when slices > 0 the
--              node's SKU the slice sizes were computed for, and per slice: device name, kind
--              ("mig", "share", "npu_partition"), profile, compute, memory, device compute
--              capacity, device memory capacity (partition counters, or milli-units for shares)
-- Returns one array per claim: {status, node position, device position, gen_1, ..., gen_n}
--   status     "OK", "NODE_NOT_FOUND", "NODE_NOT_SCHEDULABLE", "GENERATION_CONFLICT",
--              "DEVICE_NOT_FOUND", "DEVICE_UNHEALTHY", "DEVICE_TAKEN", "SLICE_CONFLICT" or
--              "HOST_RESOURCES_TAKEN"
--   positions  1-based node and device of the failure (devices first, then slices, counted
--              together); 0 when not applicable
--   gen_i      generation of node i after the claim (0: no such node)
-- A claim whose whole devices are all held by its grant already, and whose slice devices all
-- carry slices of its grant already, is a replay: "OK", nothing written, generations not checked.
--
-- A device carries one kind of slice at a time; its `u|<dev>` field keeps "<kind> <compute>
-- <memory>" in use, and a slice fits while the sums stay within the device's capacity. So no mix
-- of partitions or shares on one device can exceed it, whatever the order of claims.
--
-- Host CPU and memory: the node hash keeps its capacity (`cpu`, `mem`, 0 or absent: none offered)
-- and what grants hold (`cpu_used`, `mem_used`); a claim taking host resources fits while the sums
-- stay within the capacity, and its grant's record gets a "~<cpu>:<mem>" token per node so that
-- release gives them back.

local holders, capacity, rev_key, log_key, maxlen = KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2]
local k, a = 5, 3
local results = {}
for c = 1, tonumber(ARGV[1]) do
  local grant, grant_key, n_nodes = ARGV[a], KEYS[k], tonumber(ARGV[a + 1])
  local held_by_grant = '!' .. grant
  a, k = a + 2, k + 1

  -- 1. Read every node of the claim once: generation, schedulable, SKU, the whole devices, and
  --    per slice its device's value, usage and this grant's slices there.
  local nodes = {}
  local replay = true
  for i = 1, n_nodes do
    local node_id, expected = ARGV[a], ARGV[a + 1]
    local host = {tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])}
    a = a + 4
    local n_dev = tonumber(ARGV[a])
    local fields = {'gen', 'sched', 'sku'}
    local names = {}
    for d = 1, n_dev do
      names[d] = ARGV[a + d]
      fields[#fields + 1] = names[d]
    end
    a = a + 1 + n_dev
    local n_slices = tonumber(ARGV[a])
    local sku, slices = nil, {}
    if n_slices > 0 then
      sku = ARGV[a + 1]
      a = a + 2
      for s = 1, n_slices do
        local dev = ARGV[a]
        slices[s] = {dev, ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]),
          tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])}
        fields[#fields + 1] = dev
        fields[#fields + 1] = 'u|' .. dev
        fields[#fields + 1] = 's|' .. dev .. '|' .. grant
        a = a + 7
      end
    else
      a = a + 1
    end
    local vals = redis.call('HMGET', KEYS[k], unpack(fields))
    nodes[i] = {KEYS[k], node_id, expected, names, vals, sku, slices, host}
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
        for s = 1, n_slices do
          if not vals[3 + n_dev + 3 * s] then
            replay = false
            break
          end
        end
      end
    end
    k = k + 1
  end

  -- 2. Check node by node, device by device, slice by slice; the first failure decides.
  --    `usage[node][dev]` accumulates the slices of this claim so that two of them on one device
  --    are checked together.
  local status, bad_node, bad_dev = 'OK', 0, 0
  local usage = {}
  if not replay then
    for i = 1, n_nodes do
      local node = nodes[i]
      local vals, names, slices = node[5], node[4], node[7]
      local n_dev = #names
      if not vals[1] then
        status = 'NODE_NOT_FOUND'
      elseif vals[2] ~= '1' then
        status = 'NODE_NOT_SCHEDULABLE'
      elseif vals[1] ~= node[3] then
        status = 'GENERATION_CONFLICT'
      else
        for d = 1, n_dev do
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
        if status == 'OK' and #slices > 0 and vals[3] ~= node[6] then
          -- Sizes were computed for another SKU: the node was reshaped since the caller read it.
          status, bad_dev = 'GENERATION_CONFLICT', 0
        end
        local host = node[8]
        if status == 'OK' and (host[1] > 0 or host[2] > 0) then
          local h = redis.call('HMGET', node[1], 'cpu', 'mem', 'cpu_used', 'mem_used')
          if (tonumber(h[3]) or 0) + host[1] > (tonumber(h[1]) or 0)
              or (tonumber(h[4]) or 0) + host[2] > (tonumber(h[2]) or 0) then
            status, bad_dev = 'HOST_RESOURCES_TAKEN', 0
          end
        end
        local use = {}
        usage[i] = use
        for s = 1, #slices do
          if status ~= 'OK' then
            break
          end
          local sl = slices[s]
          local dev, kind, cost_c, cost_m, cap_c, cap_m = sl[1], sl[2], sl[4], sl[5], sl[6], sl[7]
          local base = 3 + n_dev + 3 * (s - 1)
          local v, u = vals[base + 1], vals[base + 2]
          if not v then
            status = 'DEVICE_NOT_FOUND'
          elseif string.byte(v, 1) == 33 then
            status = 'DEVICE_UNHEALTHY'
          elseif v ~= '' and v ~= '*' then
            status = 'DEVICE_TAKEN'
          else
            local cur = use[dev]
            if not cur then
              cur = {'', 0, 0}
              if u then
                local uk, uc, um = string.match(u, '^(%S+) (%d+) (%d+)$')
                cur = {uk, tonumber(uc), tonumber(um)}
              end
              use[dev] = cur
            end
            if cur[1] ~= '' and cur[1] ~= kind then
              status = 'SLICE_CONFLICT'
            elseif cur[2] + cost_c > cap_c or cur[3] + cost_m > cap_m then
              status = 'SLICE_CONFLICT'
            else
              cur[1], cur[2], cur[3] = kind, cur[2] + cost_c, cur[3] + cost_m
            end
          end
          if status ~= 'OK' then
            bad_dev = n_dev + s
          end
        end
      end
      if status ~= 'OK' then
        bad_node = i
        break
      end
    end
  end

  -- 3. Apply: hold the free devices, place the slices, record them under the grant, one
  --    generation step per node written.
  local result = {status, bad_node, bad_dev}
  if status == 'OK' and not replay then
    local wrote = false
    for i = 1, n_nodes do
      local node = nodes[i]
      local key, names, vals, slices = node[1], node[4], node[5], node[7]
      local n_dev = #names
      local set, added = {}, {}
      for d = 1, n_dev do
        if vals[3 + d] == '' then
          set[#set + 1] = names[d]
          set[#set + 1] = grant
          added[#added + 1] = names[d]
        end
      end
      local n_held = #added
      if n_held > 0 then
        redis.call('HINCRBY', key, 'held', n_held)
        redis.call('HINCRBY', capacity, vals[3] .. '|free', -n_held)
      end
      local newly_sliced, mine = 0, {}
      for s = 1, #slices do
        local sl = slices[s]
        local dev = sl[1]
        local base = 3 + n_dev + 3 * (s - 1)
        if vals[base + 1] == '' and not mine[dev] then
          newly_sliced = newly_sliced + 1
          set[#set + 1] = dev
          set[#set + 1] = '*'
        end
        local token = sl[2] .. ':' .. sl[3] .. ':' .. sl[4] .. ':' .. sl[5]
        local prev = mine[dev] or vals[base + 3]
        mine[dev] = prev and (prev .. ' ' .. token) or token
        added[#added + 1] = dev .. '#' .. sl[2] .. '#' .. sl[3] .. '#' .. sl[4] .. '#' .. sl[5]
      end
      for dev, tokens in pairs(mine) do
        local u = usage[i][dev]
        set[#set + 1] = 'u|' .. dev
        set[#set + 1] = u[1] .. ' ' .. u[2] .. ' ' .. u[3]
        set[#set + 1] = 's|' .. dev .. '|' .. grant
        set[#set + 1] = tokens
      end
      if newly_sliced > 0 then
        redis.call('HINCRBY', key, 'sliced', newly_sliced)
        redis.call('HINCRBY', capacity, vals[3] .. '|free', -newly_sliced)
      end
      local host = node[8]
      if #added > 0 and (host[1] > 0 or host[2] > 0) then
        redis.call('HINCRBY', key, 'cpu_used', host[1])
        redis.call('HINCRBY', key, 'mem_used', host[2])
        added[#added + 1] = '~' .. host[1] .. ':' .. host[2]
      end
      if #added > 0 then
        redis.call('HSET', key, unpack(set))
        local list = table.concat(added, ' ')
        local prior = redis.call('HGET', grant_key, node[2])
        if prior then
          list = prior .. ' ' .. list
        end
        redis.call('HSET', grant_key, node[2], list)
        result[3 + i] = redis.call('HINCRBY', key, 'gen', 1)
        redis.call('XADD', log_key, 'MAXLEN', '~', maxlen, redis.call('INCR', rev_key) .. '-0', 'node', node[2])
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
