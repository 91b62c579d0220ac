-- Count a verify attempt for the client IP, then read the phone's live code.
--
-- KEYS: 1 the IP's verify attempts this clock hour, 2 the phone's code hash
-- ARGV: 1 verify attempts per IP per hour
--
-- Returns {0, code hash}: a live code (compared by the caller in constant time),
-- {1}: the IP's attempts are spent, {2}: no live code.
-- Every attempt that gets here counts, so codes cannot be guessed across many
-- phones from one address.

local tries = redis.call('INCR', KEYS[1])
if tries == 1 then
    redis.call('EXPIRE', KEYS[1], 3660)
end
if tries > tonumber(ARGV[1]) then
    return {1}
end
local hash = redis.call('HGET', KEYS[2], 'h')
if not hash then
    return {2}
end
return {0, hash}
