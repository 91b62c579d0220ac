-- Create the flusher's consumer group on one vote stream, from its start, if missing.
--
-- KEYS[1] the vote stream (created empty when missing)
-- ARGV[1] the group's name
--
-- Returns 1 when the group was created, 0 when it was there already.
-- A script rather than XGROUP CREATE sent by the client: Redis Cluster clients
-- route a script by its declared key, while redis-py's async cluster client
-- routes XGROUP by a parse of the command that a fresh client may not have
-- loaded yet ("No way to dispatch this command to Redis Cluster. Missing key.").

local created = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
if type(created) == 'table' and created.err then
    if string.find(created.err, 'BUSYGROUP', 1, true) then
        return 0
    end
    return redis.error_reply(created.err)
end
return 1
