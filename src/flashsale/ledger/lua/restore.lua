-- Replace all ledger state under the prefix in one step (the purchase stream is kept: it feeds the
-- database). ARGV[2] now, ARGV[3] the pause token ('' for none), ARGV[4] SCAN pattern of the prefix,
-- ARGV[5] buckets, ARGV[6] item count, then twelve per item (item, quota, limit, opens, closes, ttl,
-- held, sold, the highest sequence the caller knows of it, and for a bucket of a spread item its part,
-- the item's quota and the restore's generation (see transfer.lua), else three ''), a count of
-- per-user rows and three per row (item, user, units), a count of request claims and two per claim
-- (reqfield, item; on a Cluster), then eight per hold (id, item, user, qty, request id, created,
-- expires, state). The caller computed and checked the counters. With a token, the rebuild is a
-- compare-and-set on the pause: every item must be paused under that token now, or nothing changes
-- ({'CONFLICT', item}); the pauses are kept. Without one, the pauses go too. Each item's seq starts a new epoch above its old seq and the caller's (see
-- flashsale.ledger.contract.next_epoch), so every floor taken before the loss is below it. The
-- marks of users whose keys were forgotten go with everything else: every key given is known again.
local now_s, token, pattern, nb = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if token ~= '' then
  local at = 7
  for _ = 1, tonumber(ARGV[6]) do
    local _, holder = pause_of(ARGV[at], now_s)
    if holder ~= token then return {'CONFLICT', ARGV[at]} end
    at = at + 12
  end
end
local EPOCH = 4294967296
local seqs = {}
local at = 7
for _ = 1, tonumber(ARGV[6]) do
  local old = tonumber(redis.call('HGET', ikey(ARGV[at], 'book'), 'seq')) or 0
  seqs[ARGV[at]] = (math.floor(math.max(old, tonumber(ARGV[at + 8])) / EPOCH) + 1) * EPOCH
  at = at + 12
end
local cursor = '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    if string.sub(key, 1, #STREAM) ~= STREAM and not (token ~= '' and key == PAUSES) then redis.call('UNLINK', key) end
  end
until cursor == '0'

local i = 7
for _ = 1, tonumber(ARGV[6]) do
  local item, quota, held, sold = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 6]), tonumber(ARGV[i + 7])
  redis.call('HSET', ikey(item, 'book'), 'quota', quota, 'limit', ARGV[i + 2], 'opens', ARGV[i + 3],
    'closes', ARGV[i + 4], 'ttl', ARGV[i + 5], 'buckets', nb, 'held', held, 'sold', sold, 'seq', seqs[item])
  if ARGV[i + 9] ~= '' then
    redis.call('HSET', ikey(item, 'book'), 'part', ARGV[i + 9], 'total', ARGV[i + 10], 'gen', ARGV[i + 11])
  end
  write_spread(item, quota - held - sold, nb)
  i = i + 12
end
local rows = tonumber(ARGV[i])
i = i + 1
for _ = 1, rows do
  redis.call('HSET', ikey(ARGV[i], 'book'), ufield(ARGV[i + 1]), ARGV[i + 2])
  i = i + 3
end
local claims = tonumber(ARGV[i])
i = i + 1
for _ = 1, claims do
  redis.call('HSET', CLAIMS, ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  local hold, item, user, req, expires, state = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 4], ARGV[i + 6], ARGV[i + 7]
  write_hold(hold, item, user, ARGV[i + 3], req, ARGV[i + 5], expires, state, 0)
  redis.call('HSET', REQS, reqfield(user, req), hold)
  redis.call('ZADD', ikey(item, 'holds'), ARGV[i + 5], hold)
  if state == 'held' then
    redis.call('ZADD', DUE, expires, hold)
  else  -- the store knows it was sold or finished: retained from now
    redis.call('ZADD', state == 'sold' and SOLD or DONE, now_s, hold)
  end
  i = i + 8
end
return {'OK'}
