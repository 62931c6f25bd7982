-- Bring a live hold's deadline forward: ARGV[2] now, ARGV[3] hold id, ARGV[4] the new deadline.
-- Never later: a hold due sooner, or no longer held, is left as it is (so a repeat changes nothing).
-- The hold's record and its place in DUE move together, so every script's sweep expires it then.
-- Replies {'ok', hold} | {'UNKNOWN_HOLD'}.
local hold, expires = ARGV[3], tonumber(ARGV[4])
local rec, bucket = read_hold(hold)
if not rec then return {'UNKNOWN_HOLD'} end
if rec[8] ~= 'held' or expires >= tonumber(rec[7]) then return {'ok', rec} end
rec[7] = num(expires)
write_hold(rec[1], rec[2], rec[3], rec[4], rec[5], rec[6], rec[7], rec[8], bucket)
redis.call('ZADD', DUE, 'XX', rec[7], hold)
return {'ok', rec}
