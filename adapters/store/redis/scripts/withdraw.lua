-- Removes the pending code only if it is still the given one.
-- KEYS[1]: the phone's key. ARGV[1]: the hash of the code to withdraw.
-- pcall: a key of another type (a hash, as otpd stored codes before) is no code.
local record = redis.pcall('GET', KEYS[1])
if type(record) == 'string' and string.sub(record, 1, 64) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
