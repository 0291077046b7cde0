-- Removes delivered jobs from the shard's stream: acknowledged and deleted
-- in one step, so none stays behind as an entry no one will read.
-- KEYS[1]: the shard's stream. ARGV: the group, then the entries' ids.
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
