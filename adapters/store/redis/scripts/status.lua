-- Reports a pending code's attempts left, remaining life and delivery.
-- KEYS[1]: the phone's key.
-- Returns nil, or {attempts left, ttl in ms, provider, message id, state,
-- error code, updated at}, the last five nil until an SMS went out.
local record = get_record(KEYS[1])
if not record then
  return false
end
local _, attempts, f = read_record(record)
-- false, not nil, for a missing field: a nil would end the reply there.
local error_code = f[6] ~= '' and f[6] or false
return {tonumber(attempts), redis.call('PTTL', KEYS[1]), f[1] or false, f[2] or false, f[3] or false, error_code, f[5] or false}
