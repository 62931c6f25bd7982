-- Decide reservations in order, each as if alone. ARGV[2] now, ARGV[3] largest quantity, ARGV[4]
-- every request, one after another, each "item|qty|routing hash|new hold id|#request id|" ..
-- reqfield(user, request id): one argument for the whole batch, so the client encodes little; the
-- lengths in bytes split off the user and the request id, which may hold any byte. The client draws
-- a random hold id for every request (Lua has no secure randomness, and an id made from a counter
-- here would tell buyers how many orders came before theirs); a refusal leaves its id unused.
-- ARGV[5] the floors of the batch's items, "item|floor|" each: an item whose seq is below its floor
-- lost acknowledged writes, and every fresh request of it is refused with LEDGER_BEHIND. ARGV[6]
-- '1' when the caller checked the store for every key (see the contract's reserve_many): else an
-- unknown key of a user marked in RETIRED is answered REQUEST_FORGOTTEN. ARGV[7] '1' when the items
-- are spread over slot groups (see flashsale.ledger.redis): this book is one bucket of its item, so a
-- shortage is not the item's to judge; the request answers 'DEFER' (nothing written), and so does
-- every later request of the item in this call, keeping the item's requests in order; the client
-- moves units here and asks again. Then the reply has a fourth element: {item, avail, ...}.
-- Due holds are expired first; if some are left, nothing is decided and the reply is {'again'}.
-- Otherwise the reply is {decisions, prior hold ids, {item, seq, ...} of the items that granted}: one string with a decision per request,
-- joined by ',' (the client splits it at once): '+' .. expires for a grant, '=' ..
-- 'state|created|expires' for a replay, or the refusal's code; then the hold id of each replay, in
-- order (a hold id may hold any byte).
-- The cost is per command, not per key: the request keys and the users' units are read with one
-- HMGET each, and the records of the granted holds, their request keys and deadlines (with one
-- command each) and every item's counters and hold ids are written after every decision (the batch
-- finds its own grants in `fresh`).
local now_s, max_qty = ARGV[2], tonumber(ARGV[3])
local now = tonumber(now_s)
local deferring = ARGV[7] == '1'
local floors = {}
for item, floor in string.gmatch(ARGV[5], '([^|]*)|([^|]*)|') do floors[item] = tonumber(floor) end
local REQUEST_PATTERN = '^([^|]*)|([^|]*)|(%d+)|([^|]*)|(%d+)|()(%d+)|()'

-- One item's terms and counters, and the units of the users it will see, read in one command and
-- written back once; false for an unknown item, {paused = true} for a paused one (known or not),
-- {behind = true} for one whose seq is below the caller's floor. Every grant of one call shares its deadline and
-- the strings made from it.
local function load_book(item, users)
  if pause_of(item, now) then return {paused = true, ids = {}} end
  local t = redis.call('HMGET', ikey(item, 'book'), 'limit', 'opens', 'closes', 'ttl', 'buckets', 'avail', 'held',
    'seq', 'part', unpack(users.fields))
  if not t[1] then return false end
  local seq = tonumber(t[8]) or 0
  if seq < (floors[item] or 0) then return {behind = true, ids = {}} end
  local expires = num(now + tonumber(t[4]))
  local book = {
    limit = tonumber(t[1]), opens = tonumber(t[2]), closes = tonumber(t[3]), nb = tonumber(t[5]),
    avail = {[0] = tonumber(t[6])}, held = tonumber(t[7]), seq = seq, used = {}, used_changed = {}, ids = {},
    part = tonumber(t[9]) or 0,
    expires = expires, granted = '+' .. expires, since = '|' .. now_s .. '|' .. expires .. '|held|',
  }
  for j, user in ipairs(users) do book.used[user] = tonumber(t[9 + j]) or 0 end
  return book
end

local function avail_of(book, item, k)
  if book.avail[k] == nil then book.avail[k] = avail_get(item, k) end
  return book.avail[k]
