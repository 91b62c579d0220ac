-- Take back a send that `otp_send.lua` counted but the SMS sender failed:
-- the attempt counts against no limit (the cooldown ends too).
--
-- KEYS: 1 the cooldown, 2 the phone's day sends, 3 the IP's hour sends,
--       4 the prefix's hour sends, 5 the minute's budget (as in otp_send.lua)

redis.call('DEL', KEYS[1])
for i = 2, 5 do
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then
        redis.call('DECR', KEYS[i])
    end
end
return 0
