-- The layout of what otpd keeps per phone and per guessing client, the Lua
-- side of record.rs, joined onto the front of every script that reads or
-- writes them; and the parts of domain/rules.rs (PhoneState) and
-- domain/guesses.rs (ClientGuesses) that more than one script needs, each
-- under its Rust name.
--
-- A phone's key holds its whole state (domain::PhoneState) as MessagePack
-- (cmsgpack), every part an array whose places are named here, once:
--   state         {tally, wrong, verifications (oldest first)}
--                 (tally, wrong: false for none)
--   tally         {sends, last_ms, window_end_ms, until_ms}
--   wrong         {count, window_end_ms}
--   verification  {id, scope, codes (oldest first), attempts,
--                 phone_attempts, created_at, sends, send_times, delivery,
--                 channels, next}
--                 (delivery false or absent: none; channels: one letter
--                 per send time, `s`ms, `w`hatsapp or `v`oice; absent or
--                 short, as an older otpd wrote it: the first are SMS;
--                 next: the workflow's channels not tried yet, letters in
--                 order, absent: none)
--   code          {hash, expires_ms}
--   delivery      {provider, message_id, state, updated_at, error_code}
--                 (error_code absent: none)
-- Arrays, not maps by name: the names were 190 B of every pending code's
-- 700 and the hashing of each on every call (docs/performance.md, eighth
-- round). Times are unix ms from Redis's clock, except created_at,
-- send_times and the delivery's, which are the caller's unix seconds.
-- Hashes are 64 raw bytes: MessagePack strings carry any bytes. The key
-- lives until the state's last part ends (PhoneState::expires_at); an empty
-- state is no key. record.rs reads what the scripts return.
local TALLY, WRONG, V = 1, 2, 3
local T_SENDS, T_LAST_MS, T_WINDOW_END_MS, T_UNTIL_MS = 1, 2, 3, 4
local W_COUNT, W_WINDOW_END_MS = 1, 2
local ID, SCOPE, CODES, ATTEMPTS, PHONE_ATTEMPTS, CREATED_AT, SENDS, SEND_TIMES, DELIVERY, CHANNELS, NEXT =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
local HASH, EXPIRES_MS = 1, 2
local D_PROVIDER, D_MESSAGE_ID, D_STATE, D_UPDATED_AT, D_ERROR_CODE = 1, 2, 3, 4, 5
--
-- A client's waits (domain::ClientGuesses), at <prefix>ip:{<net>}:guesses:
-- {in_a_row, wait_until_ms, forget_at_ms}, living until forget_at_ms.

-- domain/verification.rs; a test in mod.rs holds these to the Rust ones.
local MAX_LIVE_CODES, MAX_VERIFICATIONS, MAX_SEND_TIMES = 9, 8, 10

