-- Notes who took the SMS, if the pending code is still the one sent.
-- KEYS[1]: the phone's key. ARGV: hash, the delivery's fields as record.rs
-- writes them (from the first line break on).
-- Returns 1 if noted, 0 if the code was replaced or is gone.
local record = get_record(KEYS[1])
if not record then
  return 0
end
local hash, attempts = read_record(record)
if hash ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], write_record(hash, attempts, {}) .. ARGV[2], 'KEEPTTL')
return 1
