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
-- Constant time: Redis's Lua (5.1) interns every string, so `==` on two
-- strings compares two pointers, whatever the bytes; and every candidate is
-- compared, whichever matches.
local matched = 0
for i = 1, #ARGV do
  if ARGV[i] == stored then
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
