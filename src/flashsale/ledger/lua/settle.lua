-- Move one hold: ARGV[2] now, ARGV[3] hold id, ARGV[4] target state, ARGV[5] the only state it may
-- come from; an empty target only reads. Due holds are expired first ({'again'} if some are left).
-- Replies {'ok', hold} | {'refused', current state} | {'UNKNOWN_HOLD'} | {'SALE_PAUSED', lease deadline, item}:
-- a move of a paused item's hold is refused; a read or a repeat of a done move is answered.
local now_s, hold, target, source = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local rec = read_hold(hold)
if not rec then return {'UNKNOWN_HOLD'} end
local item = rec[2]
if not sweep(now_s) then return {'again'} end
local bucket
rec, bucket = read_hold(hold)  -- the sweep may have expired it
local state, qty = rec[8], tonumber(rec[4])
if target == '' or state == target then return {'ok', rec} end
if state ~= source then return {'refused', state} end
local paused_until = pause_of(item, now_s)
if paused_until then return {'SALE_PAUSED', paused_until, item} end

if target == 'sold' then
  redis.call('HINCRBY', ikey(item, 'book'), 'held', -qty)
  redis.call('HINCRBY', ikey(item, 'book'), 'sold', qty)
else
  give_back(item, rec[3], qty, bucket, state)
end
if state == 'held' then redis.call('ZREM', DUE, hold) end
move_hold(rec, bucket, target)
if target == 'sold' then
  redis.call('ZADD', SOLD, now_s, hold)  -- kept for refunds, until the sold retention
else
  redis.call('ZREM', SOLD, hold)  -- a refund
  redis.call('ZADD', DONE, now_s, hold)  -- finished: retention may forget it
end
return {'ok', rec}
