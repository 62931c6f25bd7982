-- The earliest expires_at among live holds of all items, or false when nothing is held.
local first
for _, item in ipairs(redis.call('SMEMBERS', ITEMS)) do
  local head = redis.call('ZRANGE', ikey(item, 'due'), 0, 0, 'WITHSCORES')[2]
  if head and (not first or tonumber(head) < tonumber(first)) then first = head end
end
return first
