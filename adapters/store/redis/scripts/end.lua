-- Ends the phone's verification if it is the one named and still pending
-- (attempts left): a cancel, or an approval made elsewhere.
-- KEYS[1]: the phone's key. ARGV[1]: the verification's id.
-- Returns nil, or {the record as it was, ms it had left}.
local tally, record = split(get_record(KEYS[1]))
local v, now = pending(record, tally, KEYS[1])
if not v or v.id ~= ARGV[1] or v.attempts <= 0 then
  return false
end
local left = life_left(v, tally, KEYS[1], now)
remove(KEYS[1], tally)
return {record, left}
