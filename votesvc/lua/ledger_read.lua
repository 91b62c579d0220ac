-- Read up to ARGV[3] new entries of the vote stream KEYS[1] for consumer ARGV[2]
-- of group ARGV[1] (XREADGROUP ... >), packed for a cheap parse by the flusher:
-- one line per entry, "<entry id> <vote id> <ts> <nominee> <phone hash> <ip hash>",
-- lines joined by "\n". A field the entry lacks is written as "-".
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
  'STREAMS', KEYS[1], '>')
if not reply then
  return ''
end
local lines = {}
for _, entry in ipairs(reply[1][2]) do
  local raw = entry[2]
  if #raw == 10 and raw[1] == 'id' and raw[3] == 'ts' and raw[5] == 'n' and raw[7] == 'p'
      and raw[9] == 'ip' then
    -- the vote path's own field order: no table to build
    lines[#lines + 1] = entry[1] .. ' ' .. raw[2] .. ' ' .. raw[4] .. ' ' .. raw[6] .. ' '
      .. raw[8] .. ' ' .. raw[10]
  else
    local f = {}
    for i = 1, #raw, 2 do
      f[raw[i]] = raw[i + 1]
    end
    lines[#lines + 1] = entry[1] .. ' ' .. (f['id'] or '-') .. ' ' .. (f['ts'] or '-') .. ' '
      .. (f['n'] or '-') .. ' ' .. (f['p'] or '-') .. ' ' .. (f['ip'] or '-')
  end
end
return table.concat(lines, '\n')
