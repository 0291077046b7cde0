-- Notes who took the SMS, if the pending code is still the one sent.
-- KEYS[1]: the phone's key. ARGV: hash, the delivery's fields as record.rs
-- writes them (from the first line break on).
-- Returns 1 if noted, 0 if the code was replaced or is gone.
-- pcall: a key of another type (a hash, as otpd stored codes before) is no code.
local record = redis.pcall('GET', KEYS[1])
if type(record) ~= 'string' or string.sub(record, 1, 64) ~= ARGV[1] then
  return 0
end
local delivery = string.find(record, '\n', 65, true)
local head = delivery and string.sub(record, 1, delivery - 1) or record
redis.call('SET', KEYS[1], head .. ARGV[2], 'KEEPTTL')
return 1
