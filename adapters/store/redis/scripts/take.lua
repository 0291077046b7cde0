-- Takes one from a counter that allows ARGV[1] per window of ARGV[2] ms,
-- the window starting with the first one taken (the step path: on a
-- cluster the counters live apart from the phone).
-- Returns {'granted'} or {'exhausted', ms until the window ends}.
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then
  return {'exhausted', math.max(redis.call('PTTL', KEYS[1]), 0)}
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {'granted'}
