-- Replace a call's estimated token charge with what Gemini counted (usageMetadata.promptTokenCount).
--
-- KEYS[1]  log    zset  calls in the window: member = "<call id>:<tokens charged>", score = ms
-- KEYS[2]  state  hash  field tokens = sum of the charges in the log
-- ARGV[1]  call id   ARGV[2]  estimated tokens   ARGV[3]  actual tokens
--
-- Returns the correction applied (actual - estimate), or 0 when the call already left the window.

local old = ARGV[1] .. ':' .. ARGV[2]
local at = redis.call('ZSCORE', KEYS[1], old)
if not at then
  return 0
end
redis.call('ZREM', KEYS[1], old)
redis.call('ZADD', KEYS[1], at, ARGV[1] .. ':' .. ARGV[3])
local delta = tonumber(ARGV[3]) - tonumber(ARGV[2])
redis.call('HINCRBY', KEYS[2], 'tokens', delta)
return delta
