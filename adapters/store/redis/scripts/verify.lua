-- Checks a guess, counts the attempt and consumes the code, atomically.
-- KEYS[1]: the phone's key. ARGV: one candidate hash per hash key.
-- Returns {0} not found, {1} approved, {2, ms left} locked, {3, attempts left} mismatch.
local entry = redis.call('HMGET', KEYS[1], 'h', 'a')
local stored, left = entry[1], tonumber(entry[2])
if not stored or not left then
  return {0}
end
if left <= 0 then
  return {2, redis.call('PTTL', KEYS[1])}
end
-- Constant time: every byte of every candidate is compared, whatever differs.
local matched = 0
for i = 1, #ARGV do
  local candidate = ARGV[i]
  local diff = (#candidate == #stored) and 0 or 1
  for j = 1, #stored do
    diff = bit.bor(diff, bit.bxor(string.byte(stored, j), string.byte(candidate, j) or 0))
  end
  if diff == 0 then
    matched = 1
  end
end
if matched == 1 then
  redis.call('DEL', KEYS[1])
  return {1}
end
left = left - 1
redis.call('HSET', KEYS[1], 'a', left)
return {3, left}
