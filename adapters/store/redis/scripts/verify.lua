-- Checks a guess, counts the attempt and consumes the code, atomically.
-- KEYS[1]: the phone's key. ARGV: one candidate hash per hash key.
-- Returns {0} not found, {1} approved, {2, ms left} locked, {3, attempts left} mismatch.
-- pcall: a key of another type (a hash, as otpd stored codes before) is no code.
local record = redis.pcall('GET', KEYS[1])
if type(record) ~= 'string' then
  return {0}
end
-- The record (record.rs): 64 bytes of hash, the attempts left, then the
-- delivery from the first line break on.
local stored = string.sub(record, 1, 64)
local delivery = string.find(record, '\n', 65, true)
local left = tonumber(string.sub(record, 65, (delivery or 0) - 1))
if not left then
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
redis.call('SET', KEYS[1], stored .. left .. (delivery and string.sub(record, delivery) or ''), 'KEEPTTL')
return {3, left}
