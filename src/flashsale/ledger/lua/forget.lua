-- Forget holds (retention and abandon, see flashsale.ledger.contract): ARGV[2] now, ARGV[3] 'retire' |
-- 'sold' | 'abandon', then hold ids. 'retire' forgets holds in DONE (finished and handed out) and
-- marks their users in RETIRED; 'sold' does so with sold holds (counters untouched); 'abandon'
-- first gives a held hold's units back, then forgets held, released and expired holds, marking
-- nobody. Sold and refunded holds (for 'abandon'), holds not finished (for 'retire'), not sold
-- (for 'sold') are left alone; ids not found here go back to the caller (a Cluster asks other
-- groups). Due holds are expired first ({'again'} if some are left). Replies {forgotten count,
-- {user, request id, item, ...} of the forgotten (their claims go too), {ids not found}}.
local now_s, mode = ARGV[2], ARGV[3]
if not sweep(now_s) then return {'again'} end
local gone, fields, missing = 0, {}, {}
for j = 4, #ARGV do
  local hold = ARGV[j]
  local rec, bucket = read_hold(hold)
  if not rec then
    missing[#missing + 1] = hold
  else
    local state, forget = rec[8], false
    if mode == 'retire' then
      forget = redis.call('ZSCORE', DONE, hold) ~= false
    elseif mode == 'sold' then
      forget = state == 'sold'
    else
      forget = state == 'held' or state == 'released' or state == 'expired'
      if state == 'held' then give_back(rec[2], rec[3], tonumber(rec[4]), bucket, 'held') end
      -- An expiry not handed out yet is nobody's to hand out now (rare: a scan of the short list).
      if state == 'expired' and not redis.call('ZSCORE', DONE, hold) then redis.call('LREM', EXPIRED, 1, hold) end
    end
    if forget then
      drop_hold(rec)
      if mode ~= 'abandon' then redis.call('HSET', RETIRED, rec[3], '1') end
      gone = gone + 1
      fields[#fields + 1] = rec[3]
      fields[#fields + 1] = rec[5]
      fields[#fields + 1] = rec[2]
    end
  end
end
return {gone, fields, missing}
