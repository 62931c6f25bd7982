-- Expire up to ARGV[3] due holds (ARGV[2] now), earliest deadline first across all items, then hand
-- out up to ARGV[3] expiries not handed out yet, each exactly once (popped here). Replies a list
-- of holds.
local now_s, limit = ARGV[2], tonumber(ARGV[3])
local due = {}
for _, item in ipairs(redis.call('SMEMBERS', ITEMS)) do
  local page = redis.call('ZRANGEBYSCORE', ikey(item, 'due'), '-inf', now_s, 'WITHSCORES', 'LIMIT', 0, limit)
  for j = 1, #page, 2 do due[#due + 1] = {tonumber(page[j + 1]), page[j]} end
end
table.sort(due, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
for j = 1, math.min(limit, #due) do expire_hold(due[j][2]) end

local out = {}
for _, hold in ipairs(redis.call('LPOP', EXPIRED, limit) or {}) do
  out[#out + 1] = read_hold(hold)
end
return out
