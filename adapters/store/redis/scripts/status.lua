-- Reports a pending code's attempts left, remaining life and delivery.
-- KEYS[1]: the phone's key.
-- Returns nil, or {attempts left, ttl in ms, provider, message id, state,
-- error code, updated at}, the last five nil until an SMS went out.
-- pcall: a key of another type (a hash, as otpd stored codes before) is no code.
local record = redis.pcall('GET', KEYS[1])
if type(record) ~= 'string' then
  return false
end
-- The record (record.rs): 64 bytes of hash, then lines: the attempts left,
-- and once an SMS went out its provider, message id, state, rank, unix
-- seconds and error code.
local f = {}
for line in string.gmatch(string.sub(record, 65) .. '\n', '([^\n]*)\n') do
  f[#f + 1] = line
end
-- false, not nil, for a missing field: a nil would end the reply there.
local error_code = f[7] ~= '' and f[7] or false
return {tonumber(f[1]), redis.call('PTTL', KEYS[1]), f[2] or false, f[3] or false, f[4] or false, error_code, f[6] or false}
