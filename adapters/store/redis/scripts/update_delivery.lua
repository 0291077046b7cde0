-- Applies a provider's report if it names the code's message and moves its
-- state forward (a higher rank); late or repeated reports change nothing.
-- KEYS[1]: the phone's key.
-- ARGV: provider, message id, state, rank, error code ('' for none), unix seconds.
-- Returns 1 if applied, 0 otherwise.
-- pcall: a key of another type (a hash, as otpd stored codes before) is no code.
local record = redis.pcall('GET', KEYS[1])
if type(record) ~= 'string' then
  return 0
end
-- The record (record.rs): 64 bytes of hash, then lines: the attempts left,
-- provider, message id, state, rank, unix seconds, error code.
local f = {}
for line in string.gmatch(string.sub(record, 65) .. '\n', '([^\n]*)\n') do
  f[#f + 1] = line
end
if f[2] ~= ARGV[1] or f[3] ~= ARGV[2] then
  return 0
end
if tonumber(f[5] or '0') >= tonumber(ARGV[4]) then
  return 0
end
local error_code = ARGV[5]
if error_code == '' then
  error_code = f[7] or ''
end
local fields = {f[1], f[2], f[3], ARGV[3], ARGV[4], ARGV[6], error_code}
redis.call('SET', KEYS[1], string.sub(record, 1, 64) .. table.concat(fields, '\n'), 'KEEPTTL')
return 1
