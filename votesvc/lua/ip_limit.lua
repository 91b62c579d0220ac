-- Admit requests against per-IP sliding-window counters (the weighted sum of
-- the current and the previous fixed window, as in the `limits` library).
--
-- For each client j (0-based): KEYS[2j+1] its counter for the current window,
-- KEYS[2j+2] its counter for the previous window, ARGV[4+j] how many requests
-- of this batch come from it, in order.
-- ARGV[1..3]: limit, window (ms), ms elapsed in the current window.
--
-- Returns two integers per client: how many of its requests are admitted (the
-- first ones), and when some are not, the ms until it may try again.

local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local elapsed = tonumber(ARGV[3])
local weight = (window - elapsed) / window

local out = {}
for j = 0, #KEYS / 2 - 1 do
  local current_key = KEYS[2 * j + 1]
  local wanted = tonumber(ARGV[4 + j])
  local current = tonumber(redis.call('GET', current_key) or '0')
  local previous = tonumber(redis.call('GET', KEYS[2 * j + 2]) or '0')
  local room = math.floor(limit - previous * weight - current)
  local admitted = math.max(0, math.min(wanted, room))
  if admitted > 0 then
    redis.call('INCRBY', current_key, admitted)
    redis.call('PEXPIRE', current_key, 2 * window)
  end
  local retry = 0
  if admitted < wanted then
    -- when the weighted count will have decayed enough to admit one more
    local total = current + admitted
    local slack = limit - 1 - total
    if slack >= 0 then
      retry = math.ceil(window * (1 - slack / previous)) - elapsed
    else
      retry = window - elapsed + math.ceil(window * (1 - (limit - 1) / total))
    end
    retry = math.max(retry, 1)
  end
  out[#out + 1] = admitted
  out[#out + 1] = retry
end
return out
