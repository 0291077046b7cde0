-- PhoneState::open: stores a code as the send's mode says unless the
-- phone's limits, its number of verifications or its ceiling refuse it now;
-- on one server, first takes one from each of the client's and the
-- service's quotas (OtpStore::admit). A refusal changes nothing: what the
-- quotas took is given back.
-- KEYS: the phone's key, then one counter per quota, then the pumping
-- breaker's keys (one server only: a cluster keeps them on other nodes, and
-- takes and counts them apart).
-- ARGV: the code's verification id, scope, hash, ttl ms, attempts, unix s
-- sent, its channel's letter ('': where its verification goes next, SMS
-- for a new one) and a new verification's next ones (record.lua); the mode ('new', 'resend', 'keep', 'replace' or
-- 'fallback'), the id a resend or fallback names and the message a
-- fallback follows ('' otherwise); the cooldown ms, the phone's sends per window (0:
-- off), its window ms, 1 if any limit is on; the ceiling's limit (0: off)
-- and window ms; the number of the pumping breaker's keys, which follow
-- the quotas' (0: no count); per quota its limit and window ms; with a
-- count, the 9 argv of `count_traffic` (traffic_count.lua); then,
-- for a receipt known before the send, the delivery: provider, message id,
-- state, unix s and, if it has one, its error code.
-- Returns {'stored', the verification packed, now} (and, with a count,
-- what `count_traffic` returns: a stored code is counted in the same step,
-- a refused one never), {'too_soon', ms},
-- {'quota', ms}, {'ceiling', ms}, {'not_found'}, or {'refused', ms, which
-- quota (0-based)}.
local key = KEYS[1]
local otp = {id = ARGV[1], scope = ARGV[2], hash = ARGV[3], ttl_ms = tonumber(ARGV[4]),
  attempts = tonumber(ARGV[5]), sent_at = tonumber(ARGV[6]), channel = ARGV[7], next = ARGV[8]}
local mode, resends, after = ARGV[9], ARGV[10], ARGV[11]
local cooldown, limit, window_ms = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
-- A fallback waits for no cooldown: the vendor said the message failed.
if mode == 'fallback' then
  cooldown = 0
end
local limits_on = ARGV[15] == '1'
local ceiling = ceiling_of(ARGV[16], ARGV[17])
-- The keys past the phone's: the quotas', then the count's.
local counted = tonumber(ARGV[18])
local quotas = #KEYS - 1 - counted
local at = 19 + 2 * quotas
local count
if counted > 0 then
  count = {{unpack(KEYS, 2 + quotas)}, {unpack(ARGV, at, at + 8)}}
  at = at + 9
end
local delivery
if ARGV[at] then
  delivery = {ARGV[at], ARGV[at + 1], ARGV[at + 2], tonumber(ARGV[at + 3]), ARGV[at + 4]}
end

local give_back, refused, wait = take_all(2, quotas, function(i)
  return ARGV[17 + 2 * i], ARGV[18 + 2 * i]
end)
if refused then
  return {'refused', wait, refused}
end
local function refuse(reply)
  give_back()
  return reply
end

local now = now_ms()
local state = load(key)
sweep(state, now)
local v = state[V]
-- The verification the code joins, if any.
local joins
if mode == 'resend' then
  local i = find(state, otp.scope, resends)
  if not i or v[i][ATTEMPTS] == 0 then
    return refuse({'not_found'})
  end
  joins = i
elseif mode == 'fallback' then
  -- Record::falls_back: the message it follows is still the newest ('':
  -- the newest send has none) and not delivered, and the code's channel is
  -- the workflow's next.
  for i, r in ipairs(v) do
    if r[ID] == resends then
      local d, next = r[DELIVERY], r[NEXT] or ''
      local newest = d and d[D_MESSAGE_ID] or ''
      if r[ATTEMPTS] > 0 and newest == after and not (d and d[D_STATE] == 'delivered')
          and next ~= '' and next:sub(1, 1) == otp.channel then
        joins = i
      end
      break
    end
  end
  if not joins then
    return refuse({'not_found'})
  end
elseif mode == 'keep' then
  for i = #v, 1, -1 do
    if v[i][SCOPE] == otp.scope and v[i][ATTEMPTS] > 0 then
      joins = i
      break
    end
  end
end
local sends, last, window_end = 0, nil, 0
local tally = state[TALLY]
if tally then
  sends, last, window_end = tally[T_SENDS], tally[T_LAST_MS], tally[T_WINDOW_END_MS]
end
if last and cooldown > 0 and now < last + cooldown then
  return refuse({'too_soon', last + cooldown - now})
end
if limit > 0 then
  if now >= window_end then
    sends, window_end = 0, now + window_ms
  end
  if sends >= limit then
    return refuse({'quota', window_end - now})
  end
end
local record
if joins then
  -- Record::resent: one more live code, the oldest going past
  -- MAX_LIVE_CODES; the attempts stay as they are.
  record = v[joins]
  local codes = {}
  for _, c in ipairs(record[CODES]) do
    if c[EXPIRES_MS] > now then
      codes[#codes + 1] = c
    end
  end
  while #codes >= MAX_LIVE_CODES do
    table.remove(codes, 1)
  end
  codes[#codes + 1] = {otp.hash, now + otp.ttl_ms}
  record[CODES] = codes
  record[SENDS] = record[SENDS] + 1
  local times = record[SEND_TIMES]
  local channels = channels_of(record)
  local channel, next = otp.channel, record[NEXT] or ''
  if channel == '' then
    channel = next:sub(1, 1)
    if channel == '' then
      channel = channels:sub(-1)
    end
    if channel == '' then
      channel = 's'
    end
  end
  channels = channels .. channel
  times[#times + 1] = otp.sent_at
  if #times > MAX_SEND_TIMES then
    table.remove(times, 1)
    channels = channels:sub(2)
  end
  record[DELIVERY] = delivery
  set_channels(record, channels)
  -- A send on the workflow's next channel moves the workflow on.
  if next ~= '' and next:sub(1, 1) == channel then
    record[NEXT] = next:sub(2)
  end
else
  -- Refusals return before the state is saved, so it is changed in place
  -- where the Rust changes a copy.
  if mode == 'replace' then
    local kept = {}
    for _, r in ipairs(v) do
      if r[SCOPE] ~= otp.scope then
        kept[#kept + 1] = r
      end
    end
    v = kept
    state[V] = kept
  end
  if #v >= MAX_VERIFICATIONS then
    local oldest
    for _, r in ipairs(v) do
      oldest = math.min(oldest or expires_at(r), expires_at(r))
    end
    return refuse({'quota', math.max((oldest or now) - now, 0)})
  end
  local attempts = otp.attempts
  local left, retry = room(state, ceiling, now)
  if left == 0 then
    return refuse({'ceiling', retry})
  elseif left then
    attempts = math.min(left, otp.attempts)
  end
  -- Record::new
  record = {otp.id, otp.scope, {{otp.hash, now + otp.ttl_ms}}, attempts, otp.attempts,
    otp.sent_at, 1, {otp.sent_at}, delivery or false, otp.channel ~= '' and otp.channel or 's', otp.next}
  v[#v + 1] = record
end
if limits_on then
  local quota_on = limit > 0
  state[TALLY] = {quota_on and sends + 1 or 0, now, quota_on and window_end or 0,
    math.max(now + cooldown, window_end)}
end
save(key, state)
if count then
  return {'stored', cmsgpack.pack(record), now, count_traffic(count[1], count[2], now)}
end
return {'stored', cmsgpack.pack(record), now}
