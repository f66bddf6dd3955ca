-- Replace a call's estimated token charge with what Gemini counted (usageMetadata.promptTokenCount).
--
-- KEYS[1]  tok       zset   token charges (member = "<call id>:<tokens>", score = ms)
-- KEYS[2]  toktotal  string sum of the charges
-- ARGV[1]  call id   ARGV[2]  estimated tokens   ARGV[3]  actual tokens
--
-- Returns the correction applied (actual - estimate), or 0 when the charge already left the window.

local old = ARGV[1] .. ':' .. ARGV[2]
local at = redis.call('ZSCORE', KEYS[1], old)
if not at then
  return 0
end
redis.call('ZREM', KEYS[1], old)
redis.call('ZADD', KEYS[1], at, ARGV[1] .. ':' .. ARGV[3])
local delta = tonumber(ARGV[3]) - tonumber(ARGV[2])
redis.call('INCRBY', KEYS[2], delta)
return delta
