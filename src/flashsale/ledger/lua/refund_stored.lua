-- Refund a sold hold that retention forgot, from its stored order (see
-- flashsale.ledger.contract.refund_stored): ARGV[2] now, ARGV[3] hold id, ARGV[4] item, ARGV[5]
-- user, ARGV[6] qty, ARGV[7] request id, ARGV[8] created, ARGV[9] expires. A hold this group knows
-- is left to settle.lua ({'known'}). Otherwise its units leave 'sold', go back on sale and to the
-- user's quota, and it is written back as refunded and finished, so a repeat finds it known and
-- moves nothing. Due holds are expired first ({'again'} if some are left). Replies {'ok', hold} |
-- {'known'} | {'SALE_PAUSED', lease deadline, item} | {'UNKNOWN_ITEM'} | {'CONFLICT'} (the item's
-- sold units or the user's are fewer than qty: no such sale here; nothing changes).
local now_s, hold, item, user, qty, req = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
if not sweep(now_s) then return {'again'} end
if redis.call('HEXISTS', HOLDS, hold) == 1 then return {'known'} end
local paused_until = pause_of(item, now_s)
if paused_until then return {'SALE_PAUSED', paused_until, item} end
local book = redis.call('HMGET', ikey(item, 'book'), 'quota', 'sold', ufield(user))
if not book[1] then return {'UNKNOWN_ITEM'} end
if (tonumber(book[2]) or 0) < qty or (tonumber(book[3]) or 0) < qty then return {'CONFLICT'} end
give_back(item, user, qty, 0, 'sold')
write_hold(hold, item, user, ARGV[6], req, ARGV[8], ARGV[9], 'refunded', 0)
redis.call('ZADD', ikey(item, 'holds'), ARGV[8], hold)
redis.call('ZADD', DONE, now_s, hold)  -- finished: retention forgets it again later
return {'ok', {hold, item, user, ARGV[6], req, ARGV[8], ARGV[9], 'refunded'}}
