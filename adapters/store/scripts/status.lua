-- Reports a pending code's attempts left and remaining life.
-- KEYS[1]: the phone's key. Returns nil, or {attempts left, ttl in ms}.
local left = redis.call('HGET', KEYS[1], 'a')
if not left then
  return false
end
return {tonumber(left), redis.call('PTTL', KEYS[1])}
