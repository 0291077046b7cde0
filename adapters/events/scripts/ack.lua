-- Removes delivered jobs from their shards' streams: acknowledged and
-- deleted in one step, so none stays behind as an entry no one will read.
-- KEYS: the shards' streams (all on one node). ARGV: the group, then for
-- each stream the number of its entries and their ids.
local at, removed = 2, 0
for _, stream in ipairs(KEYS) do
  local n = tonumber(ARGV[at])
  redis.call('XACK', stream, ARGV[1], unpack(ARGV, at + 1, at + n))
  removed = removed + redis.call('XDEL', stream, unpack(ARGV, at + 1, at + n))
  at = at + 1 + n
end
return removed
