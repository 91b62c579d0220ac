-- Cast a batch of votes atomically, in order, after the per-IP limit.
--
-- KEYS, in two runs:
--   for each of the batch's G counter shards g (0-based)
--     KEYS[3g+1] day hash    phone key -> the phone's record for the campaign day
--     KEYS[3g+2] tally hash  nominee id -> accepted votes (this counter shard)
--     KEYS[3g+3] stream      accepted votes, read by the ledger flusher
--   for each of the batch's M client IPs j (0-based)
--     KEYS[3G+2j+1] its counter for the current IP window
--     KEYS[3G+2j+2] its counter for the previous IP window
-- ARGV[1..8]:  now (ms), seconds the day hash must live, votes per phone per day,
--              votes per nominee per phone per day, burst limit, burst window (ms),
--              length of a phone's key in the day hash (a prefix of its hash),
--              deadline: Redis server time (ms) after which the call must change
--              nothing, because the caller has given up and answered 503 (0: none)
-- ARGV[9..12]: IP limit, IP window (ms), ms elapsed in the current IP window, M
-- ARGV[13+j]:  how many requests of this batch come from IP j
-- ARGV[13+M+i]: vote i as one string, fields separated by one space:
--              phone hash (hex), IP hash (hex), vote id (hex), nominee code (one
--              character), shard group g, nominee id, IP number j + 1 (0: the
--              IP limit admitted it in an earlier call)
--              (one argument per vote rather than seven: packing and parsing the
--              command is a large share of a batch's cost on both sides)
--
-- A phone's record is one string: the nominee codes it voted for today, then
-- ':' and the times (ms) of its attempts inside the burst window, joined by
-- ',' (e.g. "ACK:1795268333919"). Keeping the burst window there rather than in
-- a key of its own saves a key to create, expire and delete per vote; the
-- window starts afresh with the campaign day.
--
-- On a single Redis the whole batch is one call. Redis Cluster keeps an IP's
-- counters and a shard's keys in different hash slots, so there the caller
-- sends one call per IP with no votes, then one per shard with no IPs.
--
-- The per-IP limit is a sliding-window counter (the weighted sum of the
-- current and the previous fixed window, as in the `limits` library): the
-- first requests of each IP up to its room are admitted, in order.
--
-- Returns two integers per vote: status, value
--   0 accepted       value = votes the phone has left today
--   1 rate limited   value = ms until the burst window (or the IP limit) admits another
--   2 already voted  value = 0
--   3 daily limit    value = 0
--   4 too late       value = 0 (past the deadline: nothing was changed)
-- then two per IP: how many of its requests were admitted, and when some were
-- not, the ms until it may try again; and last, the Redis server time (ms),
-- from which the caller keeps its estimate of the server's clock for the
-- deadlines it sends.
-- Every attempt that passes the burst check counts toward the burst window;
-- only an accepted vote adds a code, and touches the tally and the stream.

local now = ARGV[1]
local now_ms = tonumber(now)
local day_ttl = ARGV[2]
local per_day = tonumber(ARGV[3])
local per_nominee = tonumber(ARGV[4])
local burst_limit = tonumber(ARGV[5])
local burst_ms = tonumber(ARGV[6])
local phone_key_chars = tonumber(ARGV[7])
local deadline = tonumber(ARGV[8])
local ip_limit = tonumber(ARGV[9])
local ip_window = tonumber(ARGV[10])
local ip_elapsed = tonumber(ARGV[11])
local ips = tonumber(ARGV[12])
local horizon = now_ms - burst_ms

local vote_base = 12 + ips
local votes = #ARGV - vote_base
local ip_key_base = #KEYS - 2 * ips

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
  for _ = 1, ips do
    out[#out + 1] = 0
    out[#out + 1] = 0
  end
  out[#out + 1] = server_ms
  return out
end

-- The IP limit first: how many of each IP's requests go on to the votes.
local granted = {}
local room_left = {}
local retry_after = {}
local weight = (ip_window - ip_elapsed) / ip_window
for j = 1, ips do
  local current_key = KEYS[ip_key_base + 2 * j - 1]
  local wanted = tonumber(ARGV[12 + j])
  local current = tonumber(redis.call('GET', current_key) or '0')
  local previous = tonumber(redis.call('GET', KEYS[ip_key_base + 2 * j]) or '0')
  local room = math.floor(ip_limit - previous * weight - current)
  local admitted = math.max(0, math.min(wanted, room))
  if admitted > 0 then
    redis.call('INCRBY', current_key, admitted)
    redis.call('PEXPIRE', current_key, 2 * ip_window)
  end
  local retry = 0
  if admitted < wanted then
    -- when the weighted count will have decayed enough to admit one more
    local total = current + admitted
    local slack = ip_limit - 1 - total
    if slack >= 0 then
      retry = math.ceil(ip_window * (1 - slack / previous)) - ip_elapsed
    else
      retry = ip_window - ip_elapsed + math.ceil(ip_window * (1 - (ip_limit - 1) / total))
    end
    retry = math.max(retry, 1)
  end
  granted[j] = admitted
  room_left[j] = admitted
  retry_after[j] = retry
end

local expiring = {} -- day hashes whose expiry this call has set already
for i = 1, votes do
  local phone_hash, ip_hash, vote_id, code, group, nominee, ip =
    string.match(ARGV[vote_base + i], '^(%x+) (%x+) (%x+) (%w) (%d+) (%S+) (%d+)$')
  ip = tonumber(ip)
  if ip > 0 and room_left[ip] == 0 then
    out[#out + 1] = 1
    out[#out + 1] = retry_after[ip]
  else
    if ip > 0 then
      room_left[ip] = room_left[ip] - 1
    end
    local k = 3 * tonumber(group)
    local day_key = KEYS[k + 1]
    local phone_key = string.sub(phone_hash, 1, phone_key_chars)
    local record = redis.call('HGET', day_key, phone_key) or ''
    local voted, log = string.match(record, '^([^:]*):?(.*)$')
    local kept = {}
    for t in string.gmatch(log, '%d+') do
      if tonumber(t) > horizon then
        kept[#kept + 1] = t
      end
    end

    if #kept >= burst_limit then
      out[#out + 1] = 1
      out[#out + 1] = tonumber(kept[#kept - burst_limit + 1]) + burst_ms - now_ms
    else
      kept[#kept + 1] = now
      local _, mine = string.gsub(voted, code, '')
      if mine >= per_nominee then
        out[#out + 1] = 2
        out[#out + 1] = 0
      elseif #voted >= per_day then
        out[#out + 1] = 3
        out[#out + 1] = 0
      else
        redis.call('HINCRBY', KEYS[k + 2], nominee, 1)
        redis.call('XADD', KEYS[k + 3], '*', 'id', vote_id, 'ts', now, 'n', nominee,
          'p', phone_hash, 'ip', ip_hash)
        voted = voted .. code
        out[#out + 1] = 0
        out[#out + 1] = per_day - #voted
      end
      redis.call('HSET', day_key, phone_key, voted .. ':' .. table.concat(kept, ','))
      if not expiring[k] then -- once per shard and call: a command less per vote
        redis.call('EXPIRE', day_key, day_ttl)
        expiring[k] = true
      end
    end
  end
end
for j = 1, ips do
  out[#out + 1] = granted[j]
  out[#out + 1] = retry_after[j]
end
out[#out + 1] = server_ms
return out
