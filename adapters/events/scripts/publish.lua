-- Keeps an API call's jobs in a shard's stream, unless the shard already
-- holds its share of the outbox's bound; all or nothing.
-- KEYS: the shard's stream, its retries (one slot: the shard's tag).
-- ARGV: the jobs the shard may hold (-1: no bound, for jobs that must be
-- kept), then one encoded job each.
-- Returns the jobs kept, or -1 when the shard is full.
local bound = tonumber(ARGV[1])
if bound >= 0 then
  local held = redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
  if held + #ARGV - 1 > bound then
    return -1
  end
end
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'j', ARGV[i])
end
return #ARGV - 1
