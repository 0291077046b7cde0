-- Claims an idempotency key. KEYS[1]: its slot. ARGV: the request's
-- fingerprint (64 hex digits), ms to hold a fresh claim.
-- The value: '0' and the fingerprint while held, '1', the fingerprint and
-- the answer once answered.
-- Returns {0} fresh, {1} in flight, {2} used for another request,
-- {3, the answer}.
local held = redis.call('GET', KEYS[1])
if not held then
  redis.call('SET', KEYS[1], '0' .. ARGV[1], 'PX', ARGV[2])
  return {0}
end
if string.sub(held, 2, 65) ~= ARGV[1] then
  return {2}
end
if string.sub(held, 1, 1) == '0' then
  return {1}
end
return {3, string.sub(held, 66)}
