-- Shared by every draw script (flashsale.draws.redis prepends it). ARGV[1] is the key prefix, ARGV[2]
-- the pool; every key of a pool shares the hash tag {d:<pool>}, so a pool lives in one slot.
--   terms   hash   thanks -> weight; prizes -> 'id:weight:stock:cap,...' (cap -1: none), in pick order
--   awarded hash   prize id -> awards in total
--   day:<d> hash   'p:<prize>' -> awards that day; 'g:<source>|<user>' -> grants that day
--   bal     hash   user -> entitlements left
--   grants  hash   '<#user>|<user><grant key>' -> draws granted (idempotency of grants)
--   reqs    hash   '<#user>|<user><request id>' -> 'award id|prize id or empty|day' (idempotency of draws)
local P, POOL = ARGV[1], ARGV[2]
local DAY_TTL_S = 3 * 86400 -- a day's counters outlive the day (and any time zone's) before they go

local function pkey(name) return P .. ':{d:' .. POOL .. '}:' .. name end
local function dkey(day) return pkey('day:' .. day) end
-- The idempotency field of (user, key); the user's length keeps any bytes apart.
local function ufield(user, key) return #user .. '|' .. user .. key end

-- The pool's prizes as a list of {id, weight, stock, cap}, and the thanks weight; nil when unknown.
local function load_terms()
  local t = redis.call('HMGET', pkey('terms'), 'thanks', 'prizes')
  if not t[1] then return nil end
  local prizes = {}
  for id, w, s, c in string.gmatch(t[2] or '', '(%d+):(%d+):(%d+):(-?%d+)') do
    prizes[#prizes + 1] = {id = id, weight = tonumber(w), stock = tonumber(s), cap = tonumber(c)}
  end
  return prizes, tonumber(t[1])
end

local function bump_day(day, field, by)
  local k = dkey(day)
  redis.call('HINCRBY', k, field, by)
  redis.call('EXPIRE', k, DAY_TTL_S)
end
