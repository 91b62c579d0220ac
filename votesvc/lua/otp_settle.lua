-- Settle a verify attempt on the code `otp_check.lua` read: a right code is
-- used up (it verifies once); a wrong one counts, and the code dies after the
-- last allowed wrong try.
--
-- KEYS: 1 the phone's code hash, 2 the campaign day's counters
-- ARGV: 1 the code hash that was compared, 2 1 if it matched, 0 if not,
--       3 wrong tries allowed, 4 seconds the day's counters live
--
-- Returns {0}: verified; {1, tries left}: wrong; {2}: the code is gone or was
-- replaced meanwhile (used by a concurrent attempt, or a new code was sent).

if redis.call('HGET', KEYS[1], 'h') ~= ARGV[1] then
    return {2}
end
if ARGV[2] == '1' then
    redis.call('DEL', KEYS[1])
    redis.call('HINCRBY', KEYS[2], 'verified', 1)
    redis.call('EXPIRE', KEYS[2], ARGV[4])
    return {0}
end
local wrong = redis.call('HINCRBY', KEYS[1], 'w', 1)
local left = tonumber(ARGV[3]) - wrong
if left <= 0 then
    redis.call('DEL', KEYS[1])
    left = 0
end
return {1, left}
