-- Take attempt N of a webhook event, unless it is done, stale or already being made.
--
-- KEYS[1]  event hash               (gemq:webhook:{event id})
-- KEYS[2]  due attempts             (gemq:webhooks:due)
-- ARGV[1]  attempt index N (0 for the first)
-- ARGV[2]  now (ms)
-- ARGV[3]  lease (ms): how long this attempt may take before another copy of the message may retake it
-- ARGV[4]  due member of attempt N ("{event id}:{N}")
--
-- The attempt is also parked in the due set until the lease ends: if this worker dies mid-attempt,
-- the mover publishes it again then, instead of waiting for the broker's visibility timeout.
--
-- Returns {1, tenant, url, body, owner} to go ahead, or {0, reason} to drop the message:
-- 'gone' (expired), 'delivered' / 'failed' (finished), 'stale' (attempt N was already made), or
-- 'in flight' (a duplicate message while another thread makes the attempt).  Duplicates come from
-- the at-least-once paths (a redelivered message, a mover that died after publishing).

local d = redis.call('HMGET', KEYS[1], 'state', 'next', 'lease_until', 'tenant', 'url', 'body', 'owner')
if not d[1] then
  return {0, 'gone'}
end
if d[1] ~= 'pending' then
  return {0, d[1]}
end
if tonumber(d[2]) ~= tonumber(ARGV[1]) then
  return {0, 'stale'}
end
if (tonumber(d[3]) or 0) > tonumber(ARGV[2]) then
  return {0, 'in flight'}
end
local lease_until = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'lease_until', lease_until)
redis.call('ZADD', KEYS[2], lease_until, ARGV[4])
return {1, d[4], d[5], d[6], d[7] or ''}
