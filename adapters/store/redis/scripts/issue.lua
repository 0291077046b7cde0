-- Stores a code unless the phone's limits forbid it now: beside the codes of
-- the pending verification when it is kept, else as a new verification.
-- (With neither limit on and nothing kept, the store sends a plain SET.)
-- KEYS: the verification, the resend cooldown, the send counter (one slot:
-- the phone).
-- ARGV: the new verification's record (record.rs), ttl ms, cooldown ms (0:
-- off), sends per window (0: off), window ms, 1 to keep a pending one.
-- Returns {0, the record stored}, {1, ms to wait} too soon, {2, ms to wait}
-- quota used up.
local ttl_ms, cooldown_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
local limit, window_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
if cooldown_ms > 0 then
  local wait = redis.call('PTTL', KEYS[2])
  if wait > 0 then
    return {1, wait}
  end
end
if limit > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= limit then
  return {2, redis.call('PTTL', KEYS[3])}
end
local stored = ARGV[1]
local v = ARGV[6] == '1' and read_record(get_record(KEYS[1]))
if v and v.attempts > 0 then
  -- A resend: the same verification and attempts, one more live code.
  local fresh = read_record(ARGV[1])
  local now = now_ms()
  live_codes(v, KEYS[1], now)
  while #v.codes >= MAX_CODES do
    table.remove(v.codes, 1)
  end
  v.codes[#v.codes + 1] = {fresh.codes[1][1], now + ttl_ms}
  v.sends = v.sends + 1
  local times = {}
  for t in string.gmatch(v.times, '%d+') do
    times[#times + 1] = t
  end
  times[#times + 1] = fresh.created
  while #times > MAX_TIMES do
    table.remove(times, 1)
  end
  v.times = table.concat(times, ' ')
  v.delivery = fresh.delivery
  stored = write_record(v)
end
redis.call('SET', KEYS[1], stored, 'PX', ttl_ms)
if cooldown_ms > 0 then
  redis.call('SET', KEYS[2], 1, 'PX', cooldown_ms)
end
if limit > 0 and redis.call('INCR', KEYS[3]) == 1 then
  redis.call('PEXPIRE', KEYS[3], window_ms)
end
return {0, stored}
