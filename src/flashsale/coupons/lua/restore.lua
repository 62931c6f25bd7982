-- Undo an order's redemption: ARGV[2] coupon id, [3] order id, [4] now. The budget gets the discount
-- back; the coupon is available again while its template is valid, else lapsed (restored_state).
-- A coupon not redeemed by this order is answered unchanged.
local id, order, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local rec = redis.call('HGET', COUPONS, id)
if not rec then return {'UNKNOWN_COUPON'} end
local c = cjson.decode(rec)
if c.s ~= 'redeemed' or c.o ~= order then return {'OK', rec} end
-- Not HINCRBY by -d when d is 0: Lua writes -0 as "-0", which Redis refuses as an integer.
local d = tonumber(c.d)
if d ~= 0 then redis.call('HINCRBY', bkey(c.t), 'spent', -d) end
if now < tonumber(c.v) then c.s = 'available' else c.s = 'lapsed' end
c.o, c.d = nil, '0'
rec = cjson.encode(c)
redis.call('HSET', COUPONS, id, rec)
return {'OK', rec}
