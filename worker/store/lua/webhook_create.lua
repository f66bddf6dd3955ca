-- Create a webhook event once and schedule its first attempt (idempotent by event id).
--
-- KEYS[1]  event hash               (gemq:webhook:{event id})
-- KEYS[2]  due attempts             (gemq:webhooks:due)
-- KEYS[3]  owner hash, optional     (gemq:job:{id}); gets webhook_event_id/state/attempts
-- ARGV[1]  event id
-- ARGV[2]  tenant
-- ARGV[3]  target URL
-- ARGV[4]  event type
-- ARGV[5]  body (the exact JSON string that is signed and sent)
-- ARGV[6]  TTL of the event hash, seconds
-- ARGV[7]  when the mover may publish attempt 0 if nobody else does (ms): the safety net for a
--          process that dies between this script and its own publish
-- ARGV[8]  due member of attempt 0 ("{event id}:0")
--
-- Returns 1 when the event was created, 0 when it (or another event of the owner) already
-- exists, -1 when the owner is gone.

if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if KEYS[3] then
  if redis.call('EXISTS', KEYS[3]) == 0 then
    return -1
  end
  if redis.call('HSETNX', KEYS[3], 'webhook_event_id', ARGV[1]) == 0 then
    return 0
  end
  redis.call('HSET', KEYS[3], 'webhook_state', 'pending', 'webhook_attempts', '[]')
end
redis.call('HSET', KEYS[1], 'tenant', ARGV[2], 'url', ARGV[3], 'type', ARGV[4], 'body', ARGV[5],
  'owner', KEYS[3] or '', 'state', 'pending', 'attempts', '[]', 'next', 0, 'lease_until', 0)
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[8])
return 1
