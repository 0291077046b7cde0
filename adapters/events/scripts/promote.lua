-- Moves the retries that have come due into their shard's stream, where any
-- instance's worker takes them.
-- KEYS: pairs of a shard's stream and its retries (every shard's on one
-- server; one shard's on a cluster, where each pair is its own slot).
-- ARGV: now in unix ms, most to move per shard.
-- Returns how many moved.
local moved = 0
for i = 1, #KEYS, 2 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[i + 1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
  for _, job in ipairs(due) do
    redis.call('XADD', KEYS[i], '*', 'j', job)
    redis.call('ZREM', KEYS[i + 1], job)
  end
  moved = moved + #due
end
return moved
