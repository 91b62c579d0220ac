-- Acknowledge the entries of the vote stream KEYS[1] that the flusher wrote to
-- the ledger, then trim the stream: group ARGV[1], entry ids in ARGV[2]
-- separated by spaces (one argument: far cheaper to send than thousands).
--
-- Trimming keeps every entry that is still pending (read, not yet written) and
-- every entry not yet read: the stream is cut just below the oldest pending
-- entry, or just past the last entry the group was given. Everything below
-- that point was acknowledged, hence is in the ledger. XTRIM drops whole
-- nodes at once, much cheaper than deleting entry by entry.
local ids = {}
for id in string.gmatch(ARGV[2], '%S+') do
  ids[#ids + 1] = id
end
local acked = 0
for i = 1, #ids, 500 do
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(ids, i, math.min(i + 499, #ids)))
end

local keep_from
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
if pending[1] > 0 then
  keep_from = pending[2]
else
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {}
    for k = 1, #group, 2 do
      info[group[k]] = group[k + 1]
    end
    if info['name'] == ARGV[1] then
      local ms, seq = string.match(info['last-delivered-id'], '^(%d+)-(%d+)$')
      keep_from = ms .. '-' .. (tonumber(seq) + 1)
    end
  end
end
if keep_from then
  redis.call('XTRIM', KEYS[1], 'MINID', keep_from)
end
return acked
