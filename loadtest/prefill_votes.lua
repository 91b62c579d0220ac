-- Append synthetic accepted votes to the stream KEYS[1]. ARGV[1] is the number
-- of fields of an entry; then come the entries, each as its field and value
-- pairs (``VoteEntry.fields()`` in votesvc/entry.py: the format lives there).
-- For the flusher benchmark only: it never runs in the service.
local width = 2 * tonumber(ARGV[1])
for i = 2, #ARGV, width do
  redis.call('XADD', KEYS[1], '*', unpack(ARGV, i, i + width - 1))
end
return (#ARGV - 1) / width
