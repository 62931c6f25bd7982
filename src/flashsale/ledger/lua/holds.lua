-- Every hold of one item, in any state, after expiring due holds: ARGV[2] now, ARGV[3] item.
-- Replies a list of holds, or {'again'}.
local now_s, item = ARGV[2], ARGV[3]
if not sweep(now_s) then return {'again'} end
local out = {}
for _, hold in ipairs(redis.call('ZRANGE', ikey(item, 'holds'), 0, -1)) do out[#out + 1] = read_hold(hold) end
-- Holds granted before the index became a sorted set (a list); a forgotten one reads nil and is skipped.
for _, hold in ipairs(redis.call('LRANGE', ikey(item, 'hold_ids'), 0, -1)) do out[#out + 1] = read_hold(hold) end
return out
