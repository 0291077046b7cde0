-- Reports a pending code's attempts left, remaining life and carrier.
-- KEYS[1]: the phone's key.
-- Returns nil, or {attempts left, ttl in ms, provider or nil, message id or nil}.
local entry = redis.call('HMGET', KEYS[1], 'a', 'p', 'm')
if not entry[1] then
  return false
end
return {tonumber(entry[1]), redis.call('PTTL', KEYS[1]), entry[2], entry[3]}
