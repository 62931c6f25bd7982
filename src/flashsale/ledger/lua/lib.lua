-- Shared by every ledger script (flashsale.ledger.redis prepends it): key names, hold records and
-- the moves that give units back. KEYS: 1 live holds of every item by deadline, 2 holds (hold id ->
-- hold), 3 expired list, 4 purchase stream, 5 request keys (reqfield -> hold id), 6 pauses (item ->
-- 'until|token', the item's pause lease; it may name an item not configured yet), 7 request claims
-- (on a Cluster only: reqfield -> item, for the users of this slot group), 8 finished holds by when
-- they finished (released, refunded, expired and handed out: what retention may forget), 9 users
-- some of whose keys were forgotten (user -> '1'; see flashsale.ledger.contract). ARGV[1] is the key
-- prefix; the keys of one item share the hash tag {i:<item>}. An item's book is one hash: its terms,
-- its counters, and 'u:<user>' -> the user's units.
local P = ARGV[1]
local DUE, HOLDS, EXPIRED, STREAM, REQS, PAUSES = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local CLAIMS, DONE, RETIRED = KEYS[7], KEYS[8], KEYS[9]
-- Sold holds by when they were sold (what retention may forget once their refunds are rare), and
-- the progress of index.lua; named from the prefix, so in the group's slot on a Cluster.
local SOLD, INDEXED = P .. ':sold', P .. ':indexed'
-- Bounds the lazy expiry one call does; a caller told 'again' calls once more, nothing decided yet.
local SWEEP_BATCH = 256

local function ikey(item, name) return P .. ':{i:' .. item .. '}:' .. name end
local function bkey(item, k) return P .. ':{i:' .. item .. ':b' .. k .. '}:avail' end
local function ufield(user) return 'u:' .. user end
-- The idempotency key of (user, request id); the user's length keeps any bytes apart.
local function reqfield(user, req) return #user .. '|' .. user .. req end

-- Lua's tostring keeps 14 digits; 17 give back the exact double the client sent.
local function num(x) return string.format('%.17g', x) end

-- Bucket 0 lives in the item's book, so an item with one bucket stays in one slot.
local function avail_get(item, k)
  if k == 0 then return tonumber(redis.call('HGET', ikey(item, 'book'), 'avail')) or 0 end
  return tonumber(redis.call('GET', bkey(item, k))) or 0
end

local function avail_set(item, k, units)
  if k == 0 then redis.call('HSET', ikey(item, 'book'), 'avail', units) else redis.call('SET', bkey(item, k), units) end
end

local function buckets_of(item)
  return tonumber(redis.call('HGET', ikey(item, 'book'), 'buckets')) or 1
end

-- Share `total` units over `nb` buckets evenly; the remainder goes to the buckets from `first` on.
local function spread(total, nb, first)
  local share, extra, parts = math.floor(total / nb), total % nb, {}
  for j = 0, nb - 1 do parts[(first + j) % nb] = share + (j < extra and 1 or 0) end
  return parts
end

local function write_spread(item, total, nb)
  local parts = spread(total, nb, 0)
  for k = 0, nb - 1 do avail_set(item, k, parts[k]) end
end

-- Units leave `from` ('held' or 'sold') and go back on sale, and back to the user's quota.
local function give_back(item, user, qty, bucket, from)
  local book = ikey(item, 'book')
  redis.call('HINCRBY', book, from, -qty)
  local k = bucket % buckets_of(item)
  if k == 0 then redis.call('HINCRBY', book, 'avail', qty) else redis.call('INCRBY', bkey(item, k), qty) end
  if redis.call('HINCRBY', book, ufield(user), -qty) <= 0 then redis.call('HDEL', book, ufield(user)) end
end

-- A hold is one field of HOLDS: "item|qty|created|expires|state|bucket|#user|" .. user .. request id.
-- User and request id come last and are split by length, so they may contain any byte.
local HOLD_PATTERN = '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(%d+)|(.*)$'

local function pack_hold(item, user, qty, req, created, expires, state, bucket)
  return table.concat({item, qty, created, expires, state, bucket, reqfield(user, req)}, '|')
end

local function write_hold(hold, item, user, qty, req, created, expires, state, bucket)
  redis.call('HSET', HOLDS, hold, pack_hold(item, user, qty, req, created, expires, state, bucket))
end

-- {hold id, item, user, qty, request id, created, expires, state} and the bucket, from a packed hold.
local function unpack_hold(hold, packed)
  local item, qty, created, expires, state, bucket, n, rest = string.match(packed, HOLD_PATTERN)
  n = tonumber(n)
  return {hold, item, string.sub(rest, 1, n), qty, string.sub(rest, n + 1), created, expires, state}, tonumber(bucket)
end

-- The hold and its bucket, or nil.
local function read_hold(hold)
  local packed = redis.call('HGET', HOLDS, hold)
  if not packed then return nil end
  return unpack_hold(hold, packed)
end

local function move_hold(rec, bucket, state)
  rec[8] = state
  write_hold(rec[1], rec[2], rec[3], rec[4], rec[5], rec[6], rec[7], state, bucket)
end

-- Forget a hold, leaving the counters as they are: its record, its request key, its places in its
-- item's index, the finished and sold indexes and the deadlines (retention and abandon).
local function drop_hold(rec)
  local hold = rec[1]
  redis.call('HDEL', HOLDS, hold)
  local field = reqfield(rec[3], rec[5])
  if redis.call('HGET', REQS, field) == hold then redis.call('HDEL', REQS, field) end
  redis.call('ZREM', ikey(rec[2], 'holds'), hold)
  redis.call('ZREM', DONE, hold)
  redis.call('ZREM', SOLD, hold)
  redis.call('ZREM', DUE, hold)
end

local function expire_hold(hold)
  local rec, bucket = read_hold(hold)
  redis.call('ZREM', DUE, hold)
  if not rec or rec[8] ~= 'held' then return end
  give_back(rec[2], rec[3], tonumber(rec[4]), bucket, 'held')
  move_hold(rec, bucket, 'expired')
  redis.call('RPUSH', EXPIRED, hold)
end

-- Expire due holds of every item, at most SWEEP_BATCH; true when none is left due. One set holds
-- the deadlines of all items, so a call with nothing due pays one read however many items it touches.
local function sweep(now)
  local ids = redis.call('ZRANGEBYSCORE', DUE, '-inf', now, 'LIMIT', 0, SWEEP_BATCH)
  for _, hold in ipairs(ids) do expire_hold(hold) end
  return #ids < SWEEP_BATCH or redis.call('ZCOUNT', DUE, '-inf', now) == 0
end

-- The item's pause lease if it has not ended at `now`: its deadline (string) and token; else nil.
-- A lease past its deadline is simply ignored (reads never write), and the next pause overwrites it.
local function pause_of(item, now)
  local lease = redis.call('HGET', PAUSES, item)
  if not lease then return nil end
  local until_s, token = string.match(lease, '^([^|]*)|(.*)$')
  if tonumber(now) >= tonumber(until_s) then return nil end
  return until_s, token
end
