-- The flushers' heartbeats: KEYS[1] is the hash consumer name -> last seen
-- (epoch ms). ARGV[1] is the consumer name of the flusher that beats now, or
-- '' to only look; entries older than ARGV[2] ms (flushers that died without
-- retiring) are dropped on the way.
--
-- The time is the Redis server's (TIME), so the flushers' hosts and the host
-- that reads the hash (`votesvc restore`) need not agree on the clock.
-- Returns {now, name1, seen1, name2, seen2, ...} after the update.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seen = redis.call('HGETALL', KEYS[1])
local reply = {string.format('%.0f', now)}
for i = 1, #seen, 2 do
  if now - tonumber(seen[i + 1]) > tonumber(ARGV[2]) then
    redis.call('HDEL', KEYS[1], seen[i])
  elseif seen[i] ~= ARGV[1] then
    reply[#reply + 1] = seen[i]
    reply[#reply + 1] = seen[i + 1]
  end
end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], reply[1])
  reply[#reply + 1] = ARGV[1]
  reply[#reply + 1] = reply[1]
end
return reply
