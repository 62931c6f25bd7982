-- Shared by every coupon ledger script (flashsale.coupons.redis prepends it). ARGV[1] is the key
-- prefix P. Keys: P:w:<wave> hash (terms, 'issued', 'u:<user>' -> the user's claims), P:b:<template>
-- hash ('budget': cents or 'none', 'spent'), P:coupons hash (coupon id -> JSON record), P:reqs hash
-- (idempotency key -> coupon id), P:u:<user> list (the user's coupon ids, oldest first), P:loaded.
-- A record's fields: id, w wave, t template, u user, r request id, s state, c claimed at, f/v the
-- template's validity [from, until), o order (absent when unused), d discount in cents. Numbers are
-- kept as the strings the client sent: cjson would round them to 14 digits.
local P = ARGV[1]
local COUPONS, REQS = P .. ':coupons', P .. ':reqs'
local function wkey(wave) return P .. ':w:' .. wave end
local function bkey(template) return P .. ':b:' .. template end
local function ukey(user) return P .. ':u:' .. user end
-- The idempotency key of (user, request id); the user's length keeps any bytes apart.
local function reqfield(user, req) return #user .. '|' .. user .. req end
