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
for _, r in ipairs(state[V]) do
  local codes = r[CODES]
  local newest = codes[#codes]
  if newest and newest[HASH] == hash then
    r[DELIVERY] = {ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])}
    save(key, state)
    return {'recorded'}
  end
end
return {'not_found'}
