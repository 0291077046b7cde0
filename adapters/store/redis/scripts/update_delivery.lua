-- Applies a provider's report if it names the newest SMS and moves its
-- state forward (a higher rank); late or repeated reports change nothing.
-- KEYS[1]: the phone's key.
-- ARGV: provider, message id, state, rank, error code ('' for none), unix seconds.
-- Returns 1 if applied, 0 otherwise.
local tally, record = split(get_record(KEYS[1]))
local v = read_record(record)
if not v then
  return 0
end
-- f: provider, message id, state, rank, unix seconds, error code.
local f = v.delivery
if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] then
  return 0
end
if tonumber(f[4] or '0') >= tonumber(ARGV[4]) then
  return 0
end
local error_code = ARGV[5]
if error_code == '' then
  error_code = f[6] or ''
end
v.delivery = {f[1], f[2], ARGV[3], ARGV[4], ARGV[6], error_code}
redis.call('SET', KEYS[1], tally .. write_record(v), 'KEEPTTL')
return 1
