-- Move a job to a new status, atomically, if its current status allows it.
--
-- KEYS[1]  job hash                 (gemq:job:{id})
-- KEYS[2]  job event stream         (gemq:job:{id}:events)
-- KEYS[3]  active jobs index        (gemq:active): the job is scored with Redis's clock on a non-terminal
--          status and removed on a terminal one, so the reaper sees when it last moved
-- KEYS[4]  batch hash, optional     (gemq:batch:{id}); counters n_<status> and n_done and the token sums
--          are kept, and the change that ends its last item finishes it (status, finished_ms, EXPIRE)
-- KEYS[5]  batch items list, with KEYS[4] (gemq:batch:{id}:items); EXPIREs with the batch
-- ARGV[1]  allowed current statuses, comma-separated, e.g. "queued,retrying"
-- ARGV[2]  new status
-- ARGV[3]  1 if the new status is terminal, else 0
-- ARGV[4]  TTL in seconds set on the job and its events when terminal
-- ARGV[5]  event stream MAXLEN (approximate)
-- ARGV[6]  event data (JSON) recorded with the status change
-- ARGV[7]  streamed text not yet written ("" for none): appended to partial_text as a delta event
--          before the status event, so a stream's deltas always add up to its text
-- ARGV[8]  token usage of the job's result, "prompt,output,total", added to the batch's sums ("" for none)
-- ARGV[9..] field, value pairs written to the job hash
--
-- Returns {code, previous_status, batch_completed}:
--   code 1 = moved, 0 = refused (previous_status is the current one), -1 = no such job.
--   batch_completed is 1 only for the one transition that finished the last item of a batch.

local current = redis.call('HGET', KEYS[1], 'status')
if not current then
  return {-1, '', 0}
end

local allowed = false
for status in string.gmatch(ARGV[1], '[^,]+') do
  if status == current then
    allowed = true
    break
  end
end
if not allowed then
  return {0, current, 0}
end

local new = ARGV[2]
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'event', 'delta', 'data', cjson.encode({text = ARGV[7]}))
end
redis.call('HSET', KEYS[1], 'status', new)
if #ARGV > 8 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 9))
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'event', 'status', 'data', ARGV[6])

local terminal = ARGV[3] == '1'
local job_id = redis.call('HGET', KEYS[1], 'id')
if terminal then
  redis.call('HDEL', KEYS[1], 'partial_text')
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  redis.call('ZREM', KEYS[3], job_id)
else
  local now = redis.call('TIME')
  redis.call('ZADD', KEYS[3], now[1] * 1000 + math.floor(now[2] / 1000), job_id)
end

local batch_completed = 0
-- A batch hash that is gone (expired) is never recreated by HINCRBY.
if KEYS[4] and current ~= new and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HINCRBY', KEYS[4], 'n_' .. current, -1)
  redis.call('HINCRBY', KEYS[4], 'n_' .. new, 1)
  if terminal then
    if ARGV[8] ~= '' then
      local p, o, t = string.match(ARGV[8], '^(%d+),(%d+),(%d+)$')
      redis.call('HINCRBY', KEYS[4], 'tokens_prompt', p)
      redis.call('HINCRBY', KEYS[4], 'tokens_output', o)
      redis.call('HINCRBY', KEYS[4], 'tokens_total', t)
    end
    local done = redis.call('HINCRBY', KEYS[4], 'n_done', 1)
    local total = tonumber(redis.call('HGET', KEYS[4], 'n_total') or '0')
    if done == total then
      local now = redis.call('TIME')
      local ended = 'completed'
      -- Cancelled: the client cancelled the batch and at least one item ended cancelled.
      local stopped = tonumber(redis.call('HGET', KEYS[4], 'n_cancelled') or '0')
      if stopped > 0 and redis.call('HEXISTS', KEYS[4], 'cancel_ms') == 1 then
        ended = 'cancelled'
      end
      local finished_ms = now[1] .. string.format('%03d', math.floor(now[2] / 1000))
      redis.call('HSET', KEYS[4], 'status', ended, 'finished_ms', finished_ms)
      redis.call('EXPIRE', KEYS[4], ARGV[4])
      redis.call('EXPIRE', KEYS[5], ARGV[4])
      batch_completed = 1
    end
  end
end
return {1, current, batch_completed}
