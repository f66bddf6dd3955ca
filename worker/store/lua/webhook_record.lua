-- Record attempt N of a webhook event and, when another follows, schedule it: one atomic step,
-- so a worker that dies after recording can never lose the next attempt.
--
-- KEYS[1]  event hash               (gemq:webhook:{event id})
-- KEYS[2]  due attempts             (gemq:webhooks:due)
-- KEYS[3]  owner hash, optional     (gemq:job:{id}); mirrors state, attempts, next attempt time
-- ARGV[1]  attempt index N
-- ARGV[2]  the attempt as a JSON object
-- ARGV[3]  state after it: pending (another attempt follows), delivered or failed
-- ARGV[4]  when the next attempt is due (ms), if pending
-- ARGV[5]  due member of the next attempt ("{event id}:{N+1}"), if pending
-- ARGV[6]  due member of attempt N (its safety-net entry from webhook_begin.lua is removed)
--
-- Returns 1 when recorded, 0 when attempt N was already recorded or the event is finished.

local d = redis.call('HMGET', KEYS[1], 'state', 'next', 'attempts')
if d[1] ~= 'pending' or tonumber(d[2]) ~= tonumber(ARGV[1]) then
  return 0
end
local attempts
if d[3] == '[]' then
  attempts = '[' .. ARGV[2] .. ']'
else
  attempts = string.sub(d[3], 1, -2) .. ',' .. ARGV[2] .. ']'
end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'next', tonumber(ARGV[1]) + 1, 'attempts', attempts, 'lease_until', 0)
redis.call('ZREM', KEYS[2], ARGV[6])
local next_ms = ''
if ARGV[3] == 'pending' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
  next_ms = ARGV[4]
end
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'webhook_state', ARGV[3], 'webhook_attempts', attempts, 'webhook_next_ms', next_ms)
end
return 1
