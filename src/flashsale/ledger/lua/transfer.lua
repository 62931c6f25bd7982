-- Moving units between the buckets of a spread item (see flashsale.ledger.redis), each bucket a book
-- in its own slot group: ARGV[2] now, ARGV[3] mode, ARGV[4] item, then by mode:
--   'send' transfer id, receiving bucket, units, the donor's floor: step 1, in the donor's slot. Takes
--     up to `units` out of avail (and the bucket's quota) into the outgoing record
--     out[gen:id] = 'to|units|when', gen the book's generation (set by every restore). Replies
--     {'ok', units taken, the record's id gen:id} ({'ok', 0} when dry: no record is made), or
--     {'LEDGER_BEHIND'} with nothing moved when the donor's seq is below the floor: it lost writes,
--     so its avail may count units it had sold.
--   'receive' transfer id, units: step 2, in the receiver's slot. Credits the units to avail and
--     quota once: the id is kept in recv (by when), so a repeat is a no-op. Replies {'ok'}, or
--     {'STALE'} with nothing credited when the id's generation is not the receiver's: a restore
--     rebuilt the buckets since the send and counted those units already (a holder stalled
--     through a repair).
--   'done' transfer id: step 3, in the donor's slot: the outgoing record goes. Replies {'ok'}.
--   'adjust' units (negative to take), the item's new quota, force ('1' ignores a pause: an undo):
--     a quota change's share of this bucket; refused without a change ({'short'}) when avail
--     cannot give what is taken. Replies {'ok'}.
-- Per bucket, avail + held + sold == quota at every step; units between steps 1 and 2 are in transit
-- (counted by RedisLedger.stock from the outgoing records), so no unit is created or lost. Every mode
-- but 'done' is refused ({'SALE_PAUSED', lease deadline}) while the item is paused: a restore rebuilds
-- every bucket from the store then, and a credit landing after it would make units.
local now_s, mode, item = ARGV[2], ARGV[3], ARGV[4]
local book, out, recv = ikey(item, 'book'), ikey(item, 'out'), ikey(item, 'recv')
-- A received id is kept a day: a transfer is finished within seconds by whoever finds it stale.
local KEEP_RECEIVED_S = 86400
if mode == 'done' then
  redis.call('HDEL', out, ARGV[5])
  return {'ok'}
end
local paused_until = pause_of(item, now_s)
if paused_until and not (mode == 'adjust' and ARGV[7] == '1') then return {'SALE_PAUSED', paused_until} end
if not redis.call('HGET', book, 'quota') then return {'UNKNOWN_ITEM'} end
if mode == 'send' then
  local t = redis.call('HMGET', book, 'avail', 'seq', 'gen')
  if (tonumber(t[2]) or 0) < tonumber(ARGV[8]) then return {'LEDGER_BEHIND'} end
  local avail = tonumber(t[1]) or 0
  local units = math.min(avail, tonumber(ARGV[7]))
  if units <= 0 then return {'ok', 0} end
  local id = (t[3] or '') .. ':' .. ARGV[5]
  redis.call('HINCRBY', book, 'avail', -units)
  redis.call('HINCRBY', book, 'quota', -units)
  redis.call('HSET', out, id, ARGV[6] .. '|' .. units .. '|' .. now_s)
  return {'ok', units, id}
end
if mode == 'receive' then
  if redis.call('ZSCORE', recv, ARGV[5]) then return {'ok'} end
  local gen = string.match(ARGV[5], '^([^:]*):')  -- none in an id sent before generations existed
  if gen and gen ~= (redis.call('HGET', book, 'gen') or '') then return {'STALE'} end
  redis.call('HINCRBY', book, 'avail', ARGV[6])
  redis.call('HINCRBY', book, 'quota', ARGV[6])
  redis.call('ZREMRANGEBYSCORE', recv, '-inf', tonumber(now_s) - KEEP_RECEIVED_S)
  redis.call('ZADD', recv, now_s, ARGV[5])
  return {'ok'}
end
-- 'adjust'
local units = tonumber(ARGV[5])
if units == 0 then return {'ok'} end  -- asked whether the item is paused, no more
if not sweep(now_s) then return {'again'} end
if (tonumber(redis.call('HGET', book, 'avail')) or 0) + units < 0 then return {'short'} end
redis.call('HINCRBY', book, 'avail', units)
redis.call('HINCRBY', book, 'quota', units)
redis.call('HSET', book, 'total', ARGV[6])
return {'ok'}
