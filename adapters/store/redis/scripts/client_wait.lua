-- ClientGuesses::wait: how long a client must wait before its next guess
-- by phone is heard (the step path: on a cluster its waits live apart from
-- the phone).
-- KEYS[1]: the client's waits (ip:{<net>}:guesses). ARGV: its budget (free,
-- first delay ms, longest delay ms, most in a row, memory ms).
-- Returns {'throttled', ms} or {'free'}.
local wait = client_wait(guesses(KEYS[1]), budget_of(1), now_ms())
if wait then
  return {'throttled', wait}
end
return {'free'}
