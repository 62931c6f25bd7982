-- The refill lease of a spread item (see flashsale.ledger.redis_spread), in its bucket 0's slot: only
-- its holder moves units between the item's buckets. ARGV[2] mode, ARGV[3] item, ARGV[4] token, then
-- for 'take' ARGV[5] the lease's time to live in ms.
--   'take': the lease becomes (or stays: a renewal) the caller's for ARGV[5] ms more, unless another
--     token holds it. Replies 1 when it is the caller's, else 0.
--   'drop': the lease goes if the caller still holds it (a lost lease is another's now). Replies 0.
-- The time to live runs on Redis's clock (PX), not the ledger's: a dead holder's lease runs out.
local key = ikey(ARGV[3], 'refill')
local holder = redis.call('GET', key)
if ARGV[2] == 'take' then
  if holder and holder ~= ARGV[4] then return 0 end
  redis.call('SET', key, ARGV[4], 'PX', ARGV[5])
  return 1
end
if holder == ARGV[4] then redis.call('DEL', key) end
return 0
