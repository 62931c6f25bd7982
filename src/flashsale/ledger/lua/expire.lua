-- Expire up to ARGV[3] due holds (ARGV[2] now), earliest deadline first across all items (the due
-- set orders equal deadlines by hold id), then hand out up to ARGV[3] expiries not handed out yet,
-- each exactly once (popped here); a handed-out expiry joins the finished holds (retention), and one
-- abandoned meanwhile is skipped. Replies a list of holds.
local now_s, limit = ARGV[2], tonumber(ARGV[3])
for _, hold in ipairs(redis.call('ZRANGEBYSCORE', DUE, '-inf', now_s, 'LIMIT', 0, limit)) do expire_hold(hold) end

local out = {}
for _, hold in ipairs(redis.call('LPOP', EXPIRED, limit) or {}) do
  local rec = read_hold(hold)
  if rec then
    out[#out + 1] = rec
    redis.call('ZADD', DONE, now_s, hold)
  end
end
return out
