-- End a conversation job's turn: add its exchange to the history and serve the next ticket.
--
-- KEYS[1]  history list              (gemq:conv:{t}:{id})  one JSON exchange per item
-- KEYS[2]  ticket dispenser          (gemq:conv:{t}:{id}:next)
-- KEYS[3]  ticket now served         (gemq:conv:{t}:{id}:turn)
-- KEYS[4]  ticket holders            (gemq:conv:{t}:{id}:holders)
-- ARGV[1]  the ticket whose turn ends
-- ARGV[2]  exchange JSON {"job_id", "turns": [...]} to append, or "" (failed, cancelled, gone)
-- ARGV[3]  most turns kept in the history (whole exchanges are dropped, oldest first; the newest
--          exchange is always kept)
-- ARGV[4]  TTL in seconds of the conversation's keys (all four refreshed here, so they expire together)
--
-- Returns 1 when the turn ended here, 0 when it was not (or no longer) this ticket's turn.  Only the
-- ticket being served can end its turn, so a second call (a redelivered message, the web's cancel,
-- another job settling a finished holder) changes nothing: an exchange is appended at most once.

local turn = tonumber(redis.call('GET', KEYS[3]) or '-1')
if turn ~= tonumber(ARGV[1]) then
  return 0
end
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[1], ARGV[2])
  local items = redis.call('LRANGE', KEYS[1], 0, -1)
  local total = 0
  local keep_from = #items
  for i = #items, 1, -1 do
    total = total + #cjson.decode(items[i])['turns']
    if total > tonumber(ARGV[3]) and i < #items then
      break
    end
    keep_from = i
  end
  if keep_from > 1 then
    redis.call('LTRIM', KEYS[1], keep_from - 1, -1)
  end
end
redis.call('SET', KEYS[3], turn + 1)
redis.call('HDEL', KEYS[4], ARGV[1])
for i = 1, 4 do
  redis.call('EXPIRE', KEYS[i], ARGV[4])
end
return 1
