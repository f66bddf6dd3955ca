-- Append streamed text to a running job and tell the caller the job's status.
--
-- KEYS[1]  job hash                 (gemq:job:{id})
-- KEYS[2]  job event stream         (gemq:job:{id}:events)
-- ARGV[1]  text delta to append ("" only checks the status)
-- ARGV[2]  event stream MAXLEN (approximate)
-- ARGV[3]  event data (JSON) for the delta event
--
-- Returns the job's status ('' if the job is gone).  Text is only appended while the status is
-- 'running', so a cancelled job's record stops growing at once.

local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return ''
end
if status == 'running' and ARGV[1] ~= '' then
  local text = redis.call('HGET', KEYS[1], 'partial_text') or ''
  redis.call('HSET', KEYS[1], 'partial_text', text .. ARGV[1])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'event', 'delta', 'data', ARGV[3])
end
return status
