-- May a one-time code be sent now? Checks, in the API's order, and counts a send.
--
-- KEYS (one hash slot: the campaign's verification tag):
--   1 the proof of work's "used" key (ignored when ARGV[1] is 0)
--   2 the phone's resend cooldown
--   3 the phone's sends this campaign day
--   4 the client IP's sends this clock hour
--   5 the client's network prefix's sends this clock hour
--   6 the campaign's sends this minute (the SMS budget)
-- ARGV: 1 check the proof of work (1/0), 2 ms until the proof of work expires,
--       3 voting opens at, 4 voting closes at (epoch ms, judged by Redis's clock),
--       5 resend cooldown (ms), 6 sends per phone per day, 7 seconds the day key lives,
--       8 sends per IP per hour, 9 sends per prefix per hour, 10 sends per minute
--
-- Returns {status, value}:
--   0 counted        every counter has this send; the cooldown runs
--   1 pow replayed   the proof of work was used before
--   2 closed         value 0: not open yet, 1: closed
--   3 cooldown       value = ms left in the resend cooldown
--   4 IP's hourly sends spent
--   5 prefix's hourly sends spent
--   6 phone's daily sends spent
--   7 the minute's SMS budget spent
-- A refused attempt counts toward nothing (a used proof of work stays used).
-- `otp_refund.lua` takes a counted send back when the SMS could not be sent.

if ARGV[1] == '1' then
    if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then
        return {1, 0}
    end
end
local time = redis.call('TIME')
local server_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if server_ms < tonumber(ARGV[3]) then
    return {2, 0}
end
if server_ms > tonumber(ARGV[4]) then
    return {2, 1}
end
local cooldown = redis.call('PTTL', KEYS[2])
if cooldown > 0 then
    return {3, cooldown}
end
if tonumber(redis.call('GET', KEYS[4]) or '0') >= tonumber(ARGV[8]) then
    return {4, 0}
end
if tonumber(redis.call('GET', KEYS[5]) or '0') >= tonumber(ARGV[9]) then
    return {5, 0}
end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[6]) then
    return {6, 0}
end
if tonumber(redis.call('GET', KEYS[6]) or '0') >= tonumber(ARGV[10]) then
    return {7, 0}
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
local function count(key, ttl_seconds)
    if redis.call('INCR', key) == 1 then
        redis.call('EXPIRE', key, ttl_seconds)
    end
end
count(KEYS[3], ARGV[7])
count(KEYS[4], 3660)
count(KEYS[5], 3660)
count(KEYS[6], 120)
return {0, 0}
