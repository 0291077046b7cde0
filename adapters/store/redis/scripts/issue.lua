-- Stores a new pending code unless the phone's limits forbid it now. (With
-- neither limit on, the store sends a plain SET instead of this script.)
-- KEYS: the code, the resend cooldown, the send counter (one slot: the phone).
-- ARGV: the code's record (record.rs), ttl ms, cooldown ms (0: off), sends
-- per window (0: off), window ms.
-- Returns {0} stored, {1, ms to wait} too soon, {2, ms to wait} quota used up.
local cooldown_ms, limit, window_ms = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if cooldown_ms > 0 then
  local wait = redis.call('PTTL', KEYS[2])
  if wait > 0 then
    return {1, wait}
  end
end
if limit > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= limit then
  return {2, redis.call('PTTL', KEYS[3])}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if cooldown_ms > 0 then
  redis.call('SET', KEYS[2], 1, 'PX', cooldown_ms)
end
if limit > 0 and redis.call('INCR', KEYS[3]) == 1 then
  redis.call('PEXPIRE', KEYS[3], window_ms)
end
return {0}
