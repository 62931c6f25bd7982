-- draw(prefix, pool, user, request id, day, award id, roll): one atomic decision, as the contract says.
local user, req, day, award_id, roll = ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local prizes, thanks = load_terms()
if not prizes then return {'UNKNOWN_POOL'} end
local rfield = ufield(user, req)
local bal = tonumber(redis.call('HGET', pkey('bal'), user)) or 0
local first = redis.call('HGET', pkey('reqs'), rfield)
if first then return {'replay', first, bal} end
if bal <= 0 then return {'NO_ENTITLEMENT'} end

-- Every check before the first write: Lua has no rollback.
local total, any_left, left = thanks, false, {}
local ids, fields = {}, {}
for i, p in ipairs(prizes) do ids[i], fields[i] = p.id, 'p:' .. p.id end
local awarded, today = {}, {}
if #prizes > 0 then
  awarded = redis.call('HMGET', pkey('awarded'), unpack(ids))
  today = redis.call('HMGET', dkey(day), unpack(fields))
end
for i, p in ipairs(prizes) do
  total = total + p.weight
  left[i] = (tonumber(awarded[i]) or 0) < p.stock and (p.cap < 0 or (tonumber(today[i]) or 0) < p.cap)
  if left[i] and p.weight > 0 then any_left = true end
end
if not any_left then return {'PRIZE_GONE', bal} end

-- As flashsale.domain.draws.pick: roll (< 2^48, exact in a double) mod the total weight.
local won = ''
if total > 0 then
  local point = roll % total
  for i, p in ipairs(prizes) do
    if point < p.weight then
      if left[i] then won = p.id end
      break
    end
    point = point - p.weight
  end
end
bal = redis.call('HINCRBY', pkey('bal'), user, -1)
if won ~= '' then
  redis.call('HINCRBY', pkey('awarded'), won, 1)
  bump_day(day, 'p:' .. won, 1)
end
local rec = award_id .. '|' .. won .. '|' .. day
redis.call('HSET', pkey('reqs'), rfield, rec)
return {'ok', rec, bal}
