-- Give a newly stored conversation job its place in line (a ticket), atomically.
--
-- KEYS[1]  history list              (gemq:conv:{t}:{id})
-- KEYS[2]  ticket dispenser          (gemq:conv:{t}:{id}:next)
-- KEYS[3]  ticket now served         (gemq:conv:{t}:{id}:turn)
-- KEYS[4]  ticket holders            (gemq:conv:{t}:{id}:holders)  ticket -> job id
-- KEYS[5]  job hash                  (gemq:job:{id}), already written
-- ARGV[1]  job id
-- ARGV[2]  TTL in seconds of the conversation's keys (all four refreshed here, so they expire together)
--
-- Returns the ticket.  The ticket is written on the job and in the holders hash in the same step,
-- so a ticket without a job record can only mean the job was deleted (its turn may then be skipped).

local ticket = redis.call('INCR', KEYS[2])
-- A fresh line (or one whose keys expired) starts serving at its first ticket.
redis.call('SET', KEYS[3], ticket, 'NX')
redis.call('HSET', KEYS[4], ticket, ARGV[1])
redis.call('HSET', KEYS[5], 'conv_ticket', ticket)
for i = 1, 4 do
  redis.call('EXPIRE', KEYS[i], ARGV[2])
end
return ticket
