-- Makes the shard's stream and the workers' group if they aren't there.
-- KEYS[1]: the shard's stream. ARGV[1]: the group.
-- pcall: BUSYGROUP (made already, by this or another instance) is fine.
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
return 1
