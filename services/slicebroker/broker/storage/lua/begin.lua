-- Records a new pending grant, unless its idempotency key already names one.
-- KEYS[1] grant hash   KEYS[2] idempotency key ("" if none: then KEYS[2] is a throwaway key)
-- KEYS[3] all-grants index   KEYS[4] project index   KEYS[5] pending set
-- ARGV[1] grant id   ARGV[2] has idempotency key ("1"/"0")   ARGV[3] created ms
-- ARGV[4..] field/value pairs of the grant hash
-- Returns: "" when recorded, else the id of the grant already recorded under the key.
if ARGV[2] == "1" then
  local existing = redis.call("GET", KEYS[2])
  if existing then
    return existing
  end
  redis.call("SET", KEYS[2], ARGV[1])
end
local fields = {}
for i = 4, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call("HSET", KEYS[1], unpack(fields))
redis.call("ZADD", KEYS[3], 0, ARGV[1])
redis.call("ZADD", KEYS[4], 0, ARGV[1])
redis.call("ZADD", KEYS[5], ARGV[3], ARGV[1])
return ""
