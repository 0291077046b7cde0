-- Stores a new pending code, replacing any earlier one.
-- KEYS[1]: the phone's key. ARGV: hash, attempts, ttl in ms.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'a', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
