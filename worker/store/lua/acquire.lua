-- Admission for one Gemini call: check every limit of a model at once and admit or say how long to wait.
--
-- KEYS[1]  log       zset   calls in the sliding window: member = "<call id>:<tokens charged>", score = ms
-- KEYS[2]  leases    zset   concurrency leases: member = call id, score = expiry ms
-- KEYS[3]  state     hash   tokens (sum of the charges in the log), pause_until, closed_until (ms),
--                           day (Pacific date), day_count (requests that day)
-- KEYS[4]  waiting   zset   waiting jobs: member = job id, score = priority rank * 1e13 + first-wait ms
-- KEYS[5]  waitexp   zset   same members, score = when the waiting entry lapses (ms)
-- ARGV[1]  job id    ARGV[2]  call id    ARGV[3]  today's Pacific date
-- ARGV[4]  space-separated numbers: priority rank (0 high .. 2 low), token cost (estimate), rpm cap,
--          tpm cap, rpd, concurrency cap (0 = unlimited; caps already lowered by the priority's
--          reserve), window ms, lease ms, seconds until the day resets, grace ms a waiting entry
--          survives beyond its wait
--
-- Returns {code, ms, reason}: code 1 = admitted; 0 = wait ms; 2 = day quota spent, resets in ms.
-- Time is Redis's own clock, so every worker on every machine shares one.  The log and the leases
-- are kept whatever the limits, so GET /v1/limits can show use.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local job, call, today = ARGV[1], ARGV[2], ARGV[3]
local n = {}
for v in string.gmatch(ARGV[4], '%S+') do n[#n + 1] = tonumber(v) end
local rank, cost, rpm, tpm, rpd, conc, window, lease, dayleft, grace = unpack(n)

local st = redis.call('HMGET', KEYS[3], 'tokens', 'pause_until', 'closed_until', 'day', 'day_count')
local tokens = tonumber(st[1] or '0')
local closed = tonumber(st[3] or '0')
if closed > now then
  return {2, closed - now, 'rpd'}
end
local day_count = 0
if st[4] == today then day_count = tonumber(st[5] or '0') end

-- Forget what left the window: calls (keeping the token sum right) and lapsed leases.
local cutoff = now - window
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
if #expired > 0 then
  for _, member in ipairs(expired) do
    tokens = tokens - tonumber(string.match(member, ':(%d+)$'))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  redis.call('HSET', KEYS[3], 'tokens', tokens)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)

-- Our place among waiting jobs: higher priorities first, then first come, first served.  A
-- registered waiter keeps its place (ZRANK orders equal scores too); a newcomer queues behind
-- everyone of its priority already waiting, including those that arrived in the same millisecond.
local score, ahead = nil, 0
if redis.call('ZCARD', KEYS[4]) > 0 then
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
  if #lapsed > 0 then
    redis.call('ZREM', KEYS[4], unpack(lapsed))
    redis.call('ZREM', KEYS[5], unpack(lapsed))
  end
  score = redis.call('ZSCORE', KEYS[4], job)
  if score then
    ahead = redis.call('ZRANK', KEYS[4], job)
  else
    ahead = redis.call('ZCOUNT', KEYS[4], '-inf', rank * 1e13 + now)
  end
end

local wait, reason = 0, ''
local function need(ms, why)
  if ms > wait then wait, reason = ms, why end
end

local paused = tonumber(st[2] or '0')
if paused > now then need(paused - now, 'paused') end

if rpm > 0 then
  local used = redis.call('ZCARD', KEYS[1])
  if used + ahead >= rpm then
    -- The (ahead - free + 1)-th oldest call must leave the window before our turn comes.
    local idx = used + ahead - rpm
    local entry = redis.call('ZRANGE', KEYS[1], idx, idx, 'WITHSCORES')
    if entry[2] then
      need(tonumber(entry[2]) + window - now, 'rpm')
    else
      need(window * (1 + math.floor((idx - used) / rpm)), 'rpm')
    end
  end
end

if tpm > 0 and tokens > 0 and tokens + cost > tpm then
  -- Walk the oldest charges until enough tokens would have left the window.
  local entries = redis.call('ZRANGE', KEYS[1], 0, 199, 'WITHSCORES')
  local left, free_at = tokens, window
  for i = 1, #entries, 2 do
    left = left - tonumber(string.match(entries[i], ':(%d+)$'))
    if left + cost <= tpm then
      free_at = tonumber(entries[i + 1]) + window - now
      break
    end
  end
  need(free_at, 'tpm')
end

if conc > 0 and redis.call('ZCARD', KEYS[2]) + ahead >= conc then
  -- Slots come back when calls finish; ask again soon (a lapsed lease frees one at the latest).
  need(250, 'concurrency')
end

if rpd > 0 and day_count >= rpd then
  redis.call('HSET', KEYS[3], 'closed_until', now + dayleft * 1000)
  return {2, dayleft * 1000, 'rpd'}
end

if wait > 0 then
  redis.call('ZADD', KEYS[4], 'NX', score or (rank * 1e13 + now), job)
  redis.call('ZADD', KEYS[5], now + wait + grace, job)
  return {0, wait, reason}
end

redis.call('ZADD', KEYS[1], now, call .. ':' .. cost)
redis.call('HSET', KEYS[3], 'tokens', tokens + cost, 'day', today, 'day_count', day_count + 1)
redis.call('ZADD', KEYS[2], now + lease, call)
if score then
  redis.call('ZREM', KEYS[4], job)
  redis.call('ZREM', KEYS[5], job)
end
return {1, 0, ''}
