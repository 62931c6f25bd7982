-- Index holds finished or sold before the ledger kept DONE and SOLD (an older deploy's data), one
-- HSCAN page of HOLDS per call (see flashsale.ledger.contract.index_finished): ARGV[2] now, ARGV[3]
-- the page size asked for, ARGV[4] how long after it came round the scan starts again. The scan's
-- cursor is kept in INDEXED ('done|<when>' once the scan came round), so any process goes on where
-- the last call stopped, and a call after that costs one GET until the scan is due again (it finds
-- what processes of the older version sold or finished meanwhile, in a rolling deploy). A
-- released, refunded or handed-out expired hold joins DONE, a sold one SOLD, at `now` unless it is
-- indexed already (NX); an expiry still in EXPIRED (not handed out) is left to expire.lua, which
-- indexes it when it hands it out. Replies {1 when the scan is done, else 0; how many it indexed}.
local now_s = ARGV[2]
local cursor = redis.call('GET', INDEXED) or '0'
local finished_at = string.match(cursor, '^done|(.*)$')
if finished_at then
  if tonumber(now_s) < tonumber(finished_at) + tonumber(ARGV[4]) then return {1, 0} end
  cursor = '0'
end
local page = redis.call('HSCAN', HOLDS, cursor, 'COUNT', tonumber(ARGV[3]))
local flat, indexed = page[2], 0
for j = 1, #flat, 2 do
  local hold, state, index = flat[j], unpack_hold(flat[j], flat[j + 1])[8], nil
  if state == 'sold' then
    index = SOLD
  elseif state == 'released' or state == 'refunded' then
    index = DONE
  elseif state == 'expired' and not redis.call('ZSCORE', DONE, hold) and not redis.call('LPOS', EXPIRED, hold) then
    index = DONE  -- (ZSCORE first: a handed-out expiry, the usual one, costs no scan of the list)
  end
  if index then indexed = indexed + redis.call('ZADD', index, 'NX', now_s, hold) end
end
local done = page[1] == '0'
redis.call('SET', INDEXED, done and ('done|' .. now_s) or page[1])
return {done and 1 or 0, indexed}
