-- Cast a batch of votes atomically, in order.
--
-- The batch's phones fall in G counter shards (G = (#KEYS - n) / 3 for n votes);
-- for each shard group g (0-based) the keys are
--   KEYS[3g+1] day hash    phone key -> nominee codes voted this campaign day
--   KEYS[3g+2] tally hash  nominee id -> accepted votes (this counter shard)
--   KEYS[3g+3] stream      accepted votes, read by the ledger flusher
-- and then one key per vote i (0-based):
--   KEYS[3G+i+1] burst key   the phone's vote times (ms) inside the burst window
-- ARGV[1..8]: now (ms), seconds the day hash must live, votes per phone per day,
--             votes per nominee per phone per day, burst limit, burst window (ms),
--             length of a phone's key in the day hash (a prefix of its hash),
--             deadline: Redis server time (ms) after which the call must change
--             nothing, because the caller has given up and answered 503 (0: none)
-- ARGV[9+i]:  vote i as one string, fields separated by one space:
--             phone hash (hex), IP hash (hex), vote id (hex), nominee code (one
--             character), shard group g, nominee id
--             (one argument per vote rather than six: packing and parsing the
--             command is a large share of a batch's cost on both sides)
--
-- Returns two integers per vote: status, value
--   0 accepted       value = votes the phone has left today
--   1 rate limited   value = ms until the burst window admits another vote
--   2 already voted  value = 0
--   3 daily limit    value = 0
--   4 too late       value = 0 (past the deadline: nothing was changed)
-- and last, the Redis server time (ms), from which the caller keeps its
-- estimate of the server's clock for the deadlines it sends.
-- Every attempt that passes the burst check counts toward the burst window;
-- only an accepted vote touches the day hash, the tally and the stream.

local now = ARGV[1]
local now_ms = tonumber(now)
local day_ttl = ARGV[2]
local per_day = tonumber(ARGV[3])
local per_nominee = tonumber(ARGV[4])
local burst_limit = tonumber(ARGV[5])
local burst_ms = tonumber(ARGV[6])
local phone_key_chars = tonumber(ARGV[7])
local deadline = tonumber(ARGV[8])
local horizon = now_ms - burst_ms

local votes = #ARGV - 8
local burst_base = #KEYS - votes

local clock = redis.call('TIME')
local server_ms = clock[1] * 1000 + math.floor(clock[2] / 1000)
local out = {}
if deadline > 0 and server_ms > deadline then
  -- A stalled server caught up with a call whose caller has already answered
  -- 503: counting it now would count a vote that was reported as failed.
  for _ = 1, votes do
    out[#out + 1] = 4
    out[#out + 1] = 0
  end
  out[#out + 1] = server_ms
  return out
end

local expiring = {} -- day hashes whose expiry this call has set already
for i = 1, votes do
  local burst_key = KEYS[burst_base + i]

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

    local phone_hash, ip_hash, vote_id, code, group, nominee =
      string.match(ARGV[8 + i], '^(%x+) (%x+) (%x+) (%w) (%d+) (%S+)$')
    local k = 3 * tonumber(group)
    local day_key = KEYS[k + 1]
    local phone_key = string.sub(phone_hash, 1, phone_key_chars)
    local voted = redis.call('HGET', day_key, phone_key) or ''
    local _, mine = string.gsub(voted, code, '')
    if mine >= per_nominee then
      out[#out + 1] = 2
      out[#out + 1] = 0
    elseif #voted >= per_day then
      out[#out + 1] = 3
      out[#out + 1] = 0
    else
      redis.call('HSET', day_key, phone_key, voted .. code)
      if not expiring[k] then -- once per shard and call: a command less per vote
        redis.call('EXPIRE', day_key, day_ttl)
        expiring[k] = true
      end
      redis.call('HINCRBY', KEYS[k + 2], nominee, 1)
      redis.call('XADD', KEYS[k + 3], '*', 'id', vote_id, 'ts', now, 'n', nominee,
        'p', phone_hash, 'ip', ip_hash)
      out[#out + 1] = 0
      out[#out + 1] = per_day - #voted - 1
    end
  end
end
out[#out + 1] = server_ms
return out
