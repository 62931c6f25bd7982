-- Pause leases: ARGV[2] now, ARGV[3] 'pause' | 'resume' | 'list', ARGV[4] token, ARGV[5] the lease's
-- deadline, then the item ids. 'pause' is all or nothing: if another token holds a live lease of one
-- of the items, the reply is {'SALE_PAUSED', item, its deadline} and nothing changes; else every
-- item gets (or keeps, extended) the lease: {'ok'}. 'resume' drops the leases of the items that the
-- token holds (any token when it is ''), and any lease that ended: {'ok'}. 'list' replies the live
-- leases as a flat list of item, deadline, token.
local now_s, mode, token, until_s = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if mode == 'list' then
  local out, all = {}, redis.call('HGETALL', PAUSES)
  for j = 1, #all, 2 do
    local deadline, holder = pause_of(all[j], now_s)
    if deadline then
      out[#out + 1] = all[j]
      out[#out + 1] = deadline
      out[#out + 1] = holder
    end
  end
  return out
end
if mode == 'pause' then
  for j = 6, #ARGV do
    local deadline, holder = pause_of(ARGV[j], now_s)
    if deadline and holder ~= token then return {'SALE_PAUSED', ARGV[j], deadline} end
  end
  for j = 6, #ARGV do redis.call('HSET', PAUSES, ARGV[j], until_s .. '|' .. token) end
  return {'ok'}
end
for j = 6, #ARGV do
  local deadline, holder = pause_of(ARGV[j], now_s)
  if not deadline or token == '' or holder == token then redis.call('HDEL', PAUSES, ARGV[j]) end
end
return {'ok'}