-- Redis's clock in unix ms, read once per script.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The MessagePack value at `key`, or nil. pcall: a key of another type, or
-- bytes of another layout (an older otpd's), is nothing otpd can use.
local function unpacked(key)
  local raw = redis.pcall('GET', key)
  if type(raw) ~= 'string' then
    return nil
  end
  local ok, value = pcall(cmsgpack.unpack, raw)
  if ok and type(value) == 'table' then
    return value
  end
end

-- A state kept as maps by name, as otpd wrote it before the arrays, in
-- today's layout: a rolling upgrade forgets no attempt. The next save
-- writes it as arrays.
local function from_names(old)
  local state = {false, false, {}}
  if type(old.tally) == 'table' then
    local t = old.tally
    state[TALLY] = {t.sends, t.last_ms, t.window_end_ms, t.until_ms}
  end
  if type(old.wrong) == 'table' then
    state[WRONG] = {old.wrong.count, old.wrong.window_end_ms}
  end
  for _, r in ipairs(old.v) do
    local d = r.delivery
    state[V][#state[V] + 1] = {r.id, r.scope, r.codes, r.attempts, r.phone_attempts,
      r.created_at, r.sends, r.send_times,
      d and {d.provider, d.message_id, d.state, d.updated_at, d.error_code}}
  end
  return state
end

-- The channel letter of each of the record's send times, in step with
-- them: an older record's first sends were SMS.
local function channels_of(r)
  local channels = r[CHANNELS] or ''
  return string.rep('s', #r[SEND_TIMES] - #channels) .. channels
end

-- Keeps `channels` as the record's; its delivery, if none, becomes false,
-- so the array packs with no hole.
local function set_channels(r, channels)
  r[DELIVERY] = r[DELIVERY] or false
  r[CHANNELS] = channels
end

-- The phone's state; an empty one when it has none.
local function load(key)
  local state = unpacked(key)
  if state and type(state[V]) == 'table' then
    return state
  elseif state and type(state.v) == 'table' then
    return from_names(state)
  end
  return {false, false, {}}
end

-- Record::expires_at: the unix ms its newest code expires.
local function expires_at(r)
  local at = 0
  for _, c in ipairs(r[CODES]) do
    at = math.max(at, c[EXPIRES_MS])
  end
  return at
end

-- PhoneState::sweep: drops every part that has ended by `now`.
local function sweep(state, now)
  local kept = {}
  for _, r in ipairs(state[V]) do
    if expires_at(r) > now then
      kept[#kept + 1] = r
    end
  end
  state[V] = kept
  if state[TALLY] and state[TALLY][T_UNTIL_MS] <= now then
    state[TALLY] = false
  end
  if state[WRONG] and state[WRONG][W_WINDOW_END_MS] <= now then
    state[WRONG] = false
  end
end

-- Writes the state back for as long as its last part lives
-- (PhoneState::expires_at), or deletes the key of an empty one
-- (PhoneState::is_empty). Scripts sweep the state once, as they load it,
-- and call this only when a rule changed it: what a sweep alone drops has
-- ended, and the key's expiry, that of its last part, stays right.
local function save(key, state)
  local tally, wrong = state[TALLY], state[WRONG]
  if not tally and not wrong and #state[V] == 0 then
    redis.call('DEL', key)
    return
  end
  local last = tally and tally[T_UNTIL_MS] or 0
  if wrong then
    last = math.max(last, wrong[W_WINDOW_END_MS])
  end
  for _, r in ipairs(state[V]) do
    last = math.max(last, expires_at(r))
  end
  redis.call('SET', key, cmsgpack.pack(state), 'PXAT', string.format('%d', last))
end

-- PhoneState::find: the index of the scope's verification `id`, or nil.
local function find(state, scope, id)
  for i, r in ipairs(state[V]) do
    if r[ID] == id and r[SCOPE] == scope then
      return i
    end
  end
end

-- A guess ceiling from ARGV: limit (0: off, as GuessCeiling::is_off says)
-- and window ms.
local function ceiling_of(limit, window_ms)
  return {limit = tonumber(limit), window_ms = tonumber(window_ms)}
end

-- PhoneState::room: the wrong codes the ceiling still allows beside those
-- the live verifications hold reserved, and the ms until more room comes;
-- nil when the ceiling is off.
local function room(state, ceiling, now)
  if ceiling.limit == 0 then
    return nil
  end
  local wrong = state[WRONG]
  local reserved = 0
  for _, r in ipairs(state[V]) do
    reserved = reserved + r[ATTEMPTS]
  end
  local left = math.max(ceiling.limit - ((wrong and wrong[W_COUNT] or 0) + reserved), 0)
  -- Room comes back when the window ends or a reserving verification does.
  local next_ms = wrong and wrong[W_WINDOW_END_MS]
  for _, r in ipairs(state[V]) do
    if r[ATTEMPTS] > 0 then
      local at = expires_at(r)
      if not next_ms or at < next_ms then
        next_ms = at
      end
    end
  end
  return left, math.max((next_ms or now) - now, 0)
end

-- A client's waits from ARGV, starting at `at`: free, first delay ms,
-- longest delay ms, most in a row (0: off, as GuessBudget::is_off says),
-- memory ms.
local function budget_of(at)
  return {free = tonumber(ARGV[at]), first_ms = tonumber(ARGV[at + 1]),
    max_ms = tonumber(ARGV[at + 2]), max_consecutive = tonumber(ARGV[at + 3]),
    memory_ms = tonumber(ARGV[at + 4])}
end

-- GuessBudget::after: the delay ms after `fails` wrong guesses in a row,
-- 0 for none, or 'blocked'.
local function after(budget, fails)
  if budget.max_consecutive == 0 then
    return 0
  end
  if fails >= budget.max_consecutive then
    return 'blocked'
  end
  if fails < budget.free then
    return 0
  end
  local doublings = math.min(fails - budget.free, 63)
  -- 1u32.checked_shl: past 31 doublings, u32::MAX.
  local times = doublings < 32 and 2 ^ doublings or 4294967295
  return math.min(budget.first_ms * times, budget.max_ms)
end

-- A client's waits (ClientGuesses) at `key`, or nil: {in_a_row,
-- wait_until_ms, forget_at_ms}, as arrays; kept by name before them.
local function guesses(key)
  local held = unpacked(key)
  if held and held.in_a_row then
    return {held.in_a_row, held.wait_until_ms, held.forget_at_ms}
  end
  return held
end
local G_IN_A_ROW, G_WAIT_UNTIL_MS, G_FORGET_AT_MS = 1, 2, 3

-- ClientGuesses::wait: the ms a client whose waits are `held` must wait
-- before its next guess by phone is heard, or nil.
local function client_wait(held, budget, now)
  if not held or held[G_FORGET_AT_MS] <= now or budget.max_consecutive == 0 then
    return nil
  end
  if after(budget, held[G_IN_A_ROW]) == 'blocked' then
    return held[G_FORGET_AT_MS] - now
  end
  if held[G_WAIT_UNTIL_MS] > now then
    return held[G_WAIT_UNTIL_MS] - now
  end
end

-- ClientGuesses::after_wrong, kept at `key` until it is forgotten; a right
-- guess forgets the count. `held`: the waits as they were.
local function note_guess(key, held, right, budget, now)
  if right then
    redis.call('DEL', key)
    return
  end
  local in_a_row = 1
  if held and held[G_FORGET_AT_MS] > now then
    in_a_row = held[G_IN_A_ROW] + 1
  end
  local delay = after(budget, in_a_row)
  local forget_at = now + budget.memory_ms
  local wait_until = (delay ~= 'blocked' and delay > 0) and now + delay or 0
  redis.call('SET', key, cmsgpack.pack({in_a_row, wait_until, forget_at}), 'PXAT',
    string.format('%d', forget_at))
end

-- Takes one from each counter KEYS[first..], the window starting with the
-- first one taken; `quota(i)` gives the i-th one's limit and window ms.
-- Returns a function that gives back what was taken, and, for the first
-- counter that had none left, its index (0-based) and the ms until its
-- window ends, having given back all it took.
-- Nearly every request passes, so each counter is taken (INCR) rather than
-- read first; a counter this call created is deleted, not left at 0
-- without an expiry.
local function take_all(first, count, quota)
  local taken = {}
  local function give_back()
    for i, n in ipairs(taken) do
      if n == 1 then
        redis.call('DEL', KEYS[first + i - 1])
      else
        redis.call('DECR', KEYS[first + i - 1])
      end
    end
  end
  for i = 1, count do
    local key = KEYS[first + i - 1]
    local limit, window_ms = quota(i)
    local n = redis.call('INCR', key)
    taken[i] = n
    if n == 1 then
      redis.call('PEXPIRE', key, window_ms)
    end
    if n > tonumber(limit) then
      local wait = math.max(redis.call('PTTL', key), 0)
      give_back()
      return give_back, i - 1, wait
    end
  end
  return give_back
end