end

-- A dry bucket: spread every bucket's units evenly again, then top up bucket `b` to `need`.
local function rebalance(book, item, b, need, total)
  local parts = spread(total, book.nb, b)
  for k = 0, book.nb - 1 do
    if parts[b] >= need then break end
    if k ~= b then
      local moved = math.min(parts[k], need - parts[b])
      parts[k], parts[b] = parts[k] - moved, parts[b] + moved
    end
  end
  for k = 0, book.nb - 1 do book.avail[k] = parts[k] end
end

-- The same order of checks as flashsale.domain.sale.check_hold_request (quantity, window, limit,
-- stock); returns a code, or nil and the bucket. The limit comes before any stock read, so a user
-- over it hears LIMIT_EXCEEDED even on a sold-out item.
local function check(book, item, user, qty, route)
  if not qty or qty < 1 or qty > max_qty or qty % 1 ~= 0 then return 'INVALID_QUANTITY' end
  if not (book.opens <= now and now < book.closes) then return 'SESSION_NOT_OPEN' end
  if book.used[user] + qty > book.limit then return 'LIMIT_EXCEEDED' end
  local b = route % book.nb
  if avail_of(book, item, b) >= qty then return nil, b end  -- the usual case: the own bucket covers it
  local total = 0
  for k = 0, book.nb - 1 do total = total + avail_of(book, item, k) end
  if total <= 0 then return 'SOLD_OUT' end
  if qty > total then return 'INSUFFICIENT_STOCK' end
  rebalance(book, item, b, qty, total)
  return nil, b
end

-- This call's grants: request key -> hold id, hold id -> packed hold, and the fields to write.
local fresh, packed_of, hold_fields, req_fields, due = {}, {}, {}, {}, {}

