-- Reads the phone's verification.
-- KEYS[1]: the phone's key.
-- Returns nil, or {the record, ttl in ms}.
local record = get_record(KEYS[1])
if not read_record(record) then
  return false
end
return {record, redis.call('PTTL', KEYS[1])}
