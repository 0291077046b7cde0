-- Removes the pending code only if it is still the given one.
-- KEYS[1]: the phone's key. ARGV[1]: the hash of the code to withdraw.
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
