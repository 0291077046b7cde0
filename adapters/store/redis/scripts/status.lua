-- PhoneState::status: the scope's verification, pending or locked: by id,
-- or by phone its newest. Reads only: what the sweep drops has ended.
-- KEYS[1]: the phone's key. ARGV: the scope, the verification's id ('' by
-- phone).
-- Returns {'found', the verification packed, now} or {'not_found'}.
local scope, id = ARGV[1], ARGV[2]
local now = now_ms()
local state = load(KEYS[1])
sweep(state, now)
local record
if id ~= '' then
  local i = find(state, scope, id)
  record = i and state[V][i]
else
  local v = state[V]
  for i = #v, 1, -1 do
    if v[i][SCOPE] == scope then
      record = v[i]
      break
    end
  end
end
if not record then
  return {'not_found'}
end
return {'found', cmsgpack.pack(record), now}
