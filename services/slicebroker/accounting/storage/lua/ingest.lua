--[[ ingest.lua: applies one batch of grant events.

Atomic per batch: Redis runs a script alone, and its writes reach replicas and the AOF as one
MULTI/EXEC block, so neither a concurrent caller nor a crash ever sees half a batch. The caller has
checked every event first, so nothing below can fail half-way on bad input.

KEYS[1]    applied  SET of event ids already ingested
KEYS[2]    usage    HASH "<row>|<metric>" -> integer; metrics: dm (device-ms of closed grants,
                    a slice counting its size), n (closed grants), rn (open grants),
                    rc (size of open grants, in 1/63000ths of a device: see slices.SIZE_DEN),
                    rs (sum of size x start-ms over open grants, in device-ms)
KEYS[3]    rows     SET of row names "<institution>|<project>|<sku>"
KEYS[4]    ledger   STREAM, one entry per closed grant
KEYS[5]    closed   SET of closed billing periods "YYYY-MM"
KEYS[6]    index    ZSET (all scores 0, read by lex range) of ledger lines: one member per closed
                    grant and calendar month (UTC) its lifetime touches, fields joined by "\31":
                    billing period, institution, charge period, start (13-digit ms), grant id,
                    project, sku, count, end, reason, attrs. The billing period is the charge period,
                    or the first period after it that is not closed: a late line moves forward.
KEYS[6+i]  the grant HASH of event i (i = 1..n)

ARGV[i]    event i packed into one string (one argument per event keeps the client's encoding cheap),
           fields joined by the unit separator "\31", none of which may contain it:
             type ("granted" or "ended"), event_id, grant_id, institution, project, sku,
             count (slices), at (epoch ms: start for granted, end for ended),
             extra: for granted, size x at in device-ms (rounded) as a decimal string, computed
                    exactly by the caller; for ended, the end reason
             attrs: the grant's attributes (user, slice kind, …) packed by the caller, kept as is
             size: count x the slice's size in 1/63000ths of a device (63000 per whole device)

Returns {applied, duplicates}: an event is a duplicate when its id was seen before, or when its
grant is already open (granted) or already closed or ended (ended); a duplicate changes nothing.
Numbers that may exceed 1e17 are passed to Redis as "%d" strings: a Lua number would be sent in
"%.17g" form, which turns big integers into exponent notation that HINCRBY refuses.
]]

local applied, usage, rows, ledger, closed, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local fmt, match, floor = string.format, string.match, math.floor
local EVENT = '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)$'
local DAY_MS = 86400000
local SIZE_DEN = 63000

-- Device-ms of `size` (1/63000ths of a device) held for `dur` ms, rounded half up. Whole devices
-- take the plain product; slices split `dur` so that no intermediate passes 2^53 before the result.
local function sized_ms(size, dur)
  if size % SIZE_DEN == 0 then return (size / SIZE_DEN) * dur end
  local q = floor(dur / SIZE_DEN)
  local r = dur - q * SIZE_DEN
  return size * q + floor((size * r + SIZE_DEN / 2) / SIZE_DEN)
end

-- Year and month of a day count since 1970-01-01 (H. Hinnant's civil_from_days).
local function civil(days)
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end

local closed_cache = {}
local function is_closed(period)
  local c = closed_cache[period]
  if c == nil then
    c = redis.call('SISMEMBER', closed, period) == 1
    closed_cache[period] = c
  end
  return c
end

local function next_month(y, m)
  if m == 12 then return y + 1, 1 end
  return y, m + 1
end

-- One index member per month of [start, stop); nothing for an empty lifetime.
local function index_line(gid, inst, proj, sku, count, start, stop, reason, attrs)
  local t0, t1 = tonumber(start), tonumber(stop)
  if t1 <= t0 then return end
  local y, m = civil(floor(t0 / DAY_MS))
  local ye, me = civil(floor((t1 - 1) / DAY_MS))
  local tail = fmt('%013d', t0) .. '\31' .. gid .. '\31' .. proj .. '\31' .. sku .. '\31' .. count .. '\31' ..
    stop .. '\31' .. reason .. '\31' .. attrs
  while y < ye or (y == ye and m <= me) do
    local charge = fmt('%04d-%02d', y, m)
    local by, bm = y, m
    local billing = charge
    while is_closed(billing) do
      by, bm = next_month(by, bm)
      billing = fmt('%04d-%02d', by, bm)
    end
    redis.call('ZADD', index, 0, billing .. '\31' .. inst .. '\31' .. charge .. '\31' .. tail)
    y, m = next_month(y, m)
  end
end

local n_applied, n_dup = 0, 0
-- Small counter deltas are summed per batch and written once per field at the end.
local delta = {}
local new_rows = {}

local function add(field, v)
  delta[field] = (delta[field] or 0) + v
end

-- Closes a grant whose identity and start are already in its hash.
local function close(gk, gid, inst, proj, sku, row, count, size, start, stop, reason, attrs)
  local t0, t1 = tonumber(start), tonumber(stop)
  local dm = 0
  -- An end stamped before the start (skewed clocks) counts zero: usage never goes down.
  if t1 > t0 then dm = sized_ms(tonumber(size), t1 - t0) end
  local dms = fmt('%d', dm)
  redis.call('HSET', gk, 'state', 'closed', 'end', stop, 'reason', reason, 'device_ms', dms)
  redis.call('HINCRBY', usage, row .. '|dm', dms)
  add(row .. '|n', 1)
  redis.call('XADD', ledger, '*', 'grant', gid, 'institution', inst, 'project', proj, 'sku', sku,
    'count', count, 'start', start, 'end', stop, 'device_ms', dms, 'reason', reason)
  index_line(gid, inst, proj, sku, count, start, stop, reason, attrs)
end

for i = 1, #KEYS - 6 do
  local typ, eid, gid, inst, proj, sku, count, at, extra, attrs, size = match(ARGV[i], EVENT)
  if redis.call('SADD', applied, eid) == 0 then
    n_dup = n_dup + 1
  else
    local gk = KEYS[6 + i]
    local row = inst .. '|' .. proj .. '|' .. sku
    local g = redis.call('HMGET', gk, 'state', 'institution', 'project', 'sku', 'row', 'count',
      'start', 'cs', 'end', 'reason', 'attrs', 'size')
    local state = g[1]
    local took = true
    if typ == 'granted' then
      if not state then
        redis.call('HSET', gk, 'state', 'open', 'institution', inst, 'project', proj, 'sku', sku,
          'row', row, 'count', count, 'start', at, 'cs', extra, 'attrs', attrs, 'size', size)
        add(row .. '|rn', 1)
        add(row .. '|rc', tonumber(size))
        redis.call('HINCRBY', usage, row .. '|rs', extra)
        new_rows[row] = true
      elseif state == 'ended_first' then
        -- Its ENDED came first and waits in the hash; the GRANTED's identity is authoritative.
        redis.call('HSET', gk, 'institution', inst, 'project', proj, 'sku', sku, 'row', row,
          'count', count, 'start', at, 'attrs', attrs, 'size', size)
        close(gk, gid, inst, proj, sku, row, count, size, at, g[9], g[10], attrs)
        new_rows[row] = true
      else
        took = false
      end
    else
      if state == 'open' then
        -- Charged to what the grant opened with, whatever identity its end event carries.
        local open_row, open_count, open_size = g[5], g[6], g[12]
        close(gk, gid, g[2], g[3], g[4], open_row, open_count, open_size, g[7], at, extra, g[11] or '')
        add(open_row .. '|rn', -1)
        add(open_row .. '|rc', -tonumber(open_size))
        redis.call('HINCRBY', usage, open_row .. '|rs', '-' .. g[8])
      elseif not state then
        -- Remembered until its GRANTED arrives; only the end and reason are used then.
        redis.call('HSET', gk, 'state', 'ended_first', 'institution', inst, 'project', proj, 'sku', sku,
          'row', row, 'count', count, 'end', at, 'reason', extra)
      else
        took = false
      end
    end
    if took then n_applied = n_applied + 1 else n_dup = n_dup + 1 end
  end
end

for field, d in pairs(delta) do
  if d ~= 0 then redis.call('HINCRBY', usage, field, d) end
end
for row in pairs(new_rows) do
  redis.call('SADD', rows, row)
end
return {n_applied, n_dup}
