-- Stores a code unless a quota or the phone's limits forbid it now: beside
-- the codes of the pending verification when it is kept, else as a new
-- verification. A refusal changes nothing: what the quotas took is given
-- back before it returns. (With no limit on and nothing kept, the store
-- sends a plain SET.)
-- KEYS: the phone's key, then one counter per quota (the client's, the
-- service's: on one server only, a cluster keeps them on other nodes).
-- ARGV: the new verification's record (record.rs), ttl ms, cooldown ms (0:
-- off), sends per window (0: off, at most 1000: config.rs), window ms, 1 to
-- keep a pending one, then per quota its limit and window ms.
-- Returns {0, the record stored}, {1, ms to wait} too soon, {2, ms to wait}
-- the phone's quota used up, {3, ms to wait, which quota (0-based)} a quota
-- used up.
-- Nearly every send passes, so the quotas are taken first (an INCR each,
-- given back on a refusal) rather than read and then taken; and the phone's
-- tally rides in its key (record.lua), so a fresh phone's send creates one
-- key. At the defaults that is 6 commands (docs/performance.md).
local ttl_ms, cooldown_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
local limit, window_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local keep = ARGV[6] == '1'
local quotas = #KEYS - 1

local function give_back(taken)
  for i = 1, taken do
    redis.call('DECR', KEYS[1 + i])
  end
end

for i = 1, quotas do
  local key = KEYS[1 + i]
  local n = redis.call('INCR', key)
  if n == 1 then
    redis.call('PEXPIRE', key, ARGV[6 + 2 * i])
  end
  if n > tonumber(ARGV[5 + 2 * i]) then
    local wait = redis.call('PTTL', key)
    give_back(i)
    return {3, wait, i - 1}
  end
end

local counted = cooldown_ms > 0 or limit > 0
-- Without a tally to keep, a new verification is written blind.
if not counted and not keep then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl_ms)
  return {0, ARGV[1]}
end
local now = now_ms()
local tally, record = split(get_record(KEYS[1]))
local sends, last, window_end = read_tally(tally)
if limit > 0 and now >= window_end then
  sends, window_end = 0, now + window_ms
end
if cooldown_ms > 0 and now - last < cooldown_ms then
  give_back(quotas)
  return {1, cooldown_ms - (now - last)}
end
if limit > 0 and sends >= limit then
  give_back(quotas)
  return {2, window_end - now}
end

local expiry = now + ttl_ms
local stored = ARGV[1]
local v = keep and pending(record, tally, KEYS[1], now)
if v and v.attempts > 0 then
  -- A resend: the same verification and attempts, one more live code.
  local fresh = read_record(ARGV[1])
  live_codes(v, KEYS[1], now)
  while #v.codes >= MAX_CODES do
    table.remove(v.codes, 1)
  end
  v.codes[#v.codes + 1] = {fresh.codes[1][1], expiry}
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
elseif counted then
  -- Beside a tally the key outlives the code: it gets its own expiry.
  local at = ID_LEN + 2 + HASH_LEN
  stored = string.sub(stored, 1, at - 1) .. string.format('%013d', expiry) .. string.sub(stored, at + 13)
end
if not counted then
  redis.call('SET', KEYS[1], stored, 'PX', ttl_ms)
  return {0, stored}
end
if limit == 0 then
  sends, window_end = -1, 0
end
local life = math.max(ttl_ms, window_end - now, cooldown_ms)
redis.call('SET', KEYS[1], write_tally(sends + 1, now, window_end) .. stored, 'PX', life)
return {0, stored}
