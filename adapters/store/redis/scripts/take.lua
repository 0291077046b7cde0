-- Takes one from a counter that allows ARGV[1] per window of ARGV[2] ms,
-- the window starting with the first one taken.
-- Returns {1} granted, or {0, ms until the window ends}.
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then
  return {0, redis.call('PTTL', KEYS[1])}
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {1}
