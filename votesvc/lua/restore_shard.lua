-- Rebuild one counter shard from the ledger, atomically.
--
-- KEYS[1] tally hash   KEYS[2] today's day hash   KEYS[3] vote stream
-- ARGV[1] day start (ms)  ARGV[2] day end (ms, exclusive)  ARGV[3] day expiry (epoch s)
-- ARGV[4] phone key length
-- ARGV[5] n: nominee id / code pairs follow (ARGV[6 .. 5+2n])
-- then the id of the last stream entry the caller read ('' if it read none),
-- then t: nominee / votes pairs, then d: phone key / codes pairs.
--
-- The figures are the caller's: the ledger's votes of the shard (valid ones in
-- the tally; today's, void ones included, in the day records: voiding gives no
-- quota back) plus the stream entries it read that the ledger does not hold.
-- The stream's entries after the last one read came in since (the vote path
-- appends only while the shard's marker exists, and the caller removed it
-- before reading): each is counted on top. Returns how many there were.

local day_start, day_end = tonumber(ARGV[1]), tonumber(ARGV[2])
local expire_at, key_chars = ARGV[3], tonumber(ARGV[4])

local codes = {}
local i = 5
local n = tonumber(ARGV[i])
for j = 1, n do
  codes[ARGV[i + 2 * j - 1]] = ARGV[i + 2 * j]
end
i = i + 2 * n + 1
local after = ARGV[i] == '' and '-' or '(' .. ARGV[i]
i = i + 1

redis.call('DEL', KEYS[1])
local t = tonumber(ARGV[i])
for j = 1, t do
  redis.call('HSET', KEYS[1], ARGV[i + 2 * j - 1], ARGV[i + 2 * j])
end
i = i + 2 * t + 1

redis.call('DEL', KEYS[2])
local d = tonumber(ARGV[i])
for j = 1, d do
  redis.call('HSET', KEYS[2], ARGV[i + 2 * j - 1], ARGV[i + 2 * j])
end

local late = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[3], after, '+')) do
  local fields = {}
  local raw = entry[2]
  for k = 1, #raw, 2 do
    fields[raw[k]] = raw[k + 1]
  end
  if fields['n'] and fields['p'] then
    redis.call('HINCRBY', KEYS[1], fields['n'], 1)
    local ts = tonumber(fields['ts'])
    local code = codes[fields['n']]
    if code and ts and ts >= day_start and ts < day_end then
      local phone_key = string.sub(fields['p'], 1, key_chars)
      local voted = redis.call('HGET', KEYS[2], phone_key) or ''
      redis.call('HSET', KEYS[2], phone_key, voted .. code)
    end
    late = late + 1
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('EXPIREAT', KEYS[2], expire_at)
end
return late
