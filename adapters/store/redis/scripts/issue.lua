-- Stores a code unless a quota or the phone's limits forbid it now: beside
-- the codes of the pending verification when it is kept, else as a new
-- verification. Every check comes before any write, so a refusal changes
-- nothing. (With no limit on and nothing kept, the store sends a plain SET.)
-- KEYS: the verification, the phone's sends, then one counter per quota
-- (the client's, the service's: on one server only, a cluster keeps them on
-- other nodes).
-- The phone's sends are one integer, the unix ms of the last send × 1024 +
-- the sends in the window (at most 1000, config.rs), so Redis keeps it in
-- the key's own object with no string beside it (32 bytes a phone fewer);
-- it lives for the window (or the cooldown, if longer).
-- ARGV: the new verification's record (record.rs), ttl ms, cooldown ms (0:
-- off), sends per window (0: off), window ms, 1 to keep a pending one, then
-- per quota its limit and window ms.
-- Returns {0, the record stored}, {1, ms to wait} too soon, {2, ms to wait}
-- the phone's quota used up, {3, ms to wait, which quota (0-based)} a quota
-- used up.
local ttl_ms, cooldown_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
local limit, window_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local quotas = #KEYS - 2
for i = 1, quotas do
  local key = KEYS[2 + i]
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[5 + 2 * i]) then
    return {3, redis.call('PTTL', key), i - 1}
  end
end
local now, sends, last
local counted = cooldown_ms > 0 or limit > 0
if counted then
  now = now_ms()
  -- An older otpd kept a plain count here: it reads as sent at time 0.
  local packed = tonumber(redis.call('GET', KEYS[2])) or 0
  sends, last = packed % 1024, math.floor(packed / 1024)
  if cooldown_ms > 0 and now - last < cooldown_ms then
    return {1, cooldown_ms - (now - last)}
  end
  if limit > 0 and sends >= limit then
    return {2, redis.call('PTTL', KEYS[2])}
  end
end
local stored = ARGV[1]
local v = ARGV[6] == '1' and read_record(get_record(KEYS[1]))
if v and v.attempts > 0 then
  -- A resend: the same verification and attempts, one more live code.
  local fresh = read_record(ARGV[1])
  now = now or now_ms()
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
if counted then
  local left = redis.call('PTTL', KEYS[2])
  if left <= 0 then
    left = limit > 0 and window_ms or 0
  end
  -- '%.0f': a Lua number turns into a string with only 14 digits.
  local packed = string.format('%.0f', now * 1024 + sends + 1)
  redis.call('SET', KEYS[2], packed, 'PX', math.max(left, cooldown_ms))
end
for i = 1, quotas do
  if redis.call('INCR', KEYS[2 + i]) == 1 then
    redis.call('PEXPIRE', KEYS[2 + i], ARGV[6 + 2 * i])
  end
end
return {0, stored}
