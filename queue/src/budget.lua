-- One provider's rate budget: a sliding log of the calls granted in the
-- last window (a sorted set of token -> grant time in ms), and under the
-- member "#hold" the time until which the provider asked us to wait (its
-- 429's Retry-After). One key, so one hash slot on a cluster; Redis' clock
-- decides, so every worker agrees whatever their clocks.
--
-- KEYS[1] the provider's key
-- ARGV    operation ("take", "hold" or "read"), limit, window (ms),
--         and a unique token ("take") or the hold's length in ms ("hold")
-- Returns {verdict, ms to wait, calls in the window}: verdict 0 granted
-- (or done), 1 the budget is spent, 2 the provider holds us back.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])

-- Calls granted a whole window ago or earlier no longer count.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local hold = tonumber(redis.call('ZSCORE', KEYS[1], '#hold'))
if hold and hold <= now then
  redis.call('ZREM', KEYS[1], '#hold')
  hold = nil
end
local used = redis.call('ZCARD', KEYS[1])
if hold then
  used = used - 1
end

local function keep(until_ms)
  -- The key lasts as long as anything in it matters, then goes by itself.
  redis.call('PEXPIRE', KEYS[1], math.max(window, until_ms - now) + 1000)
end

if ARGV[1] == 'hold' then
  local until_ms = now + tonumber(ARGV[4])
  if not hold or until_ms > hold then
    redis.call('ZADD', KEYS[1], until_ms, '#hold')
    hold = until_ms
  end
  keep(hold)
  return {0, hold - now, used}
end
if ARGV[1] == 'read' then
  return {0, hold and (hold - now) or 0, used}
end
if hold then
  return {2, hold - now, used}
end
if used >= limit then
  -- The oldest call's grant leaves the window first.
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, math.max(1, tonumber(oldest[2]) + window - now), used}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
keep(now)
return {0, 0, used + 1}
