--[[ upsert_project.lua — creates or changes a project, compare-and-increment: the generation grows
only when a field changed, so re-applying the same object is a no-op. Devices in use are not
touched; a cap lowered below them refuses new reservations but takes nothing back.

KEYS[1]  the project hash (fields institution, display_name, generation, cap:<sku>)
KEYS[2]  projects zset (score 0, so ids list in name order)
KEYS[3]  the hash of the institution the project belongs to (must exist)
ARGV[1]  project id
ARGV[2]  institution id
ARGV[3]  display name ('' for none)
ARGV[4..] pairs, one per known SKU: cap field, cap in devices ('' = no cap field, i.e. a cap of 0)

Returns the project's generation after the call, or -1 if the institution does not exist
(then nothing is written).
]]
if redis.call('EXISTS', KEYS[3]) == 0 then
  return -1
end
local fields, wanted = {'institution', 'display_name'}, {ARGV[2], ARGV[3]}
for a = 4, #ARGV, 2 do
  fields[#fields + 1] = ARGV[a]
  wanted[#wanted + 1] = ARGV[a + 1]
end
local current = redis.call('HMGET', KEYS[1], 'generation', unpack(fields))
local changed = not current[1]
for i = 1, #fields do
  if (current[i + 1] or '') ~= wanted[i] then
    changed = true
  end
end
if not changed then
  return tonumber(current[1])
end
for i = 1, #fields do
  if wanted[i] == '' then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    redis.call('HSET', KEYS[1], fields[i], wanted[i])
  end
end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'generation', 1)
