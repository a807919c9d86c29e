-- release.lua: frees every device held by each of a batch of grants. Idempotent: a grant that
-- holds nothing (unknown, or released before) is a no-op.
--
-- KEYS[1]      grant ids holding devices (set)
-- KEYS[2]      capacity counters (hash "<sku>|free", ...)
-- KEYS[3]      the global revision (string counter)
-- KEYS[4]      the change log (stream; entry id "<revision>-0", field "node")
-- then per grant: the grant's hash (node id -> "gpu0 gpu3 gpu1#mig#3g.40gb#3#4"), then the hash of each node the
--              caller found in it
-- ARGV[1]      number of grants
-- ARGV[2]      change log length to keep (entries, approximate)
-- then per grant: grant id, node count, the node ids (in the order of their KEYS)
-- Returns {"STALE"} when a grant now holds devices on a node the caller did not pass (it claimed
--         more after the caller read it): nothing was written; read again and call again.
--         Else {"OK", devices and slice devices released, node id, generation, ...} with the
--         new generation of every node written (incremented once per call however many grants
--         held devices on it).

local holders, capacity, rev_key, log_key, maxlen = KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2]
local k, a = 5, 3

-- 1. Read every grant and check that the caller passed all of its nodes.
local plans = {}
for g = 1, tonumber(ARGV[1]) do
  local grant, grant_key, n_nodes = ARGV[a], KEYS[k], tonumber(ARGV[a + 1])
  local key_of = {}
  for i = 1, n_nodes do
    key_of[ARGV[a + 1 + i]] = KEYS[k + i]
  end
  local held = redis.call('HGETALL', grant_key)
  for j = 1, #held, 2 do
    if not key_of[held[j]] then
      return {'STALE'}
    end
  end
  plans[g] = {grant, grant_key, key_of, held}
  a, k = a + 2 + n_nodes, k + 1 + n_nodes
end

-- 2. Free the devices; an unhealthy device stays marked unhealthy ("!") but is no longer held.
--    Slice tokens ("gpu1#mig#3g.40gb#3#4") give their compute and memory back to the device's
--    usage; a device whose usage reaches zero is free again ("" or "!"). Host tokens
--    ("~<cpu>:<mem>") give the node's host CPU and memory back.
local released = 0
local touched, order = {}, {}
local function touch(key, node_id)
  local t = touched[key]
  if not t then
    t = {node_id, 0, 0, 0}
    touched[key] = t
    order[#order + 1] = key
  end
  return t
end
for g = 1, #plans do
  local grant, grant_key, key_of, held = plans[g][1], plans[g][2], plans[g][3], plans[g][4]
  local held_unhealthy = '!' .. grant
  for j = 1, #held, 2 do
    local node_id, key = held[j], key_of[held[j]]
    local names, slices = {}, {}
    local host_c, host_m = 0, 0
    for token in string.gmatch(held[j + 1], '%S+') do
      local dev, c, m = string.match(token, '^([^#]+)#[^#]+#[^#]*#(%d+)#(%d+)$')
      local hc, hm = string.match(token, '^~(%d+):(%d+)$')
      if hc then
        host_c, host_m = host_c + tonumber(hc), host_m + tonumber(hm)
      elseif dev then
        local sl = slices[dev]
        if not sl then
          sl = {0, 0}
          slices[dev] = sl
        end
        sl[1], sl[2] = sl[1] + tonumber(c), sl[2] + tonumber(m)
      else
        names[#names + 1] = token
      end
    end
    local set, freed, count = {}, 0, 0
    if #names > 0 then
      local vals = redis.call('HMGET', key, unpack(names))
      for d = 1, #names do
        local v = vals[d]
        if v == grant then
          set[#set + 1] = names[d]
          set[#set + 1] = ''
          freed, count = freed + 1, count + 1
        elseif v == held_unhealthy then
          set[#set + 1] = names[d]
          set[#set + 1] = '!'
          count = count + 1
        end
      end
    end
    local unsliced = 0
    for dev, sl in pairs(slices) do
      local mine = 's|' .. dev .. '|' .. grant
      -- Only slices still recorded on the node are given back (a replayed release finds none).
      if redis.call('HDEL', key, mine) == 1 then
        local vals = redis.call('HMGET', key, dev, 'u|' .. dev)
        local uk, uc, um = string.match(vals[2] or '', '^(%S+) (%d+) (%d+)$')
        local left_c, left_m = (tonumber(uc) or 0) - sl[1], (tonumber(um) or 0) - sl[2]
        if left_c <= 0 and left_m <= 0 then
          redis.call('HDEL', key, 'u|' .. dev)
          set[#set + 1] = dev
          if vals[1] == '*' then
            set[#set + 1] = ''
            freed = freed + 1
          else
            set[#set + 1] = '!'
          end
          unsliced = unsliced + 1
        else
          set[#set + 1] = 'u|' .. dev
          set[#set + 1] = uk .. ' ' .. left_c .. ' ' .. left_m
        end
        released = released + 1
      end
    end
    if #set > 0 then
      redis.call('HSET', key, unpack(set))
    end
    -- Only while the grant's devices were still recorded (a replayed release finds the record gone).
    if host_c > 0 then
      redis.call('HINCRBY', key, 'cpu_used', -host_c)
    end
    if host_m > 0 then
      redis.call('HINCRBY', key, 'mem_used', -host_m)
    end
    if count > 0 or next(slices) then
      local t = touch(key, node_id)
      t[2], t[3], t[4] = t[2] + count, t[3] + freed, t[4] + unsliced
      released = released + count
    end
  end
  if #held > 0 then
    redis.call('DEL', grant_key)
  end
  redis.call('SREM', holders, grant)
end

-- 3. Counters and one generation step per node written.
local result = {'OK', released}
for _, key in ipairs(order) do
  local t = touched[key]
  if t[2] > 0 then
    redis.call('HINCRBY', key, 'held', -t[2])
  end
  if t[4] > 0 then
    redis.call('HINCRBY', key, 'sliced', -t[4])
  end
  if t[3] > 0 then
    redis.call('HINCRBY', capacity, redis.call('HGET', key, 'sku') .. '|free', t[3])
  end
  result[#result + 1] = t[1]
  result[#result + 1] = redis.call('HINCRBY', key, 'gen', 1)
  redis.call('XADD', log_key, 'MAXLEN', '~', maxlen, redis.call('INCR', rev_key) .. '-0', 'node', t[1])
end
return result
