-- Moves the retries that have come due into the shard's stream, where any
-- instance's worker takes them.
-- KEYS: the shard's stream, its retries. ARGV: now in unix ms, most to move.
-- Returns how many moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[1], '*', 'j', job)
  redis.call('ZREM', KEYS[2], job)
end
return #due
