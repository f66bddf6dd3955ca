-- Claim unfinished jobs that nothing has moved for too long, so that one reaper re-publishes each.
--
-- KEYS[1]   active jobs index   (gemq:active)
-- KEYS[2..] job hashes          (gemq:job:{id}), one for each id in ARGV[3..], in the same order
-- ARGV[1]   cutoff ms: a job is claimed only if its score is still at or below it (a worker that
--           moved the job since the reaper looked has raised it)
-- ARGV[2]   now ms: a claimed job's new score, so it is not claimed again before another threshold
-- ARGV[3..] job ids
--
-- Returns {id, status, priority, ...} for each claimed job.  Ids whose record is gone, or whose job
-- has finished, leave the index: it holds unfinished jobs only, so it never grows without bound.

local claimed = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local record = redis.call('HMGET', KEYS[i - 1], 'status', 'priority')
  local status, priority = record[1], record[2]
  if not status or not (status == 'queued' or status == 'running' or status == 'retrying') then
    redis.call('ZREM', KEYS[1], id)
  else
    local score = redis.call('ZSCORE', KEYS[1], id)
    if score and tonumber(score) <= tonumber(ARGV[1]) then
      redis.call('ZADD', KEYS[1], ARGV[2], id)
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = status
      claimed[#claimed + 1] = priority or 'normal'
    end
  end
end
return claimed
