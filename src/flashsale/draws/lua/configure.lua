-- configure(prefix, pool, thanks weight, prizes 'id:weight:stock:cap,...'): refuse a stock below its awards.
local thanks, spec = ARGV[3], ARGV[4]
for id, s in string.gmatch(spec, '(%d+):%d+:(%d+):%-?%d+') do
  local awarded = tonumber(redis.call('HGET', pkey('awarded'), id)) or 0
  if tonumber(s) < awarded then return {'QUOTA_BELOW_COMMITTED', id, awarded} end
end
redis.call('HSET', pkey('terms'), 'thanks', thanks, 'prizes', spec)
return {'ok'}
