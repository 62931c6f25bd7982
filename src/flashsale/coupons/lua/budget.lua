-- Set a template's budget: ARGV[2] template, [3] cents or 'none'. Below what is spent: refused.
local bk = bkey(ARGV[2])
local spent = tonumber(redis.call('HGET', bk, 'spent')) or 0
if ARGV[3] ~= 'none' and tonumber(ARGV[3]) < spent then return {'CONFLICT', spent} end
redis.call('HSET', bk, 'budget', ARGV[3], 'spent', spent)
return {'OK', spent}
