--[[ publish_book.lua: stores a price book as the next version, compare-and-increment.

KEYS[1]  books  HASH version (decimal) -> the book as JSON; its length is the latest version
ARGV[1]  expected latest version (0: none published yet)
ARGV[2]  the book, JSON

Returns the new version, or -1 when the latest version is not ARGV[1] (someone published first).
]]
local n = redis.call('HLEN', KEYS[1])
if n ~= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], tostring(n + 1), ARGV[2])
return n + 1
