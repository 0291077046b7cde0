-- PhoneState::end: ends the scope's verification `id` if it is pending
-- (attempts left): a cancel, or an approval made elsewhere.
-- KEYS[1]: the phone's key. ARGV: the scope, the verification's id.
-- Returns {'ended', the verification packed as it was, now} or
-- {'not_found'}.
local key, scope, id = KEYS[1], ARGV[1], ARGV[2]
local now = now_ms()
local state = load(key)
sweep(state, now)
local i = find(state, scope, id)
if not i or state[V][i][ATTEMPTS] == 0 then
  return {'not_found'}
end
local record = table.remove(state[V], i)
save(key, state)
return {'ended', cmsgpack.pack(record), now}
