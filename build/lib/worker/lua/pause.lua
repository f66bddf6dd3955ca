-- Pause a model for every worker until a moment, never shortening a longer pause already set.
--
-- KEYS[1]  pause  string  model paused until (ms)
-- ARGV[1]  pause length in ms, counted from Redis's clock
--
-- Returns the pause end (ms) now in force.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= until_ms then
  return current
end
redis.call('SET', KEYS[1], until_ms, 'PX', ARGV[1])
return until_ms
