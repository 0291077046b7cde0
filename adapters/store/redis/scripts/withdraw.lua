-- Removes the pending code only if it is still the given one.
-- KEYS[1]: the phone's key. ARGV[1]: the hash of the code to withdraw.
local record = get_record(KEYS[1])
-- read_record gives the hash first.
if record and read_record(record) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
