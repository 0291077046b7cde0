-- Notes who took the SMS, if the pending code is still the one sent.
-- KEYS[1]: the phone's key. ARGV: hash, provider, message id, unix seconds.
-- Returns 1 if noted, 0 if the code was replaced or is gone.
if redis.call('HGET', KEYS[1], 'h') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'p', ARGV[2], 'm', ARGV[3], 's', 'queued', 'r', 0, 'u', ARGV[4])
redis.call('HDEL', KEYS[1], 'e')
return 1
