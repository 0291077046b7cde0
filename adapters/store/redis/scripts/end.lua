-- Ends the phone's verification if it is the one named and still pending
-- (attempts left): a cancel, or an approval made elsewhere.
-- KEYS[1]: the phone's key. ARGV[1]: the verification's id.
-- Returns nil, or {the record as it was, ttl in ms}.
local record = get_record(KEYS[1])
local v = read_record(record)
if not v or v.id ~= ARGV[1] or v.attempts <= 0 then
  return false
end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
return {record, ttl}
