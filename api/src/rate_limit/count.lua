-- One shard of one limit: a hash of client -> requests counted in the
-- current window, plus the window's number under "#window". Redis' clock
-- decides the window, so every api instance agrees whatever their clocks.
--
-- KEYS[1] the shard
-- ARGV    client, add (0 or 1), limit, capacity (clients), window (ms)
-- Returns {verdict, count, ms left in the window}: verdict 0 counted,
-- 1 over the limit (nothing counted), 2 not counted (the shard is full).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local length = tonumber(ARGV[5])
local window = math.floor(now / length)
local left = (window + 1) * length - now
local add = tonumber(ARGV[2])

if redis.call('HGET', KEYS[1], '#window') ~= tostring(window) then
  -- A new window: forget the last one's clients at once, not one by one.
  redis.call('DEL', KEYS[1])
  if add == 0 then
    return {0, 0, left}
  end
  redis.call('HSET', KEYS[1], '#window', tostring(window))
  redis.call('PEXPIRE', KEYS[1], left)
end

local count = redis.call('HGET', KEYS[1], ARGV[1])
if count then
  count = tonumber(count)
else
  if add == 0 then
    return {0, 0, left}
  end
  -- One field is the window's number, the rest are clients.
  if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[4]) then
    return {2, 0, left}
  end
  count = 0
end
if count >= tonumber(ARGV[3]) then
  return {1, count, left}
end
if add > 0 then
  count = redis.call('HINCRBY', KEYS[1], ARGV[1], add)
end
return {0, count, left}
