-- Redeem a coupon for an order, taking the discount from its template's budget in the same step:
-- ARGV[2] coupon id, [3] order id, [4] discount cents, [5] now. Mirrors check_redeem.
local id, order, d, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local rec = redis.call('HGET', COUPONS, id)
if not rec then return {'UNKNOWN_COUPON'} end
local c = cjson.decode(rec)
if c.s == 'redeemed' then
  if c.o == order then return {'OK', rec} end
  return {'COUPON_USED'}
end
if c.s == 'lapsed' or now < tonumber(c.f) or now >= tonumber(c.v) then return {'COUPON_EXPIRED'} end
if d < 0 then return {'VALIDATION_ERROR'} end
local b = redis.call('HMGET', bkey(c.t), 'budget', 'spent')
if not b[2] then return {'UNKNOWN_COUPON'} end
if b[1] ~= 'none' and d > tonumber(b[1]) - tonumber(b[2]) then return {'BUDGET_EXHAUSTED'} end
redis.call('HINCRBY', bkey(c.t), 'spent', d)
c.s, c.o, c.d = 'redeemed', order, ARGV[4]
rec = cjson.encode(c)
redis.call('HSET', COUPONS, id, rec)
return {'OK', rec}
