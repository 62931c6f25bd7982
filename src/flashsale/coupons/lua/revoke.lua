-- Undo a claim whose record the store refused: ARGV[2] coupon id. Only an available coupon goes.
local rec = redis.call('HGET', COUPONS, ARGV[2])
if not rec then return 0 end
local c = cjson.decode(rec)
if c.s ~= 'available' then return 0 end
redis.call('HINCRBY', wkey(c.w), 'issued', -1)
redis.call('HINCRBY', wkey(c.w), 'u:' .. c.u, -1)
redis.call('HDEL', COUPONS, ARGV[2])
redis.call('HDEL', REQS, reqfield(c.u, c.r))
redis.call('LREM', ukey(c.u), 0, ARGV[2])
return 1
