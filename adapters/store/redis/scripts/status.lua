-- Reports a pending code's attempts left, remaining life and delivery.
-- KEYS[1]: the phone's key.
-- Returns nil, or {attempts left, ttl in ms, provider, message id, state,
-- error code, updated at}, the last five nil until an SMS went out.
local entry = redis.call('HMGET', KEYS[1], 'a', 'p', 'm', 's', 'e', 'u')
if not entry[1] then
  return false
end
return {tonumber(entry[1]), redis.call('PTTL', KEYS[1]), entry[2], entry[3], entry[4], entry[5], entry[6]}
