-- Hold a model for every worker until a moment, never shortening a longer hold already set.
-- Used for pauses after a 429 (field pause_until) and for a spent day quota (field closed_until).
--
-- KEYS[1]  state  hash  the model's limiter state
-- ARGV[1]  field (pause_until or closed_until)
-- ARGV[2]  length of the hold in ms, counted from Redis's clock
--
-- Returns the end of the hold (ms) now in force.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if current >= until_ms then
  return current
end
redis.call('HSET', KEYS[1], ARGV[1], until_ms)
return until_ms
