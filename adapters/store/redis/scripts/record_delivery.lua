-- Notes who took the SMS, if its code is still the verification's newest.
-- KEYS[1]: the phone's key. ARGV: hash, the delivery's fields as record.rs
-- writes them (from the first line break on).
-- Returns 1 if noted, 0 if the code was replaced or is gone.
local tally, record = split(get_record(KEYS[1]))
local v = read_record(record)
if not v or #v.codes == 0 or v.codes[#v.codes][1] ~= ARGV[1] then
  return 0
end
v.delivery = {}
redis.call('SET', KEYS[1], tally .. write_record(v) .. ARGV[2], 'KEEPTTL')
return 1
