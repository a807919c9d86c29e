-- release.lua: frees every device held by each of a batch of grants. Idempotent: a grant that
-- holds nothing (unknown, or released before) is a no-op.
--
-- KEYS[1]      grant ids holding devices (set)
-- KEYS[2]      capacity counters (hash "<sku>|free", ...)
-- then per grant: the grant's hash (node id -> "gpu0 gpu3"), then the hash of each node the
--              caller found in it
-- ARGV[1]      number of grants
-- then per grant: grant id, node count, the node ids (in the order of their KEYS)
-- Returns {"STALE"} when a grant now holds devices on a node the caller did not pass (it claimed
--         more after the caller read it): nothing was written; read again and call again.
--         Else {"OK", devices released, node id, generation, node id, generation, ...} with the
--         new generation of every node written (incremented once per call however many grants
--         held devices on it).

local holders, capacity = KEYS[1], KEYS[2]
local k, a = 3, 2

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
local released = 0
local touched, order = {}, {}
for g = 1, #plans do
  local grant, grant_key, key_of, held = plans[g][1], plans[g][2], plans[g][3], plans[g][4]
  local held_unhealthy = '!' .. grant
  for j = 1, #held, 2 do
    local node_id, key = held[j], key_of[held[j]]
    local names = {}
    for name in string.gmatch(held[j + 1], '%S+') do
      names[#names + 1] = name
    end
    local vals = redis.call('HMGET', key, unpack(names))
    local set, freed, count = {}, 0, 0
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
    if count > 0 then
      redis.call('HSET', key, unpack(set))
      local t = touched[key]
      if not t then
        t = {node_id, 0, 0}
        touched[key] = t
        order[#order + 1] = key
      end
      t[2], t[3] = t[2] + count, t[3] + freed
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
  redis.call('HINCRBY', key, 'held', -t[2])
  if t[3] > 0 then
    redis.call('HINCRBY', capacity, redis.call('HGET', key, 'sku') .. '|free', t[3])
  end
  result[#result + 1] = t[1]
  result[#result + 1] = redis.call('HINCRBY', key, 'gen', 1)
end
return result
