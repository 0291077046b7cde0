-- PhoneState::withdraw: takes back the live code hashed as ARGV[1] (its SMS
-- failed) and its send; a verification left without codes is gone.
-- KEYS[1]: the phone's key.
-- Returns {'withdrawn'} or {'not_found'}.
local key, hash = KEYS[1], ARGV[1]
local now = now_ms()
local state = load(key)
sweep(state, now)
local at
for i, r in ipairs(state.v) do
  for _, c in ipairs(r.codes) do
    if c[1] == hash and c[2] > now then
      at = at or i
    end
  end
end
if not at then
  return {'not_found'}
end
local record = state.v[at]
local codes = {}
for _, c in ipairs(record.codes) do
  if c[1] ~= hash and c[2] > now then
    codes[#codes + 1] = c
  end
end
record.codes = codes
record.sends = math.max(record.sends - 1, 1)
table.remove(record.send_times)
if #record.codes == 0 then
  table.remove(state.v, at)
end
save(key, state, now)
return {'withdrawn'}
