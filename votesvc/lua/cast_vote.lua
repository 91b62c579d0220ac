-- Cast a batch of votes atomically, in order, after the per-IP limit.
--
-- KEYS, in two runs:
--   for each of the batch's G counter shards g (0-based)
--     KEYS[4g+1] day hash    phone key -> the phone's record for the campaign day
--     KEYS[4g+2] tally hash  nominee id -> accepted votes (this counter shard)
--     KEYS[4g+3] stream      accepted votes, read by the ledger flusher
--     KEYS[4g+4] marker      present while the shard holds the ledger's data
--   for each of the batch's M client IPs j (0-based)
--     KEYS[4G+2j+1] its counter for the current IP window
--     KEYS[4G+2j+2] its counter for the previous IP window
-- ARGV[1..10]: now (ms, the caller's clock: the day, the burst and IP windows),
--              seconds the day hash must live, votes per phone per day,
--              votes per nominee per phone per day, burst limit, burst window (ms),
--              length of a phone's key in the day hash (a prefix of its hash),
--              deadline: Redis server time (ms) after which the call must change
--              nothing, because the caller has given up and answered 503 (0: none),
--              voting opens at, voting closes at (epoch ms, judged by Redis's clock)
-- ARGV[11..14]: IP limit, IP window (ms), ms elapsed in the current IP window, M
-- ARGV[15+j]:  how many requests of this batch come from IP j
-- ARGV[15+M+i]: vote i as one string, fields separated by one space:
--              phone hash (hex), IP hash (hex), network prefix hash (hex, the
--              stream entry's px; may be empty), vote id (hex), nominee code (one
--              character), shard group g, nominee id, IP number j + 1 (0: the
--              IP limit admitted it in an earlier call), verification method
--              ('none', 'sms' or 'partner:<id>': the stream entry's m, never
--              empty), idempotency key (may be empty: last, so that a vote
--              without one ends with the space before it)
--              (one argument per vote rather than ten: packing and parsing the
--              command is a large share of a batch's cost on both sides)
--
-- A phone's record is one string: the nominee codes it voted for today, then
-- ':' and the times (ms) of its attempts inside the burst window, joined by
-- ',' (e.g. "ACK:1795268333919"); then, only once a vote came with an
-- idempotency key, ':' and one "key/code/vote id/votes left" per such vote,
-- joined by ','. Keeping the burst window and the keys there rather than in
-- keys of their own saves a key to create, expire and delete per vote; both
-- start afresh with the campaign day.
--
-- On a single Redis the whole batch is one call. Redis Cluster keeps an IP's
-- counters and a shard's keys in different hash slots, so there the caller
-- sends one call per IP with no votes, then one per shard with no IPs.
--
-- A shard without its marker has lost its data (FLUSHALL, an old snapshot, an
-- empty new node): its quotas and counts would start again from nothing, so its
-- votes are refused until `votesvc restore` has rebuilt it.
--
-- The order of the checks is the API's: a vote whose idempotency key this phone
-- already used today is answered from its record first (the same acceptance
-- again, or a conflict if the key came with another nominee) and counts toward
-- no limit; then voting closed (by this server's clock: the attempt counts
-- toward no limit); then the per-IP limit, a sliding-window counter (the
-- weighted sum of the current and the previous fixed window, as in the `limits`
-- library): the first requests of each IP up to its room are admitted, in
-- order; then the phone's burst window, already voted, daily limit.
--
-- Returns two integers per vote: status, value
--   0 accepted       value = votes the phone has left today
--   1 rate limited   value = ms until the burst window (or the IP limit) admits another
--   2 already voted  value = 0
--   3 daily limit    value = 0
--   4 too late       value = 0 (past the deadline: nothing was changed)
--   5 replayed       value = votes left when it was accepted (its vote id: see below)
--   6 key conflict   value = 0 (the key was used with another nominee)
--   7 closed         value = 0 before voting opens, 1 after it closed
--   8 data lost      value = 0 (the shard's marker is missing: nothing was changed)
-- then two per IP: how many of its requests were admitted, and when some were
-- not, the ms until it may try again; then the vote id of each replayed vote,
-- in order; and last, the Redis server time (ms), which is also the time an
-- accepted vote is recorded with, and from which the caller keeps its estimate
-- of the server's clock for the deadlines it sends.
-- Every attempt that passes the burst check counts toward the burst window;
-- only an accepted vote adds a code (and its key), and touches the tally and
-- the stream.

local now = ARGV[1]
local now_ms = tonumber(now)
local day_ttl = ARGV[2]
local per_day = tonumber(ARGV[3])
local per_nominee = tonumber(ARGV[4])
local burst_limit = tonumber(ARGV[5])
local burst_ms = tonumber(ARGV[6])
local phone_key_chars = tonumber(ARGV[7])
local deadline = tonumber(ARGV[8])
local opens_ms = tonumber(ARGV[9])
local closes_ms = tonumber(ARGV[10])
local ip_limit = tonumber(ARGV[11])
local ip_window = tonumber(ARGV[12])
local ip_elapsed = tonumber(ARGV[13])
local ips = tonumber(ARGV[14])
local horizon = now_ms - burst_ms

local vote_base = 14 + ips
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

local closed = nil -- 0: not open yet, 1: closed; nil: open
if server_ms < opens_ms then
  closed = 0
elseif server_ms > closes_ms then
  closed = 1
end

local intact = {} -- shard group -> its marker is there
local function shard_intact(group)
  local known = intact[group]
  if known == nil then
    known = redis.call('EXISTS', KEYS[4 * group + 4]) == 1
    intact[group] = known
  end
  return known
end

local vote_format = '^(%x+) (%x+) (%x*) (%x+) (%w) (%d+) (%S+) (%d+) (%S+) (%S*)$'
local function parse(i)
  return string.match(ARGV[vote_base + i], vote_format)
end

local function split(record)
  local voted, log, keyed = string.match(record, '^([^:]*):?([^:]*):?(.*)$')
  return voted, log, keyed
end

-- The answer a phone's record holds for idempotency key `key`: status 5 and
-- the stored vote, status 6 (same key, another nominee), or nil (key unused).
local function remembered(keyed, key, code)
  if key == '' or keyed == '' then
    return nil
  end
  local pattern = ',' .. string.gsub(key, '%-', '%%-') .. '/(%w)/(%x+)/(%d+)'
  local stored_code, vote_id, left = string.match(',' .. keyed, pattern)
  if not stored_code then
    return nil
  end
  if stored_code == code then
    return 5, tonumber(left), vote_id
  end
  return 6, 0, nil
end

-- Votes of a shard that lost its data, and votes with a key this phone already
-- used, are answered before anything else, and take no room from their IP.
local answered = {}
local wanted = {}
for j = 1, ips do
  wanted[j] = tonumber(ARGV[14 + j])
end
-- Most batches have neither: every shard marked, no vote with a key (a vote's
-- argument then ends with the space before its empty key), and then no vote is
-- parsed here.
local all_intact = true
for g = 0, (#KEYS - 2 * ips) / 4 - 1 do
  all_intact = shard_intact(g) and all_intact
end
for i = 1, votes do
  if not (all_intact and string.byte(ARGV[vote_base + i], -1) == 32) then
    local phone_hash, _, _, _, code, group, _, ip, _, key = parse(i)
    group = tonumber(group)
    local status, value, vote_id = nil, 0, nil
    if not shard_intact(group) then
      status = 8
    elseif key ~= '' then
      local phone_key = string.sub(phone_hash, 1, phone_key_chars)
      local record = redis.call('HGET', KEYS[4 * group + 1], phone_key)
      if record then
        local _, _, keyed = split(record)
        status, value, vote_id = remembered(keyed, key, code)
      end
    end
    if status then
      answered[i] = {status, value, vote_id}
      ip = tonumber(ip)
      if ip > 0 then
        wanted[ip] = wanted[ip] - 1
      end
    end
  end
end

-- The IP limit: how many of each IP's requests go on to the votes. While
-- voting is closed nothing is counted.
local granted = {}
local room_left = {}
local retry_after = {}
local weight = (ip_window - ip_elapsed) / ip_window
for j = 1, ips do
  local current_key = KEYS[ip_key_base + 2 * j - 1]
  local admitted = wanted[j]
  local retry = 0
  if not closed then
    local current = tonumber(redis.call('GET', current_key) or '0')
    local previous = tonumber(redis.call('GET', KEYS[ip_key_base + 2 * j]) or '0')
    local room = math.floor(ip_limit - previous * weight - current)
    admitted = math.max(0, math.min(wanted[j], room))
    if admitted > 0 then
      redis.call('INCRBY', current_key, admitted)
      redis.call('PEXPIRE', current_key, 2 * ip_window)
    end
    if admitted < wanted[j] then
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
  end
  granted[j] = admitted
  room_left[j] = admitted
  retry_after[j] = retry
end

local replayed = {} -- vote ids of replayed votes, in order
local expiring = {} -- day hashes whose expiry this call has set already
for i = 1, votes do
  local phone_hash, ip_hash, prefix_hash, vote_id, code, group, nominee, ip, method, key = parse(i)
  local early = answered[i]
  local status, value = nil, 0
  if early then
    status, value = early[1], early[2]
    if early[3] then
      replayed[#replayed + 1] = early[3]
    end
  elseif closed then
    status, value = 7, closed
  else
    ip = tonumber(ip)
    if ip > 0 and room_left[ip] == 0 then
      status, value = 1, retry_after[ip]
    else
      if ip > 0 then
        room_left[ip] = room_left[ip] - 1
      end
      local k = 4 * tonumber(group)
      local day_key = KEYS[k + 1]
      local phone_key = string.sub(phone_hash, 1, phone_key_chars)
      local record = redis.call('HGET', day_key, phone_key) or ''
      local voted, log, keyed = split(record)
      local again, left, first_id = remembered(keyed, key, code)
      if again then -- the same key earlier in this batch
        status, value = again, left
        if first_id then
          replayed[#replayed + 1] = first_id
        end
      else
        local kept = {}
        for t in string.gmatch(log, '%d+') do
          if tonumber(t) > horizon then
            kept[#kept + 1] = t
          end
        end

        if #kept >= burst_limit then
          status = 1
          value = tonumber(kept[#kept - burst_limit + 1]) + burst_ms - now_ms
        else
          kept[#kept + 1] = now
          local _, mine = string.gsub(voted, code, '')
          if mine >= per_nominee then
            status = 2
          elseif #voted >= per_day then
            status = 3
          else
            redis.call('HINCRBY', KEYS[k + 2], nominee, 1)
            redis.call('XADD', KEYS[k + 3], '*', 'id', vote_id, 'ts', server_ms, 'n', nominee,
              'p', phone_hash, 'ip', ip_hash, 'm', method, 'px', prefix_hash)
            voted = voted .. code
            status, value = 0, per_day - #voted
            if key ~= '' then
              local remember = key .. '/' .. code .. '/' .. vote_id .. '/' .. value
              keyed = keyed == '' and remember or keyed .. ',' .. remember
            end
          end
          local updated = voted .. ':' .. table.concat(kept, ',')
          if keyed ~= '' then
            updated = updated .. ':' .. keyed
          end
          redis.call('HSET', day_key, phone_key, updated)
          if not expiring[k] then -- once per shard and call: a command less per vote
            -- The expiry is the same moment (the day's end) whenever it is set, so
            -- only a hash without one gets it: a read instead of a write, and
            -- nothing more in the AOF and the replicas' stream.
            if redis.call('PTTL', day_key) < 0 then
              redis.call('EXPIRE', day_key, day_ttl)
            end
            expiring[k] = true
          end
        end
      end
    end
  end
  out[#out + 1] = status
  out[#out + 1] = value
end
for j = 1, ips do
  out[#out + 1] = granted[j]
  out[#out + 1] = retry_after[j]
end
for _, id in ipairs(replayed) do
  out[#out + 1] = id
end
out[#out + 1] = server_ms
return out
