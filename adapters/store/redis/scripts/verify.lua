-- Checks a guess, counts the attempt and consumes the verification,
-- atomically, under the client's quota and the phone's guess budget
-- (domain/guesses.rs, GuessBudget::after).
-- KEYS: the phone's key, its wrong guesses in a row (one slot: the
-- phone), then, when the quota is on, the client's counter.
-- The wrong guesses hold "<wrong in a row>", or "<wrong in a row> <unix ms
-- before which no guess is checked>" while the budget makes the phone wait.
-- ARGV: free guesses, first delay ms, longest delay ms, most in a row (0: no
-- budget), ms a count is kept after its last wrong guess, the verification's
-- id ('' for whichever), the client's quota and its window ms (0: off);
-- then one candidate hash per hash key.
-- Returns {0} not found, {1, the record} approved, {2, ms left} locked,
-- {3, attempts left, the record, 1 if the budget now blocks the phone else 0}
-- mismatch, {4, ms to wait} the budget allows no guess now, {5, ms to wait}
-- the client's quota is used up.
-- The quota is taken first and given back on a refusal: one INCR for the
-- guesses it lets through, rather than a GET and an INCR.
local quota = tonumber(ARGV[7])
if quota > 0 then
  local n = redis.call('INCR', KEYS[3])
  if n == 1 then
    redis.call('PEXPIRE', KEYS[3], ARGV[8])
  end
  if n > quota then
    local wait = redis.call('PTTL', KEYS[3])
    redis.call('DECR', KEYS[3])
    return {5, wait}
  end
end
local tally, record = split(get_record(KEYS[1]))
local v, now = pending(record, tally, KEYS[1])
if not v or (ARGV[6] ~= '' and ARGV[6] ~= v.id) then
  return {0}
end
local free, first_ms, max_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local most, memory_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local fails = 0
if most > 0 then
  local held = redis.pcall('GET', KEYS[2])
  local n, wait_until = string.match(type(held) == 'string' and held or '', '^(%d+) ?(%d*)$')
  fails, wait_until = tonumber(n) or 0, tonumber(wait_until)
  if fails >= most then
    return {4, redis.call('PTTL', KEYS[2])}
  end
  if wait_until then
    now = now or now_ms()
    if wait_until > now then
      return {4, wait_until - now}
    end
  end
end
if v.attempts <= 0 then
  return {2, life_left(v, tally, KEYS[1], now)}
end
if tally == '' then
  live_codes(v, KEYS[1])
end
-- Constant time: Redis's Lua (5.1) interns every string, so `==` on two
-- strings compares two pointers, whatever the bytes; and every candidate is
-- compared with every live code, whichever matches.
local matched = 0
for i = 9, #ARGV do
  for _, c in ipairs(v.codes) do
    if ARGV[i] == c[1] then
      matched = 1
    end
  end
end
if matched == 1 then
  if tally ~= '' then
    remove(KEYS[1], tally)
    if most > 0 then
      redis.call('DEL', KEYS[2])
    end
  elseif most > 0 then
    redis.call('DEL', KEYS[1], KEYS[2])
  else
    redis.call('DEL', KEYS[1])
  end
  return {1, record}
end
v.attempts = v.attempts - 1
local after = write_record(v)
redis.call('SET', KEYS[1], tally .. after, 'KEEPTTL')
local blocked = 0
if most > 0 then
  fails = fails + 1
  local held = fails
  if fails < most and fails >= free then
    local delay = math.floor(math.min(first_ms * 2 ^ math.min(fails - free, 63), max_ms))
    if delay > 0 then
      held = fails .. ' ' .. ((now or now_ms()) + delay)
    end
  end
  redis.call('SET', KEYS[2], held, 'PX', memory_ms)
  if fails >= most then
    blocked = 1
  end
end
return {3, v.attempts, after, blocked}
