-- Drop published attempts from the due set, unless something re-parked them meanwhile.
--
-- KEYS[1]  due attempts             (gemq:webhooks:due)
-- ARGV[1]  the score the publisher left them with (ms): its claim, or the first attempt's grace time
-- ARGV[2..] members just published
--
-- A member whose score changed was re-parked by webhook_begin.lua (a worker already took the
-- attempt and holds its lease): that entry is the attempt's safety net and stays.
-- Returns how many members were removed.

local removed = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
