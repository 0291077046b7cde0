-- Reads the phone's verification.
-- KEYS[1]: the phone's key.
-- Returns nil, or {the record, ms it has left}.
local tally, record = split(get_record(KEYS[1]))
local v, now = pending(record, tally, KEYS[1])
if not v then
  return false
end
return {record, life_left(v, tally, KEYS[1], now)}
