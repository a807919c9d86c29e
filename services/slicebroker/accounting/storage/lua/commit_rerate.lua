--[[ commit_rerate.lua: bills a closed period's re-rating differences in the next open period.

Atomic: the check of the version the period is rated with, the adjustment lines and the new version
are one step, so two concurrent re-ratings cannot both bill the same difference.

KEYS[1]  rated_with   HASH period "YYYY-MM" -> book version it is rated with
KEYS[2]  closed       SET of closed periods
KEYS[3]  adjustments  ZSET (scores 0, lex order) of adjustment lines "<billing period>\31<line>"
ARGV[1]  the re-rated period "YYYY-MM"
ARGV[2]  the version it must be rated with now
ARGV[3]  the version it is rated with after
ARGV[4..] adjustment lines without their billing period (institution first)

Returns the billing period the lines went to, or an error reply "CONFLICT" when ARGV[2] is stale.
]]
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current ~= ARGV[2] then return redis.error_reply('CONFLICT') end
local y, m = tonumber(string.sub(ARGV[1], 1, 4)), tonumber(string.sub(ARGV[1], 6, 7))
local billing = ARGV[1]
while redis.call('SISMEMBER', KEYS[2], billing) == 1 do
  if m == 12 then y, m = y + 1, 1 else m = m + 1 end
  billing = string.format('%04d-%02d', y, m)
end
for i = 4, #ARGV do
  redis.call('ZADD', KEYS[3], 0, billing .. '\31' .. ARGV[i])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return billing
