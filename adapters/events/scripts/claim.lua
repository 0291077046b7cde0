-- Takes over the jobs other workers have held too long, from every shard
-- on one server in one call (XAUTOCLAIM per stream).
-- KEYS: the shards' streams. ARGV: the group, this worker's name, the idle
-- ms past which a job is taken over, most per shard.
-- Returns each stream's claimed entries, in the order of KEYS.
local claimed = {}
for i, stream in ipairs(KEYS) do
  claimed[i] = redis.call('XAUTOCLAIM', stream, ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])[2]
end
return claimed
