-- PhoneState::check: checks a guess from a scope, by id against that
-- verification, by phone against every pending verification of the scope
-- still in reach by phone while the ceiling has room. On one server it is
-- also OtpStore::guess, in the memory store's order: the client's quota of
-- verifies, its waits (guesses by phone), the check, then the guess noted
-- for its waits.
-- KEYS: the phone's key; on one server also the client's verifies counter
-- and its waits (ip:{<net>}:guesses), used when ARGV turns them on.
-- ARGV: the scope, the verification's id ('' for a guess by phone), the
-- ceiling's limit (0: off) and window ms, the verifies quota's limit (0:
-- not here) and window ms, the client's waits (free, first delay ms,
-- longest delay ms, most in a row (0: not here), memory ms), then one
-- candidate hash per hash key.
-- Returns {'approved', the verification packed as it was, now},
-- {'mismatch', attempts left, 1 if the ceiling is now full else 0, the
-- newest reached verification packed, now}, {'locked', ms}, {'not_found'},
-- {'throttled', ms}, or {'refused', ms, 0} (the quota).
local key, scope, id = KEYS[1], ARGV[1], ARGV[2]
local ceiling = ceiling_of(ARGV[3], ARGV[4])
local quota, quota_window_ms = tonumber(ARGV[5]), ARGV[6]
local waits = budget_of(7)
local first_candidate = 12

if quota > 0 then
  local _, refused, wait = take_all(2, 1, function()
    return quota, quota_window_ms
  end)
  if refused then
    return {'refused', wait, refused}
  end
end
local now = now_ms()
local held
if waits.max_consecutive > 0 then
  held = guesses(KEYS[3])
  local wait = client_wait(held, waits, now)
  if wait then
    return {'throttled', wait}
  end
end

local state = load(key)
sweep(state, now)
local v = state[V]

-- Locked until the newest of the verifications at `at` expires.
local function locked(at)
  local last = now
  for _, i in ipairs(at) do
    last = math.max(last, expires_at(v[i]))
  end
  return {'locked', last - now}
end

local reached = {}
if id ~= '' then
  local i = find(state, scope, id)
  if not i then
    return {'not_found'}
  end
  if v[i][ATTEMPTS] == 0 then
    return locked({i})
  end
  reached = {i}
else
  local scoped = {}
  for i, r in ipairs(v) do
    if r[SCOPE] == scope then
      scoped[#scoped + 1] = i
    end
  end
  if #scoped == 0 then
    return {'not_found'}
  end
  for _, i in ipairs(scoped) do
    if v[i][PHONE_ATTEMPTS] > 0 and v[i][ATTEMPTS] > 0 then
      reached[#reached + 1] = i
    end
  end
  if #reached == 0 then
    return locked(scoped)
  end
  local left, retry = room(state, ceiling, now)
  if left == 0 then
    return {'throttled', retry}
  end
end

-- Record::matches, constant time: Redis's Lua (5.1) interns every string,
-- so `==` on two strings compares two pointers, whatever the bytes; and
-- every candidate is compared with every live code of every verification
-- reached, whichever matches.
local matched = {}
for n, i in ipairs(reached) do
  local found = false
  for _, c in ipairs(v[i][CODES]) do
    if c[EXPIRES_MS] > now then
      for k = first_candidate, #ARGV do
        found = (ARGV[k] == c[HASH]) or found
      end
    end
  end
  matched[n] = found
end
for n, i in ipairs(reached) do
  if matched[n] then
    local record = table.remove(v, i)
    save(key, state)
    if waits.max_consecutive > 0 then
      note_guess(KEYS[3], held, true, waits, now)
    end
    return {'approved', cmsgpack.pack(record), now}
  end
end

for _, i in ipairs(reached) do
  local record = v[i]
  if id ~= '' then
    record[ATTEMPTS] = record[ATTEMPTS] - 1
  else
    record[PHONE_ATTEMPTS] = record[PHONE_ATTEMPTS] - 1
  end
end
-- PhoneState::count_wrong
if ceiling.limit > 0 then
  local wrong = state[WRONG]
  if wrong then
    wrong[W_COUNT] = wrong[W_COUNT] + 1
  else
    state[WRONG] = {1, now + ceiling.window_ms}
  end
end
local newest = v[reached[#reached]]
local attempts_left = id ~= '' and newest[ATTEMPTS] or newest[PHONE_ATTEMPTS]
local blocked = room(state, ceiling, now) == 0 and 1 or 0
local packed = cmsgpack.pack(newest)
save(key, state)
if waits.max_consecutive > 0 then
  note_guess(KEYS[3], held, false, waits, now)
end
return {'mismatch', attempts_left, blocked, packed, now}
