--[[ tree.lua — every write of the quota service: the tenant tree, quota entries, budgets, burn and
the two-phase reservations (plus `check`, reserve's dry run). One file with one verb per call
(ARGV[1]) so that the tree arithmetic below exists once; each call is atomic, so a batch of
reservations is checked against the whole tree and applied without any other write in between.

The arithmetic is `slicebroker.quota.domain.tree` kept incrementally (read its docstring first):
per node and class  q (subtree quota), g (guaranteed), s (Σ children q−g), e (entries in subtree),
                    cfg "N,B,L,H" (units; "" = unlimited)
per node and resource  u (subtree usage), k (pool usage)
Fields of the tree hash are "<what>|<node>[|<class or resource>]". Resources "<SKU>#mem" belong
to class "<SKU>". Amounts are integer units (504,000 per device), times are epoch ms.
A user node ("<project>/<user>", under its project) takes part in usage only: its grants' u and k
pass up to the project whole (its g is 0), it has no q, g, s or e, and its entries are hard caps
read by the reserve check alone, so adding or capping a user never changes the project's quota.

KEYS[1]  tree hash (all of the above, plus parent|, kind|, state|, gen|, name|, budget|, burned|, hist|)
KEYS[2]  reservations hash: grant id -> "phase|created|expires|priority|project|sku|count|shape|res=units;…|user|node"
         (node: the user tenant charged, '' = the project; records from before users lack both)
KEYS[3]  expiries zset: grant id -> expiry (ms), reserved phase only
KEYS[4]  lapsed zset: grant id -> when it lapsed (ms)
KEYS[5]  nodes zset: node id (score 0)
KEYS[6]  burn events zset: event id -> when applied (ms)
ARGV[1]  verb; ARGV[2] now (ms); the rest per verb, documented at each verb below.
]]
local T, RES, EXP, LAPSED, NODES, BURNS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local verb, now = ARGV[1], tonumber(ARGV[2])

local function get(f) return redis.call('HGET', T, f) end
local function num(f) return tonumber(redis.call('HGET', T, f)) or 0 end
local function put(f, v)
  if v == 0 or v == '' then redis.call('HDEL', T, f) else redis.call('HSET', T, f, v) end
end
local function f2(what, node) return what .. '|' .. node end
local function f3(what, node, x) return what .. '|' .. node .. '|' .. x end
local function class_of(res) return (string.gsub(res, '#mem$', '')) end
local function pos(x) if x > 0 then return x end return 0 end
local function split(s, sep)
  local out = {}
  for part in string.gmatch(s .. sep, '(.-)' .. sep) do out[#out + 1] = part end
  return out
end

-- cfg: nil when the node has no entry; else N, B, L, H (B, L, H nil = unlimited)
local function cfg(node, cls)
  local c = get(f3('cfg', node, cls))
  if not c then return nil end
  local p = split(c, ',')
  return tonumber(p[1]), tonumber(p[2]), tonumber(p[3]), tonumber(p[4])
end

local function path_of(node)
  local path = {node}
  local parent = get(f2('parent', node))
  while parent and parent ~= '' do
    path[#path + 1] = parent
    parent = get(f2('parent', parent))
  end
  return path
end

-- Pool usage of `node` changed by d: pass the change of its contribution up the tree.
local function add_k(node, res, d)
  while d ~= 0 and node and node ~= '' do
    local kf = f3('k', node, res)
    local k = num(kf)
    put(kf, k + d)
    local g = num(f3('g', node, class_of(res)))
    d = pos(k + d - g) - pos(k - g)
    node = get(f2('parent', node))
  end
end

-- Subtree usage of every node from `node` up changed by d.
local function add_u(node, res, d)
  while node and node ~= '' do
    local uf = f3('u', node, res)
    put(uf, num(uf) + d)
    node = get(f2('parent', node))
  end
end

-- Recompute q and g of `node` for `cls` after its entry or its children changed, and carry the
-- consequences (lent amount, guaranteed part of pool usage) to the ancestors.
local function refresh(node, cls, resources)
  while node and node ~= '' do
    local n, _, l = cfg(node, cls)
    local qf, gf = f3('q', node, cls), f3('g', node, cls)
    local q_old, g_old = num(qf), num(gf)
    local q = (n or 0) + num(f3('s', node, cls))
    local g = 0
    if l then g = pos(q - l) end
    put(qf, q)
    put(gf, g)
    local parent = get(f2('parent', node))
    if parent == '' then parent = nil end
    if parent then
      for _, res in ipairs(resources) do
        local k = num(f3('k', node, res))
        local dc = pos(k - g) - pos(k - g_old)
        if dc ~= 0 then add_k(parent, res, dc) end
      end
      local dlent = (q - g) - (q_old - g_old)
      if dlent == 0 then return end
      local sf = f3('s', parent, cls)
      put(sf, num(sf) + dlent)
    end
    node = parent
  end
end

local function add_e(node, cls, d)
  while node and node ~= '' do
    local ef = f3('e', node, cls)
    put(ef, num(ef) + d)
    node = get(f2('parent', node))
  end
end

-- Units of `res` the first node of `path` may still take, and whose borrowing limit binds.
local function available(path, res, may_borrow)
  local cls = class_of(res)
  local a, binding = 0, ''
  for i = #path, 1, -1 do
    local node = path[i]
    local q, g, k = num(f3('q', node, cls)), num(f3('g', node, cls)), num(f3('k', node, res))
    if i == #path then
      a = q - k
    else
      local n, b = cfg(node, cls)
      local limit = nil
      if n then
        if may_borrow then limit = b else limit = 0 end
      end
      local from_parent = a
      if limit then
        local by_limit = q - g - pos(k - g) + limit
        if by_limit < from_parent then from_parent, binding = by_limit, node end
      end
      a = pos(g - k) + from_parent
    end
  end
  return a, binding
end

-- Whether `units` more of `res` at the first node of `path` leave any node below the root using
-- more than its subtree quota (k > q: it borrows). Exact: a node passes to its parent only what
-- exceeds its guaranteed part, so the change carried up is recomputed at each step.
local function borrows(path, res, units)
  local cls = class_of(res)
  local d = units
  for i = 1, #path - 1 do
    local node = path[i]
    local k, g = num(f3('k', node, res)), num(f3('g', node, cls))
    if k + d > num(f3('q', node, cls)) then return true end
    d = pos(k + d - g) - pos(k - g)
  end
  return false
end

-- Budget left (milli accelerator-hours) and mode of a node's budget, or nil when it has none.
local function budget_left(node)
  local b = get(f2('budget', node))
  if not b then return nil end
  local p = split(b, ',')
  local mode, start, expiry = p[1], tonumber(p[2]), tonumber(p[3])
  local left = 0
  if start <= now and now < expiry then
    left = tonumber(p[4]) + tonumber(p[5]) + tonumber(p[6]) - num(f2('burned', node))
  end
  return left, mode
end

local function parse_record(held)
  local r = split(held, '|')
  local charges = {}
  for _, pair in ipairs(split(r[9], ';')) do
    if pair ~= '' then
      local eq = string.find(pair, '=', 1, true)
      charges[#charges + 1] = {string.sub(pair, 1, eq - 1), tonumber(string.sub(pair, eq + 1))}
    end
  end
  local node = r[11]
  if not node or node == '' then node = r[5] end
  return {phase = r[1], created = r[2], expires = tonumber(r[3]), priority = r[4], project = r[5],
          sku = r[6], count = tonumber(r[7]), shape = r[8], charges = charges, charges_text = r[9],
          user = r[10] or '', node = node}
end

local function apply(node, charges, sign)
  for _, c in ipairs(charges) do
    add_u(node, c[1], sign * c[2])
    add_k(node, c[1], sign * c[2])
  end
end

-- Returns what a reservation held to the node it charged and forgets it; `lapsed_at` marks a lapse.
local function release(grant, rec, lapsed_at)
  apply(rec.node, rec.charges, -1)
  redis.call('HDEL', RES, grant)
  redis.call('ZREM', EXP, grant)
  if lapsed_at then redis.call('ZADD', LAPSED, lapsed_at, grant) end
end

local function institution_of(path)
  for _, node in ipairs(path) do
    if get(f2('kind', node)) == 'institution' then return node end
  end
  return ''
end

-- One item of a reserve or check call, read from ARGV[a] on; the item and where the next starts.
local function read_item(a)
  local n = tonumber(ARGV[a + 9])
  local item = {grant = ARGV[a], project = ARGV[a + 1], sku = ARGV[a + 2], count = tonumber(ARGV[a + 3]),
                shape = ARGV[a + 4], priority = ARGV[a + 5], ttl = tonumber(ARGV[a + 6]), user = ARGV[a + 7],
                user_node = ARGV[a + 8], charges = {}}
  for j = 1, n do item.charges[j] = {ARGV[a + 8 + 2 * j], tonumber(ARGV[a + 9 + 2 * j])} end
  return item, a + 10 + 2 * n
end

-- What quota says to `item` on the tree as it is now: reserve's answer (see `reserve`), and the
-- node its charges start at (when OK). Reads only, so `check` can answer without writing.
local function evaluate(item)
  local project, sku, priority, user_node = item.project, item.sku, item.priority, item.user_node
  if get(f2('kind', project)) ~= 'project' then return {'PROJECT_NOT_FOUND'} end
  local start = project
  if user_node ~= '' and get(f2('kind', user_node)) == 'user' and get(f2('parent', user_node)) == project then
    start = user_node
  end
  -- `path` from the charged node up; `qpath` from the project up (where quota lives).
  local path = path_of(start)
  local qpath = path
  if start ~= project then qpath = path_of(project) end
  for _, node in ipairs(path) do
    local state = get(f2('state', node)) or 'active'
    if state ~= 'active' then return {'NOT_ACTIVE', node, state} end
  end
  local may_borrow = priority ~= 'guaranteed'
  local root = path[#path]
  local borrowing = false
  for _, c in ipairs(item.charges) do
    local res, units = c[1], c[2]
    local cls = class_of(res)
    -- A user's cap binds whether or not anyone in the tree has quota for the class.
    local user_cap = nil
    if start ~= project then user_cap = select(4, cfg(start, cls)) end
    if user_cap and units > user_cap - num(f3('u', start, res)) then
      local used = num(f3('u', start, res))
      return {'QUOTA_EXCEEDED', 'hard_cap', start, res, units, pos(user_cap - used), used}
    end
    if num(f3('e', root, cls)) == 0 then
      if cls == sku then return {'QUOTA_EXCEEDED', 'no_quota', project, res, units, 0, 0} end
    else
      for _, node in ipairs(path) do
        local _, _, _, h = cfg(node, cls)
        if h then
          local left = h - num(f3('u', node, res))
          if units > left then
            return {'QUOTA_EXCEEDED', 'hard_cap', node, res, units, pos(left), num(f3('u', node, res))}
          end
        end
      end
      local left, binding = available(qpath, res, may_borrow)
      if units > left then
        local limit, node, reclaim = 'borrowing_limit', binding, 0
        if binding == '' then
          limit, node = 'nominal', root
          -- Within its own quota all along its path: the pool is short only because others
          -- borrow; they may be preempted for it (preemptible requests never reclaim).
          if priority ~= 'preemptible' and not borrows(qpath, res, units) then reclaim = 1 end
        end
        return {'QUOTA_EXCEEDED', limit, node, res, units, pos(left), num(f3('u', node, res)), reclaim}
      end
      if borrows(qpath, res, units) then borrowing = true end
    end
  end
  local warnings = {}
  for _, node in ipairs(path) do
    local left, mode = budget_left(node)
    if left and left <= 0 then
      if mode == 'hard' then return {'BUDGET_EXHAUSTED', node, left} end
      warnings[#warnings + 1] = node .. ':' .. left
    end
  end
  local preemptible = priority == 'preemptible' or (priority == 'standard' and borrowing)
  return {'OK', institution_of(path), preemptible and 1 or 0, table.concat(warnings, ',')}, start
end

--[[ reserve — ARGV[3..]: per item grant, project, sku, count, shape, priority, ttl (ms), user ('' none),
user node ('' none), n, then n pairs resource, units. When the user node exists (a user of this
project) the charges start there: its state and hard caps bind too. Returns per item one of
  {"OK", institution, preemptible 0|1, soft budget warnings "node:left,…"} | {"PROJECT_NOT_FOUND"}
  | {"NOT_ACTIVE", node, state} | {"MISMATCH", project, sku, count, shape}
  | {"QUOTA_EXCEEDED", limit, node, resource, requested, available, node's subtree usage, reclaimable 0|1}
  | {"BUDGET_EXHAUSTED", node, left}
A grant id already holding the same request is OK again and changes nothing. Items are applied in
order, so each is checked against the tree with the items before it held. ]]
local function reserve()
  local results = {}
  local a = 3
  while a <= #ARGV do
    local item
    item, a = read_item(a)
    local grant = item.grant
    local result
    local held = redis.call('HGET', RES, grant)
    if held then
      local rec = parse_record(held)
      if rec.phase == 'R' and rec.expires <= now then
        release(grant, rec, rec.expires)
        held = nil
      elseif rec.project == item.project and rec.sku == item.sku and rec.count == item.count
          and rec.shape == item.shape then
        local path = path_of(item.project)
        result = {'OK', institution_of(path), rec.priority == 'P' and 1 or 0, ''}
      else
        result = {'MISMATCH', rec.project, rec.sku, rec.count, rec.shape}
      end
    end
    if not held then
      local start
      result, start = evaluate(item)
      if result[1] == 'OK' then
        apply(start, item.charges, 1)
        local pairs_text = {}
        for j, c in ipairs(item.charges) do pairs_text[j] = c[1] .. '=' .. c[2] end
        local code = result[3] == 1 and 'P' or 'N'
        local expires = now + item.ttl
        local charged = ''
        if start ~= item.project then charged = start end
        redis.call('HSET', RES, grant, table.concat({'R', now, expires, code, item.project, item.sku, item.count,
          item.shape, table.concat(pairs_text, ';'), item.user, charged}, '|'))
        redis.call('ZADD', EXP, expires, grant)
        redis.call('ZREM', LAPSED, grant)
      end
    end
    results[#results + 1] = result
  end
  return results
end

--[[ check — ARGV[3..] items as `reserve` reads them. Per item the answer `reserve` would give it
now, each against the tree as it is (the items do not add up); writes nothing. The grant id is
ignored, so a held reservation neither answers for it nor is released when lapsed (until swept it
still counts, as it does for `reserve` before its sweep), and MISMATCH never comes back. ]]
local function check()
  local results = {}
  local a = 3
  while a <= #ARGV do
    local item
    item, a = read_item(a)
    results[#results + 1] = (evaluate(item))
  end
  return results
end

-- commit — ARGV[3..] grant ids. Per id "OK" | "NOT_FOUND" | "EXPIRED" (released now or by the sweep).
local function commit()
  local results = {}
  for i = 3, #ARGV do
    local grant = ARGV[i]
    local held = redis.call('HGET', RES, grant)
    if not held then
      results[#results + 1] = redis.call('ZSCORE', LAPSED, grant) and 'EXPIRED' or 'NOT_FOUND'
    else
      local rec = parse_record(held)
      if rec.phase == 'C' then
        results[#results + 1] = 'OK'
      elseif rec.expires <= now then
        release(grant, rec, rec.expires)
        results[#results + 1] = 'EXPIRED'
      else
        redis.call('HSET', RES, grant, 'C|' .. string.sub(held, 3))
        redis.call('ZREM', EXP, grant)
        results[#results + 1] = 'OK'
      end
    end
  end
  return results
end

-- cancel — ARGV[3..] grant ids, either phase. Per id the slices returned (0: it held nothing).
local function cancel()
  local results = {}
  for i = 3, #ARGV do
    local grant = ARGV[i]
    local held = redis.call('HGET', RES, grant)
    local returned = 0
    if held then
      local rec = parse_record(held)
      release(grant, rec, nil)
      returned = rec.count
    end
    -- A cancelled grant id is no longer "lapsed": a later Commit finds nothing at all.
    redis.call('ZREM', LAPSED, grant)
    results[#results + 1] = returned
  end
  return results
end

-- sweep — ARGV[3] most to release, ARGV[4] lapsed-mark retention (ms). Returns released grant ids.
local function sweep()
  local released = {}
  local due = redis.call('ZRANGEBYSCORE', EXP, '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
  for i = 1, #due, 2 do
    local grant, expires = due[i], due[i + 1]
    local held = redis.call('HGET', RES, grant)
    if held and string.sub(held, 1, 1) == 'R' then
      release(grant, parse_record(held), expires)
      released[#released + 1] = grant
    end
    redis.call('ZREM', EXP, grant)
  end
  redis.call('ZREMRANGEBYSCORE', LAPSED, '-inf', now - tonumber(ARGV[4]))
  return released
end

-- Applies entries given from ARGV[a] on (per entry: class, "N,B,L,H" or '' to remove, number
-- of resources r, r resources of the class); whether any changed.
local function apply_entries(node, a)
  local changed = false
  -- A user's entries are hard caps only: they join no quota arithmetic (see the header).
  local user = get(f2('kind', node)) == 'user'
  while a <= #ARGV do
    local cls, value, r = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
    local resources = {}
    for j = 1, r do resources[j] = ARGV[a + 2 + j] end
    a = a + 3 + r
    local cf = f3('cfg', node, cls)
    local old = get(cf) or ''
    if old ~= value then
      changed = true
      put(cf, value)
      if not user then
        if old == '' then add_e(node, cls, 1) elseif value == '' then add_e(node, cls, -1) end
        refresh(node, cls, resources)
      end
    end
  end
  return changed
end

local function bump(node, changed)
  if not changed then return {'OK', num(f2('gen', node))} end
  return {'OK', redis.call('HINCRBY', T, f2('gen', node), 1)}
end

local function check_generation(node, expected)
  local gen = num(f2('gen', node))
  if expected >= 0 and expected ~= gen then return gen end
  return nil
end

--[[ upsert_node — ARGV[3] id, [4] kind, [5] parent ('' none, '*' keep as it is), [6] state ('*'
keep), [7] display name, [8] fair-share weight, [9] expected generation (-1: any), [10] number of
classes m, then m classes, then the number of resources r and r resources (all of them: a moved
node carries its whole subtree's quota and usage), then optionally entries as `apply_entries`
reads them, applied in the same step. Returns {"OK", generation} | {"CONFLICT", generation}
| {"KIND_MISMATCH", kind} | {"PARENT_NOT_FOUND"} | {"BAD_PARENT", kind} | {"CYCLE"}; the generation
grows (once) only when something changed. ]]
local PARENT_KINDS = {cohort = {cohort = true, [''] = true}, institution = {cohort = true, [''] = true},
                      project = {institution = true}, user = {project = true}}
local function upsert_node()
  local id, kind, parent, state, name, weight = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
  local expected, m = tonumber(ARGV[9]), tonumber(ARGV[10])
  local classes, resources = {}, {}
  for i = 1, m do classes[i] = ARGV[10 + i] end
  local r = tonumber(ARGV[11 + m])
  for i = 1, r do resources[i] = ARGV[11 + m + i] end
  local entries_at = 12 + m + r
  local gen = check_generation(id, expected)
  if gen then return {'CONFLICT', gen} end
  local old_kind = get(f2('kind', id))
  if old_kind and old_kind ~= kind then return {'KIND_MISMATCH', old_kind} end
  if parent == '*' then parent = get(f2('parent', id)) or '' end
  if state == '*' then state = get(f2('state', id)) or 'active' end
  local parent_kind = ''
  if parent ~= '' then
    parent_kind = get(f2('kind', parent))
    if not parent_kind then return {'PARENT_NOT_FOUND'} end
  end
  if not PARENT_KINDS[kind][parent_kind] then return {'BAD_PARENT', parent_kind} end
  for _, ancestor in ipairs(parent ~= '' and path_of(parent) or {}) do
    if ancestor == id then return {'CYCLE'} end
  end
  local old_parent = get(f2('parent', id))
  if old_kind and old_parent == parent and (get(f2('state', id)) or 'active') == state
      and (get(f2('name', id)) or '') == name and (get(f2('weight', id)) or '1') == weight then
    return bump(id, apply_entries(id, entries_at))
  end
  if old_kind and old_parent ~= parent then
    -- Take the subtree's contributions off the old ancestors, then put them on the new ones.
    local function move(to, sign)
      for _, cls in ipairs(classes) do
        local e = num(f3('e', id, cls))
        if e ~= 0 and to ~= '' then
          add_e(to, cls, sign * e)
          local lent = num(f3('q', id, cls)) - num(f3('g', id, cls))
          local sf = f3('s', to, cls)
          put(sf, num(sf) + sign * lent)
        end
      end
      for _, res in ipairs(resources) do
        local u = num(f3('u', id, res))
        if u ~= 0 and to ~= '' then
          add_u(to, res, sign * u)
          add_k(to, res, sign * pos(num(f3('k', id, res)) - num(f3('g', id, class_of(res)))))
        end
      end
      -- s of `to` changed: let q and g follow up the tree.
      for _, cls in ipairs(classes) do
        if to ~= '' and num(f3('e', id, cls)) ~= 0 then
          local res_of = {}
          for _, res in ipairs(resources) do if class_of(res) == cls then res_of[#res_of + 1] = res end end
          refresh(to, cls, res_of)
        end
      end
    end
    move(old_parent, -1)
    redis.call('HSET', T, f2('parent', id), parent)
    move(parent, 1)
  end
  redis.call('HSET', T, f2('kind', id), kind, f2('parent', id), parent, f2('state', id), state)
  put(f2('name', id), name)
  redis.call('HSET', T, f2('weight', id), weight)
  redis.call('ZADD', NODES, 0, id)
  apply_entries(id, entries_at)
  return bump(id, true)
end

--[[ set_entries — ARGV[3] node, [4] expected generation (-1: any), then entries as `apply_entries`
reads them. Returns {"OK", generation} | {"CONFLICT", generation} | {"NOT_FOUND"}. ]]
local function set_entries()
  local node, expected = ARGV[3], tonumber(ARGV[4])
  if not get(f2('kind', node)) then return {'NOT_FOUND'} end
  local gen = check_generation(node, expected)
  if gen then return {'CONFLICT', gen} end
  return bump(node, apply_entries(node, 5))
end

--[[ set_budget — ARGV[3] node, [4] expected generation (-1: any), [5] "mode,start,expiry,award,
carry,topups" (milli-hours) or '' to remove, [6] '1' to restart the burn count (a new period).
Returns {"OK", generation} | {"CONFLICT", generation} | {"NOT_FOUND"}. ]]
local function set_budget()
  local node, expected = ARGV[3], tonumber(ARGV[4])
  if not get(f2('kind', node)) then return {'NOT_FOUND'} end
  local gen = check_generation(node, expected)
  if gen then return {'CONFLICT', gen} end
  if (get(f2('budget', node)) or '') == ARGV[5] and ARGV[6] ~= '1' then return {'OK', num(f2('gen', node))} end
  put(f2('budget', node), ARGV[5])
  if ARGV[6] == '1' then redis.call('HDEL', T, f2('burned', node)) end
  return {'OK', redis.call('HINCRBY', T, f2('gen', node), 1)}
end

--[[ roll_budget — ARGV[3] node, [4] the budget text the roll-over was computed from, [5] the burn
(mh) it was computed from, [6] the next period's budget text. Starts the next period (burn back to
0, generation +1) only if the node still has exactly that budget and burn: a burn or an edit that
came in between, or a replica that rolled it first, makes this {"STALE"} and changes nothing, so
the roll-over is idempotent. Returns {"OK", generation} | {"STALE"} | {"NOT_FOUND"}. ]]
local function roll_budget()
  local node = ARGV[3]
  if not get(f2('kind', node)) then return {'NOT_FOUND'} end
  if (get(f2('budget', node)) or '') ~= ARGV[4] or num(f2('burned', node)) ~= tonumber(ARGV[5]) then
    return {'STALE'}
  end
  redis.call('HSET', T, f2('budget', node), ARGV[6])
  redis.call('HDEL', T, f2('burned', node))
  return {'OK', redis.call('HINCRBY', T, f2('gen', node), 1)}
end

--[[ burn — ARGV[3] event retention (ms), [4] fair-share half-life (ms), then triples event id,
project, milli accelerator-hours. Adds the burn to the project and its ancestors' budgets and
decayed history. Per event 1 (applied), 0 (seen before), -1 (no such project). ]]
local function burn()
  local retention, half_life = tonumber(ARGV[3]), tonumber(ARGV[4])
  local results = {}
  for a = 5, #ARGV, 3 do
    local event, project, amount = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
    if redis.call('ZSCORE', BURNS, event) then
      results[#results + 1] = 0
    elseif get(f2('kind', project)) ~= 'project' then
      results[#results + 1] = -1
    else
      redis.call('ZADD', BURNS, now, event)
      for _, node in ipairs(path_of(project)) do
        redis.call('HINCRBY', T, f2('burned', node), amount)
        local h = get(f2('hist', node))
        local value = 0
        if h then
          local p = split(h, ',')
          value = tonumber(p[1]) * math.pow(0.5, (now - tonumber(p[2])) / half_life)
        end
        redis.call('HSET', T, f2('hist', node), string.format('%.17g,%d', value + amount, now))
      end
      results[#results + 1] = 1
    end
  end
  redis.call('ZREMRANGEBYSCORE', BURNS, '-inf', now - retention)
  return results
end

local VERBS = {reserve = reserve, check = check, commit = commit, cancel = cancel, sweep = sweep, upsert_node = upsert_node,
               set_entries = set_entries, set_budget = set_budget, burn = burn, roll_budget = roll_budget}
return VERBS[verb]()
