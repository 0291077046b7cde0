-- PhoneState::clear_guesses: forgets the wrong codes the ceiling counts (an
-- operator's unlock).
-- KEYS[1]: the phone's key.
-- Returns {'cleared'}, or {'none'} when it counted none.
local key = KEYS[1]
local now = now_ms()
local state = load(key)
sweep(state, now)
if not state[WRONG] then
  return {'none'}
end
state[WRONG] = false
save(key, state)
return {'cleared'}
