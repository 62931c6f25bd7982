-- Replace every coupon key under the prefix with the store's state: ARGV[2] '1' to load only when
-- nothing is loaded yet, [3] SCAN pattern of the prefix, [4] JSON {waves, budgets, coupons} with the
-- counters computed by the client (waves: terms, issued and per-user claims; budgets: spent).
if ARGV[2] == '1' and redis.call('EXISTS', P .. ':loaded') == 1 then return 0 end
local cursor = '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[3], 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do redis.call('UNLINK', key) end
until cursor == '0'
local state = cjson.decode(ARGV[4])
for _, w in ipairs(state.waves) do
  local wk = wkey(w.wave)
  redis.call('HSET', wk, 'template', w.template, 'total', w.total, 'limit', w.limit, 'opens', w.opens,
    'closes', w.closes, 'vfrom', w.vfrom, 'vuntil', w.vuntil, 'issued', w.issued)
  for user, n in pairs(w.claims) do redis.call('HSET', wk, 'u:' .. user, n) end
end
for _, b in ipairs(state.budgets) do
  redis.call('HSET', bkey(b.template), 'budget', b.budget, 'spent', b.spent)
end
for _, rec in ipairs(state.coupons) do
  local c = cjson.decode(rec)
  redis.call('HSET', COUPONS, c.id, rec)
  redis.call('HSET', REQS, reqfield(c.u, c.r), c.id)
  redis.call('RPUSH', ukey(c.u), c.id)
end
redis.call('SET', P .. ':loaded', '1')
return 1
