-- Applies a provider's report if it names the code's message and moves its
-- state forward (a higher rank); late or repeated reports change nothing.
-- KEYS[1]: the phone's key.
-- ARGV: provider, message id, state, rank, error code ('' for none), unix seconds.
-- Returns 1 if applied, 0 otherwise.
local entry = redis.call('HMGET', KEYS[1], 'p', 'm', 'r')
if entry[1] ~= ARGV[1] or entry[2] ~= ARGV[2] then
  return 0
end
if tonumber(entry[3] or '0') >= tonumber(ARGV[4]) then
  return 0
end
redis.call('HSET', KEYS[1], 's', ARGV[3], 'r', ARGV[4], 'u', ARGV[6])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'e', ARGV[5])
end
return 1
