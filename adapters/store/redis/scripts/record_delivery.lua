-- PhoneState::record_delivery: notes who took the SMS for the code hashed
-- as ARGV[1], as queued, if it is still its verification's newest code.
-- (The store links a tracked message to its phone after: that key lives in
-- a slot of its own.)
-- KEYS[1]: the phone's key. ARGV: the hash, then the delivery: provider,
-- message id, state, unix s.
-- Returns {'recorded'} or {'not_found'}.
local key, hash = KEYS[1], ARGV[1]
local now = now_ms()
local state = load(key)
sweep(state, now)
for _, r in ipairs(state.v) do
  local newest = r.codes[#r.codes]
  if newest and newest[1] == hash then
    r.delivery = {provider = ARGV[2], message_id = ARGV[3], state = ARGV[4],
      updated_at = tonumber(ARGV[5])}
    save(key, state, now)
    return {'recorded'}
  end
end
return {'not_found'}
