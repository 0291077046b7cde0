-- Keeps an API call's jobs in a shard's stream, unless the shard already
-- holds its share of the outbox's bound; all or nothing.
-- KEYS: the shard's stream, its retries (one slot: the shard's tag).
-- ARGV: the jobs the shard may hold, then one encoded job each.
-- Returns the jobs kept, or -1 when the shard is full.
local held = redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
if held + #ARGV - 1 > tonumber(ARGV[1]) then
  return -1
end
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'j', ARGV[i])
end
return #ARGV - 1