local function grant(book, item, user, qty_s, req, hold, b, key)
  local qty = tonumber(qty_s)
  book.avail[b] = book.avail[b] - qty
  book.held = book.held + qty
  book.used[user] = book.used[user] + qty
  book.used_changed[user] = true
  book.seq = book.seq + 1
  due[#due + 1] = book.expires
  due[#due + 1] = hold
  book.ids[#book.ids + 1] = hold
  local packed = item .. '|' .. qty_s .. book.since .. b .. '|' .. key  -- as pack_hold does
  fresh[key], packed_of[hold] = hold, packed
  hold_fields[#hold_fields + 1] = hold
  hold_fields[#hold_fields + 1] = packed
  req_fields[#req_fields + 1] = key
  req_fields[#req_fields + 1] = hold
  -- Every entry carries its book's sequence for the order writers' marks; bucket j > 0 of a spread
  -- item is a book of its own (see flashsale.ledger.redis_spread), named by `part`.
  if book.part == 0 then
    redis.call('XADD', STREAM, '*', 'hold_id', hold, 'item_id', item, 'user_id', user, 'qty', qty_s,
      'request_id', req, 'created_at', now_s, 'expires_at', book.expires, 'seq', book.seq)
  else
    redis.call('XADD', STREAM, '*', 'hold_id', hold, 'item_id', item, 'user_id', user, 'qty', qty_s,
      'request_id', req, 'created_at', now_s, 'expires_at', book.expires, 'seq', book.seq, 'part', book.part)
  end
  return book.granted
end

local priors = {}
local function replay(prior, item, qty)
  local packed = packed_of[prior] or redis.call('HGET', HOLDS, prior)
  if not packed then return 'IDEMPOTENCY_MISMATCH' end
  local rec = unpack_hold(prior, packed)
  if rec[2] ~= item or tonumber(rec[4]) ~= qty then return 'IDEMPOTENCY_MISMATCH' end
  priors[#priors + 1] = prior
  return '=' .. rec[8] .. '|' .. rec[6] .. '|' .. rec[7]
end

local function write_back(item, book)
  local fields = {'avail', book.avail[0], 'held', book.held, 'seq', book.seq}
  for user in pairs(book.used_changed) do
    fields[#fields + 1] = ufield(user)
    fields[#fields + 1] = book.used[user]
  end
  redis.call('HSET', ikey(item, 'book'), unpack(fields))
  for k, units in pairs(book.avail) do
    if k > 0 then redis.call('SET', bkey(item, k), units) end
  end
  local index = {}
  for j, hold in ipairs(book.ids) do
    index[2 * j - 1], index[2 * j] = now_s, hold
  end
  redis.call('ZADD', ikey(item, 'holds'), unpack(index))
end

-- Read every request, and the items and users they name, in order of first appearance.
local requests, keys, items, users_of, blob, at = {}, {}, {}, {}, ARGV[4], 1
while at <= #blob do
  local item, qty_s, route, hold, req_len, key_at, user_len, user_at = string.match(blob, REQUEST_PATTERN, at)
  local req_at = user_at + tonumber(user_len)
  at = req_at + tonumber(req_len)
  local user, key = string.sub(blob, user_at, req_at - 1), string.sub(blob, key_at, at - 1)
  requests[#requests + 1] = {item, qty_s, tonumber(route), hold, user, string.sub(blob, req_at, at - 1), key}
  keys[#keys + 1] = key
  local users = users_of[item]
  if not users then
    users = {fields = {}}
    items[#items + 1], users_of[item] = item, users
  end
  users[#users + 1] = user
  users.fields[#users] = ufield(user)
end

if not sweep(now_s) then return {'again'} end
local books = {}
for _, item in ipairs(items) do books[item] = load_book(item, users_of[item]) end
local known = redis.call('HMGET', REQS, unpack(keys))
-- Users with a key this ledger does not know, asked whether retention forgot some of their keys.
local retired = {}
if ARGV[6] ~= '1' then
  local asked, seen = {}, {}
  for j, r in ipairs(requests) do
    if not known[j] and not seen[r[5]] then
      seen[r[5]] = true
      asked[#asked + 1] = r[5]
    end
  end
  if #asked > 0 then
    for j, mark in ipairs(redis.call('HMGET', RETIRED, unpack(asked))) do
      if mark then retired[asked[j]] = true end
    end
  end
end

local out = {}
for j, r in ipairs(requests) do
  local item, qty_s, route, hold, user, req, key = unpack(r)
  local qty = tonumber(qty_s)
  local prior = fresh[key] or known[j]
  local book = books[item]
  if prior then
    out[j] = replay(prior, item, qty)
  elseif retired[user] then
    out[j] = 'REQUEST_FORGOTTEN'
  elseif not book then
    out[j] = 'UNKNOWN_ITEM'
  elseif book.paused then
    out[j] = 'SALE_PAUSED'
  elseif book.behind then
    out[j] = 'LEDGER_BEHIND'
  elseif book.deferred then
    out[j] = 'DEFER'
  else
    local code, b = check(book, item, user, qty, route)
    if deferring and (code == 'SOLD_OUT' or code == 'INSUFFICIENT_STOCK') then
      book.deferred, code = true, 'DEFER'
    end
    out[j] = code or grant(book, item, user, qty_s, req, hold, b, key)
  end
end

local reached = {}
if #hold_fields > 0 then
  redis.call('HSET', HOLDS, unpack(hold_fields))
  redis.call('HSET', REQS, unpack(req_fields))
  redis.call('ZADD', DUE, unpack(due))
  for item, book in pairs(books) do
    if book and #book.ids > 0 then
      write_back(item, book)
      reached[#reached + 1] = item
      reached[#reached + 1] = book.seq
    end
  end
end
if not deferring then return {table.concat(out, ','), priors, reached} end
local left = {}
for item, book in pairs(books) do
  if book and book.avail then
    left[#left + 1] = item
    left[#left + 1] = book.avail[0]
  end
end
return {table.concat(out, ','), priors, reached, left}
