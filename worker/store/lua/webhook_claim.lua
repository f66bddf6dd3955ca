-- Claim the webhook attempts that are due, for one mover to publish.
--
-- KEYS[1]  due attempts             (gemq:webhooks:due)
-- ARGV[1]  now (ms)
-- ARGV[2]  claimed until (ms): a claimed member becomes due again then, should its mover die
--          before publishing it and removing it
-- ARGV[3]  most members to claim
--
-- Returns the claimed members ("{event id}:{attempt}").

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return due
