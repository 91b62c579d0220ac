-- Cast a batch of votes atomically, in order.
--
-- For each vote i (0-based) the keys are
--   KEYS[4i+1] day hash    phone key -> nominee codes voted this campaign day
--   KEYS[4i+2] burst key   the phone's vote times (ms) inside the burst window
--   KEYS[4i+3] tally hash  nominee id -> accepted votes (this counter shard)
--   KEYS[4i+4] stream      accepted votes, read by the ledger flusher
-- ARGV[1..6]: now (ms), seconds the day hash must live, votes per phone per day,
--             votes per nominee per phone per day, burst limit, burst window (ms)
-- ARGV[7+6i .. 12+6i]: phone key, nominee id, nominee code (one character),
--             phone hash, IP hash, vote id
--
-- Returns two integers per vote: status, value
--   0 accepted       value = votes the phone has left today
--   1 rate limited   value = ms until the burst window admits another vote
--   2 already voted  value = 0
--   3 daily limit    value = 0
-- Every attempt that passes the burst check counts toward the burst window;
-- only an accepted vote touches the day hash, the tally and the stream.

local now = ARGV[1]
local now_ms = tonumber(now)
local day_ttl = ARGV[2]
local per_day = tonumber(ARGV[3])
local per_nominee = tonumber(ARGV[4])
local burst_limit = tonumber(ARGV[5])
local burst_ms = tonumber(ARGV[6])
local horizon = now_ms - burst_ms

local out = {}
for i = 0, #KEYS / 4 - 1 do
  local k = 4 * i
  local a = 6 + 6 * i
  local burst_key = KEYS[k + 2]

  local kept = {}
  local log = redis.call('GET', burst_key)
  if log then
    for t in string.gmatch(log, '%d+') do
      if tonumber(t) > horizon then
        kept[#kept + 1] = t
      end
    end
  end

  if #kept >= burst_limit then
    out[#out + 1] = 1
    out[#out + 1] = tonumber(kept[#kept - burst_limit + 1]) + burst_ms - now_ms
  else
    kept[#kept + 1] = now
    redis.call('SET', burst_key, table.concat(kept, ' '), 'PX', burst_ms)

    local day_key = KEYS[k + 1]
    local phone_key, code = ARGV[a + 1], ARGV[a + 3]
    local voted = redis.call('HGET', day_key, phone_key) or ''
    local _, mine = string.gsub(voted, code, '')
    if mine >= per_nominee then
      out[#out + 1] = 2
      out[#out + 1] = 0
    elseif #voted >= per_day then
      out[#out + 1] = 3
      out[#out + 1] = 0
    else
      local nominee = ARGV[a + 2]
      redis.call('HSET', day_key, phone_key, voted .. code)
      redis.call('EXPIRE', day_key, day_ttl)
      redis.call('HINCRBY', KEYS[k + 3], nominee, 1)
      redis.call('XADD', KEYS[k + 4], '*', 'id', ARGV[a + 6], 'ts', now, 'n', nominee,
        'p', ARGV[a + 4], 'ip', ARGV[a + 5])
      out[#out + 1] = 0
      out[#out + 1] = per_day - #voted - 1
    end
  end
end
return out
