-- Up to ARGV[3] finished holds (released, refunded, expired and handed out) that finished before
-- ARGV[2], earliest first: what retention may forget; with ARGV[4] 'sold', sold holds sold before
-- ARGV[2] instead. Replies a list of holds.
local index = ARGV[4] == 'sold' and SOLD or DONE
local out = {}
for _, hold in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
  out[#out + 1] = read_hold(hold)
end
return out
