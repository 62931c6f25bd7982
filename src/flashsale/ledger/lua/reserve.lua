-- Decide reservations in order, each as if alone. ARGV[2] now, ARGV[3] largest quantity, then one
-- string per request, "item|qty|routing hash|new hold id|#user|" .. user .. request id (one
-- argument instead of six: the client encodes far less). Every item named is swept
-- first; if one still has due holds, nothing is decided and the reply is {'again'}. Otherwise one
-- string per request (flat, so the client parses little): '+' .. expires for a grant,
-- '=' .. 'state|created|expires|hold id' for a replay, or the refusal's code.
local now_s, max_qty = ARGV[2], tonumber(ARGV[3])
local now = tonumber(now_s)
local REQUEST_PATTERN = '^([^|]*)|([^|]*)|(%d+)|([^|]*)|(%d+)|(.*)$'

-- One item's counters, read once and written back once at the end of the batch.
local function load_book(item)
  local t = redis.call('HMGET', ikey(item, 'book'), 'limit', 'opens', 'closes', 'ttl', 'buckets', 'avail', 'held')
  if not t[1] then return false end
  return {
    limit = tonumber(t[1]), opens = tonumber(t[2]), closes = tonumber(t[3]), ttl = tonumber(t[4]),
    nb = tonumber(t[5]), avail = {[0] = tonumber(t[6])}, held = tonumber(t[7]),
    used = {}, used_changed = {}, due = {}, ids = {}, changed = false,
  }
end

local function avail_of(book, item, k)
  if book.avail[k] == nil then book.avail[k] = avail_get(item, k) end
  return book.avail[k]
end

local function used_of(book, item, user)
  if book.used[user] == nil then book.used[user] = tonumber(redis.call('HGET', ikey(item, 'book'), ufield(user))) or 0 end
  return book.used[user]
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

-- The same order of checks as flashsale.domain.sale.check_hold_request; returns a code, or nil and the bucket.
local function check(book, item, user, qty, route)
  if not qty or qty < 1 or qty > max_qty or qty % 1 ~= 0 then return 'INVALID_QUANTITY' end
  if not (book.opens <= now and now < book.closes) then return 'SESSION_NOT_OPEN' end
  local b = route % book.nb
  local over_limit = used_of(book, item, user) + qty > book.limit
  if avail_of(book, item, b) >= qty then  -- the usual case: the own bucket covers it
    if over_limit then return 'LIMIT_EXCEEDED' end
    return nil, b
  end
  local total = 0
  for k = 0, book.nb - 1 do total = total + avail_of(book, item, k) end
  if total <= 0 then return 'SOLD_OUT' end
  if over_limit then return 'LIMIT_EXCEEDED' end
  if qty > total then return 'INSUFFICIENT_STOCK' end
  rebalance(book, item, b, qty, total)
  return nil, b
end

local function replay(prior, item, qty)
  local rec = read_hold(prior)
  if not rec or rec[2] ~= item or tonumber(rec[4]) ~= qty then return 'IDEMPOTENCY_MISMATCH' end
  return '=' .. rec[8] .. '|' .. rec[6] .. '|' .. rec[7] .. '|' .. prior
end

local function grant(book, item, user, qty_s, req, hold, b)
  local qty = tonumber(qty_s)
  local expires = num(now + book.ttl)
  book.avail[b] = book.avail[b] - qty
  book.held = book.held + qty
  book.used[user] = book.used[user] + qty
  book.used_changed[user] = true
  book.changed = true
  local due = book.due
  due[#due + 1] = expires
  due[#due + 1] = hold
  book.ids[#book.ids + 1] = hold
  write_hold(hold, item, user, qty_s, req, now_s, expires, 'held', b)
  redis.call('HSET', ukey(user), req, hold)
  redis.call('XADD', STREAM, '*', 'hold_id', hold, 'item_id', item, 'user_id', user, 'qty', qty_s,
    'request_id', req, 'created_at', now_s, 'expires_at', expires)
  return '+' .. expires
end

local function write_back(item, book)
  local fields = {'avail', book.avail[0], 'held', book.held}
  for user in pairs(book.used_changed) do
    fields[#fields + 1] = ufield(user)
    fields[#fields + 1] = book.used[user]
  end
  redis.call('HSET', ikey(item, 'book'), unpack(fields))
  for k, units in pairs(book.avail) do
    if k > 0 then redis.call('SET', bkey(item, k), units) end
  end
  redis.call('ZADD', ikey(item, 'due'), unpack(book.due))
  redis.call('SADD', ikey(item, 'ids'), unpack(book.ids))
end

local requests, books = {}, {}
for i = 4, #ARGV do
  local item, qty_s, route, hold, n, rest = string.match(ARGV[i], REQUEST_PATTERN)
  n = tonumber(n)
  requests[#requests + 1] = {item, qty_s, tonumber(route), hold, string.sub(rest, 1, n), string.sub(rest, n + 1)}
  if books[item] == nil then
    if not sweep_item(item, now_s) then return {'again'} end
    books[item] = load_book(item)
  end
end

local out = {}
for _, r in ipairs(requests) do
  local item, qty_s, route, hold, user, req = r[1], r[2], r[3], r[4], r[5], r[6]
  local qty = tonumber(qty_s)
  local prior = redis.call('HGET', ukey(user), req)
  local book = books[item]
  if prior then
    out[#out + 1] = replay(prior, item, qty)
  elseif not book then
    out[#out + 1] = 'UNKNOWN_ITEM'
  else
    local code, b = check(book, item, user, qty, route)
    if code then
      out[#out + 1] = code
    else
      out[#out + 1] = grant(book, item, user, qty_s, req, hold, b)
    end
  end
end

for item, book in pairs(books) do
  if book and book.changed then write_back(item, book) end
end
return out
