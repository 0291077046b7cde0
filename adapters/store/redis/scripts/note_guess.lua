-- Counts a guess by phone of a client's (the step path): a wrong one grows
-- its wrong guesses in a row (ClientGuesses::after_wrong), a right one
-- clears them.
-- KEYS[1]: the client's waits (ip:{<net>}:guesses). ARGV: 1 if right else
-- 0, then its budget (free, first delay ms, longest delay ms, most in a
-- row, memory ms).
-- Returns {'noted'}.
note_guess(KEYS[1], guesses(KEYS[1]), ARGV[1] == '1', budget_of(2), now_ms())
return {'noted'}
