-- Take attempt N of a webhook event, unless it is done, stale or already being made.
--
-- KEYS[1]  event hash               (gemq:webhook:{event id})
-- ARGV[1]  attempt index N (0 for the first)
-- ARGV[2]  now (ms)
-- ARGV[3]  lease (ms): how long this attempt may take before another copy of the message may retake it
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
redis.call('HSET', KEYS[1], 'lease_until', tonumber(ARGV[2]) + tonumber(ARGV[3]))
return {1, d[4], d[5], d[6], d[7] or ''}
