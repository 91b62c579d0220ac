-- Keep a phone's new one-time code (its keyed hash), replacing any older one,
-- and count it as sent for the campaign day.
--
-- KEYS: 1 the phone's code hash, 2 the campaign day's counters
-- ARGV: 1 the code's keyed hash, 2 the code's lifetime (ms), 3 seconds the
--       day's counters live

redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'w', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'sent', 1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 0
