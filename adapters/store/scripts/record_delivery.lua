-- Notes who took the SMS, if the pending code is still the one sent.
-- KEYS[1]: the phone's key. ARGV: hash, provider, message id.
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'p', ARGV[2], 'm', ARGV[3])
  return 1
end
return 0
