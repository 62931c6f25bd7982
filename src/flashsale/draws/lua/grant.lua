-- grant(prefix, pool, user, source, grant key, draws, day, daily cap): once per key, capped per day.
local user, source, key, draws, day, cap = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
if redis.call('EXISTS', pkey('terms')) == 0 then return {'UNKNOWN_POOL', 0} end
local bal = tonumber(redis.call('HGET', pkey('bal'), user)) or 0
local gfield = ufield(user, key)
if redis.call('HEXISTS', pkey('grants'), gfield) == 1 then return {'replay', bal} end
local counted = 'g:' .. source .. '|' .. user
if (tonumber(redis.call('HGET', dkey(day), counted)) or 0) >= cap then return {'GRANT_LIMIT_REACHED', bal} end
redis.call('HSET', pkey('grants'), gfield, draws)
bump_day(day, counted, 1)
return {'ok', redis.call('HINCRBY', pkey('bal'), user, draws)}
