-- Request claims on a Cluster: the request keys of one user live in one slot group (crc32(user) mod
-- groups), each naming the item it was first used for, so a key reused on an item of another group
-- is refused as a mismatch before that item's script runs. ARGV[2] 'claim' | 'claim!' | 'drop' |
-- 'keep' | 'forget', then pairs (reqfield, item). 'claim' replies one character per pair: 'n'
-- claimed now, 'o' already claimed for this item, 'x' claimed for another item, 'c' not claimed but
-- its user is marked in RETIRED (retention forgot some of their keys: the caller asks the store;
-- nothing written); 'claim!' is 'claim' after the store was asked (never 'c'). 'drop' removes each
-- claim that names its item (a refused request is not remembered, an abandoned grant forgotten);
-- 'forget' does too and marks the user (retention); 'keep' claims again what is not claimed (a
-- grant whose claim a concurrent refusal dropped). Replies a string.
local mode, out = ARGV[2], {}
local function user_of(field)  -- reqfield is '#user|' .. user .. request id
  local n = string.match(field, '^(%d+)|')
  return string.sub(field, #n + 2, #n + 1 + tonumber(n))
end
-- One read per call while nobody's keys were forgotten (the usual case).
local marks = mode == 'claim' and redis.call('EXISTS', RETIRED) == 1
for j = 3, #ARGV, 2 do
  local field, item = ARGV[j], ARGV[j + 1]
  if mode == 'claim' or mode == 'claim!' then
    if marks and redis.call('HEXISTS', RETIRED, user_of(field)) == 1
        and redis.call('HEXISTS', CLAIMS, field) == 0 then
      out[#out + 1] = 'c'
    elseif redis.call('HSETNX', CLAIMS, field, item) == 1 then
      out[#out + 1] = 'n'
    elseif redis.call('HGET', CLAIMS, field) == item then
      out[#out + 1] = 'o'
    else
      out[#out + 1] = 'x'
    end
  elseif mode == 'drop' or mode == 'forget' then
    if redis.call('HGET', CLAIMS, field) == item then redis.call('HDEL', CLAIMS, field) end
    if mode == 'forget' then redis.call('HSET', RETIRED, user_of(field), '1') end
  else
    redis.call('HSETNX', CLAIMS, field, item)
  end
end
return table.concat(out)
