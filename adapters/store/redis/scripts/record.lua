-- The record's layout, the Lua side of record.rs, joined onto the front of
-- every script that reads a record: the verification's id (34 bytes), the
-- number of its live codes (one digit), each code's hash (64 bytes) and
-- unix ms it expires (13 digits; 0: with the key); then, a line each, the
-- attempts left, unix s created, sends, unix s of the last sends
-- (space-separated), and, once an SMS went out, provider, message id,
-- state, rank, unix seconds and error code.
--
-- When a limit counts the phone's sends, its tally comes first, in the same
-- key: 'S', then the sends in the window (2 bytes), the unix ms of the last
-- (6 bytes) and of the window's end (6 bytes; 0: no quota), big-endian. A
-- send then creates one key, not two, and the key lives for the window, the
-- cooldown or the newest code, whichever ends last, so every code in it
-- carries its own expiry, and a verification whose codes are all past it is
-- gone. A right guess or a cancel leaves the tally alone.

local ID_LEN, HASH_LEN, CODE_LEN = 34, 64, 77
-- domain/verification.rs: MAX_LIVE_CODES, MAX_SEND_TIMES.
local MAX_CODES, MAX_TIMES = 9, 10

-- The record at `key`, or nil. pcall: a key of another type (a hash, as
-- otpd stored codes before) is no code.
local function get_record(key)
  local record = redis.pcall('GET', key)
  if type(record) == 'string' then
    return record
  end
end

-- A record's parts: id, codes ({hash, expiry ms} each), attempts (a
-- number), created, sends (a number), times (as stored), and delivery (its
-- fields in order, {} before an SMS went out); nil for what is no
-- verification (a code an older otpd stored).
local function read_record(record)
  if not record or string.sub(record, 1, 2) ~= 'VE' then
    return nil
  end
  local n = tonumber(string.sub(record, ID_LEN + 1, ID_LEN + 1))
  if not n then
    return nil
  end
  local v = {id = string.sub(record, 1, ID_LEN), codes = {}, delivery = {}}
  local at = ID_LEN + 2
  for i = 1, n do
    v.codes[i] = {string.sub(record, at, at + HASH_LEN - 1),
      tonumber(string.sub(record, at + HASH_LEN, at + CODE_LEN - 1)) or 0}
    at = at + CODE_LEN
  end
  local lines = {}
  for line in string.gmatch(string.sub(record, at) .. '\n', '([^\n]*)\n') do
    lines[#lines + 1] = line
  end
  v.attempts = tonumber(lines[1])
  if not v.attempts then
    return nil
  end
  v.created, v.sends, v.times = lines[2] or '0', tonumber(lines[3]) or 1, lines[4] or ''
  for i = 5, #lines do
    v.delivery[#v.delivery + 1] = lines[i]
  end
  return v
end

-- A record from the parts read_record gives.
local function write_record(v)
  local parts = {v.id, tostring(#v.codes)}
  for _, c in ipairs(v.codes) do
    parts[#parts + 1] = c[1] .. string.format('%013d', c[2])
  end
  parts[#parts + 1] = v.attempts .. '\n' .. v.created .. '\n' .. v.sends .. '\n' .. v.times
  if #v.delivery > 0 then
    parts[#parts + 1] = '\n' .. table.concat(v.delivery, '\n')
  end
  return table.concat(parts)
end

-- Redis's clock in unix ms.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Keeps only the codes still alive, a code that lives with the key (0)
-- given the key's expiry. A lone code written with its key is alive as long
-- as the key is: then Redis's clock isn't read at all.
local function live_codes(v, key, now)
  if #v.codes == 1 and v.codes[1][2] == 0 and not now then
    return
  end
  now = now or now_ms()
  local with_key
  local live = {}
  for _, c in ipairs(v.codes) do
    local expiry = c[2]
    if expiry == 0 then
      with_key = with_key or now + math.max(redis.call('PTTL', key), 0)
      expiry = with_key
    end
    if expiry > now then
      live[#live + 1] = {c[1], expiry}
    end
  end
  v.codes = live
end

local TALLY_LEN, TALLY = 15, '>I2I6I6'

-- A phone key's value as its tally ('' for none) and its record (nil for
-- none).
local function split(value)
  if value and string.sub(value, 1, 1) == 'S' then
    local record = string.sub(value, TALLY_LEN + 1)
    return string.sub(value, 1, TALLY_LEN), record ~= '' and record or nil
  end
  return '', value
end

-- The tally's sends, last send and window's end.
local function read_tally(tally)
  if tally == '' then
    return 0, 0, 0
  end
  local sends, last, window_end = struct.unpack(TALLY, string.sub(tally, 2))
  return sends, last, window_end
end

local function write_tally(sends, last, window_end)
  return 'S' .. struct.pack(TALLY, sends, last, window_end)
end

-- The pending verification in a record, or nil. Beside a tally the key
-- outlives the codes, so each is checked against Redis's clock (read once:
-- the `now` returned) and only live ones are kept.
local function pending(record, tally, key, now)
  local v = read_record(record)
  if v and tally ~= '' then
    now = now or now_ms()
    live_codes(v, key, now)
    if #v.codes == 0 then
      return nil, now
    end
  end
  return v, now
end

-- The ms a pending verification has left: its key's, or beside a tally its
-- newest code's (pending gave `now`).
local function life_left(v, tally, key, now)
  if tally == '' then
    return redis.call('PTTL', key)
  end
  local latest = 0
  for _, c in ipairs(v.codes) do
    latest = math.max(latest, c[2])
  end
  return latest - now
end

-- Removes the verification, keeping the phone's tally if it has one.
local function remove(key, tally)
  if tally == '' then
    return redis.call('DEL', key)
  end
  redis.call('SET', key, tally, 'KEEPTTL')
  return 1
end
