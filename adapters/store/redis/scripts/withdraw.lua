-- PhoneState::withdraw: takes back the live code hashed as ARGV[1] (its SMS
-- failed) and its send; a verification left without codes is gone.
-- KEYS[1]: the phone's key.
-- Returns {'withdrawn'} or {'not_found'}.
local key, hash = KEYS[1], ARGV[1]
local now = now_ms()
local state = load(key)
sweep(state, now)
local at
for i, r in ipairs(state[V]) do
  for _, c in ipairs(r[CODES]) do
    if c[HASH] == hash and c[EXPIRES_MS] > now then
      at = at or i
    end
  end
end
if not at then
  return {'not_found'}
end
local record = state[V][at]
local codes = {}
for _, c in ipairs(record[CODES]) do
  if c[HASH] ~= hash and c[EXPIRES_MS] > now then
    codes[#codes + 1] = c
  end
end
record[CODES] = codes
record[SENDS] = math.max(record[SENDS] - 1, 1)
local channels = channels_of(record)
table.remove(record[SEND_TIMES])
set_channels(record, channels:sub(1, #channels - 1))
if #codes == 0 then
  table.remove(state[V], at)
end
save(key, state)
return {'withdrawn'}
