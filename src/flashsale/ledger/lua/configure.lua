-- Register an item or change its terms: ARGV[2] now, ARGV[3] item, then quota, per-user limit,
-- opens, closes, hold ttl, buckets; for a bucket of a spread item (see transfer.lua) also its part and
-- the item's quota, and the bucket's quota may be '' (kept: a quota change moved it already). Replies {'ok', quota, available, held, sold} or
-- {'QUOTA_BELOW_COMMITTED', held + sold} or {'SALE_PAUSED', lease deadline}; due holds are expired first when the item is known ({'again'} if some are left).
local now_s, item = ARGV[2], ARGV[3]
local book = ikey(item, 'book')
local quota, nb = tonumber(ARGV[4]) or tonumber(redis.call('HGET', book, 'quota')), tonumber(ARGV[9])
local paused_until = pause_of(item, now_s)
if paused_until then return {'SALE_PAUSED', paused_until} end
local held, sold = 0, 0
local old_nb = tonumber(redis.call('HGET', book, 'buckets'))
if old_nb then
  if not sweep(now_s) then return {'again'} end
  local c = redis.call('HMGET', book, 'held', 'sold')
  held, sold = tonumber(c[1]), tonumber(c[2])
  if quota < held + sold then return {'QUOTA_BELOW_COMMITTED', held + sold} end
  for k = math.max(nb, 1), old_nb - 1 do redis.call('DEL', bkey(item, k)) end
end
redis.call('HSET', book, 'quota', quota, 'limit', ARGV[5], 'opens', ARGV[6], 'closes', ARGV[7], 'ttl', ARGV[8],
  'buckets', nb, 'held', held, 'sold', sold)
if ARGV[10] then redis.call('HSET', book, 'part', ARGV[10], 'total', ARGV[11]) end
write_spread(item, quota - held - sold, nb)
return {'ok', quota, quota - held - sold, held, sold}
