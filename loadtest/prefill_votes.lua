-- Append ARGV[2] synthetic accepted votes to the stream KEYS[1], numbered from
-- ARGV[1], with the fields the vote path writes (id, ts, n, p, ip).
-- For the flusher benchmark only: it never runs in the service.
local first, count, nominees, ts0 = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
for n = first, first + count - 1 do
  local h = redis.sha1hex(tostring(n))
  redis.call('XADD', KEYS[1], '*',
    'id', string.format('%012x', ts0 + n) .. string.sub(h, 1, 20),
    'ts', tostring(ts0 + n),
    'n', string.format('N%02d', n % nominees + 1),
    'p', h .. string.sub(h, 1, 24),
    'ip', string.sub(h, 25, 40))
end
return count
