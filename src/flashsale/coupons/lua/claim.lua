-- Claim one coupon of a wave: ARGV[2] wave, [3] user, [4] request id, [5] now, [6] a fresh coupon id.
-- Mirrors flashsale.domain.coupons.check_claim; every check comes before the first write.
local wave, user, req, now_s, id = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local known = redis.call('HGET', REQS, reqfield(user, req))
if known then
  local rec = redis.call('HGET', COUPONS, known)
  if cjson.decode(rec).w ~= wave then return {'IDEMPOTENCY_MISMATCH'} end
  return {'REPLAY', rec}
end
local wk = wkey(wave)
local t = redis.call('HMGET', wk, 'total', 'limit', 'opens', 'closes', 'template', 'vfrom', 'vuntil', 'issued',
  'u:' .. user)
if not t[1] then return {'UNKNOWN_COUPON'} end
local now, closes = tonumber(now_s), tonumber(t[4])
if now < tonumber(t[3]) then return {'COUPON_NOT_STARTED'} end
if (closes >= 0 and now >= closes) or now >= tonumber(t[7]) then return {'COUPON_CLAIM_CLOSED'} end
if (tonumber(t[9]) or 0) >= tonumber(t[2]) then return {'COUPON_LIMIT'} end
if (tonumber(t[8]) or 0) >= tonumber(t[1]) then return {'COUPON_ISSUE_EXHAUSTED'} end
local rec = cjson.encode({id = id, w = wave, t = t[5], u = user, r = req, s = 'available', c = now_s,
  f = t[6], v = t[7], d = '0'})
redis.call('HINCRBY', wk, 'issued', 1)
redis.call('HINCRBY', wk, 'u:' .. user, 1)
redis.call('HSET', COUPONS, id, rec)
redis.call('HSET', REQS, reqfield(user, req), id)
redis.call('RPUSH', ukey(user), id)
return {'OK', rec}
