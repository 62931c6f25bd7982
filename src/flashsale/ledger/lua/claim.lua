-- Request claims on a Cluster: the request keys of one user live in one slot group (crc32(user) mod
-- groups), each naming the item it was first used for, so a key reused on an item of another group
-- is refused as a mismatch before that item's script runs. ARGV[2] 'claim' | 'drop' | 'keep', then
-- pairs (reqfield, item). 'claim' replies one character per pair: 'n' claimed now, 'o' already
-- claimed for this item, 'x' claimed for another item. 'drop' removes each claim that names its
-- item (a refused request is not remembered); 'keep' claims again what is not claimed (a grant whose
-- claim a concurrent refusal dropped). Replies a string.
local mode, out = ARGV[2], {}
for j = 3, #ARGV, 2 do
  local field, item = ARGV[j], ARGV[j + 1]
  if mode == 'claim' then
    if redis.call('HSETNX', CLAIMS, field, item) == 1 then
      out[#out + 1] = 'n'
    elseif redis.call('HGET', CLAIMS, field) == item then
      out[#out + 1] = 'o'
    else
      out[#out + 1] = 'x'
    end
  elseif mode == 'drop' then
    if redis.call('HGET', CLAIMS, field) == item then redis.call('HDEL', CLAIMS, field) end
  else
    redis.call('HSETNX', CLAIMS, field, item)
  end
end
return table.concat(out)
