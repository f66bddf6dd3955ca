-- Admission for one Gemini call: check every limit of a model at once and admit or say how long to wait.
--
-- KEYS[1]  req       zset   request log of the sliding window (member = call id, score = ms)
-- KEYS[2]  tok       zset   token charges in the window (member = "<call id>:<tokens>", score = ms)
-- KEYS[3]  toktotal  string sum of the charges in KEYS[2]
-- KEYS[4]  day       string requests on the current Pacific day
-- KEYS[5]  leases    zset   concurrency leases (member = call id, score = expiry ms)
-- KEYS[6]  pause     string model paused until (ms), set after a 429
-- KEYS[7]  dayout    string present while the day quota is spent
-- KEYS[8]  waiting   zset   waiting jobs (member = job id, score = priority rank * 1e13 + first-wait ms)
-- KEYS[9]  waitexp   zset   same members, score = when the waiting entry lapses (ms)
-- ARGV[1]  job id      ARGV[2]  call id      ARGV[3]  priority rank (0 high, 1 normal, 2 low)
-- ARGV[4]  token cost (estimate)
-- ARGV[5]  rpm cap     ARGV[6]  tpm cap      ARGV[7]  rpd         ARGV[8]  concurrency cap   (0 = unlimited;
--          caps already lowered by the priority's reserve)
-- ARGV[9]  window ms   ARGV[10] lease ms     ARGV[11] seconds until the day resets
-- ARGV[12] grace ms a waiting entry survives beyond its wait
--
-- Returns {code, ms, reason}: code 1 = admitted; 0 = wait ms; 2 = day quota spent, resets in ms.
-- Time is Redis's own clock, so every worker on every machine shares one.  The request log, the
-- token charges and the leases are kept whatever the limits, so GET /v1/limits can show use.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local job, call, rank, cost = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local rpm, tpm, rpd, conc = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local window, lease, grace = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[12])

if redis.call('EXISTS', KEYS[7]) == 1 then
  return {2, redis.call('PTTL', KEYS[7]), 'rpd'}
end

-- Forget what left the window: requests, token charges (keeping the running total), leases.
local cutoff = now - window
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
if #expired > 0 then
  local freed = 0
  for _, member in ipairs(expired) do
    freed = freed + tonumber(string.match(member, ':(%d+)$'))
  end
  redis.call('DECRBY', KEYS[3], freed)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)

-- Our place among waiting jobs: higher priorities first, then first come, first served.  A
-- registered waiter keeps its place (ZRANK orders equal scores too); a newcomer queues behind
-- everyone of its priority already waiting, including those that arrived in the same millisecond.
local score, ahead = nil, 0
if redis.call('ZCARD', KEYS[8]) > 0 then
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', now)
  if #lapsed > 0 then
    redis.call('ZREM', KEYS[8], unpack(lapsed))
    redis.call('ZREM', KEYS[9], unpack(lapsed))
  end
  score = redis.call('ZSCORE', KEYS[8], job)
  if score then
    ahead = redis.call('ZRANK', KEYS[8], job)
  else
    ahead = redis.call('ZCOUNT', KEYS[8], '-inf', rank * 1e13 + now)
  end
end

local wait, reason = 0, ''
local function need(ms, why)
  if ms > wait then wait, reason = ms, why end
end

local paused = tonumber(redis.call('GET', KEYS[6]) or '0')
if paused > now then need(paused - now, 'paused') end

if rpm > 0 then
  local used = redis.call('ZCARD', KEYS[1])
  if used + ahead >= rpm then
    -- The (ahead - free + 1)-th oldest request must leave the window before our turn comes.
    local idx = used + ahead - rpm
    local entry = redis.call('ZRANGE', KEYS[1], idx, idx, 'WITHSCORES')
    if entry[2] then
      need(tonumber(entry[2]) + window - now, 'rpm')
    else
      need(window * (1 + math.floor((idx - used) / rpm)), 'rpm')
    end
  end
end

if tpm > 0 then
  local total = tonumber(redis.call('GET', KEYS[3]) or '0')
  if total > 0 and total + cost > tpm then
    -- Walk the oldest charges until enough tokens would have left the window.
    local entries = redis.call('ZRANGE', KEYS[2], 0, 199, 'WITHSCORES')
    local free_at = window
    for i = 1, #entries, 2 do
      total = total - tonumber(string.match(entries[i], ':(%d+)$'))
      if total + cost <= tpm then
        free_at = tonumber(entries[i + 1]) + window - now
        break
      end
    end
    need(free_at, 'tpm')
  end
end

if conc > 0 and redis.call('ZCARD', KEYS[5]) + ahead >= conc then
  -- Slots come back when calls finish; ask again soon (a lapsed lease frees one at the latest).
  need(250, 'concurrency')
end

if rpd > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= rpd then
  redis.call('SET', KEYS[7], '1', 'EX', ARGV[11])
  return {2, tonumber(ARGV[11]) * 1000, 'rpd'}
end

if wait > 0 then
  redis.call('ZADD', KEYS[8], 'NX', score or (rank * 1e13 + now), job)
  redis.call('ZADD', KEYS[9], now + wait + grace, job)
  return {0, wait, reason}
end

redis.call('ZADD', KEYS[1], now, call)
redis.call('ZADD', KEYS[2], now, call .. ':' .. cost)
redis.call('INCRBY', KEYS[3], cost)
if redis.call('INCR', KEYS[4]) == 1 then
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[11]) + 3600)
end
redis.call('ZADD', KEYS[5], now + lease, call)
if score then
  redis.call('ZREM', KEYS[8], job)
  redis.call('ZREM', KEYS[9], job)
end
return {1, 0, ''}
