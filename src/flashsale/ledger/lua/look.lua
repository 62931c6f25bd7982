-- Read an item's counters after expiring due holds: ARGV[2] now, ARGV[3] item, ARGV[4] user ('' for none).
-- Replies {'ok', quota, available, held, sold, user's units, seq, then for a bucket of a spread item
-- (see transfer.lua): its part, the item's quota, its outgoing transfers (flat: id, 'to|units|when',
-- ...) and the ids it received} | {'UNKNOWN_ITEM'} | {'again'}.
local now_s, item, user = ARGV[2], ARGV[3], ARGV[4]
if not sweep(now_s) then return {'again'} end
local b = redis.call('HMGET', ikey(item, 'book'), 'quota', 'buckets', 'held', 'sold', ufield(user), 'seq', 'part',
  'total')
if not b[1] then return {'UNKNOWN_ITEM'} end
local available = 0
for k = 0, tonumber(b[2]) - 1 do available = available + avail_get(item, k) end
if not b[7] then return {'ok', b[1], available, b[3], b[4], b[5] or 0, b[6] or 0} end
return {'ok', b[1], available, b[3], b[4], b[5] or 0, b[6] or 0, b[7], b[8],
  redis.call('HGETALL', ikey(item, 'out')), redis.call('ZRANGE', ikey(item, 'recv'), 0, -1)}
