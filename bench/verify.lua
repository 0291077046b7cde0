-- POST /v1/otp/verify for codes otpd sent earlier in the run, from a client
-- address that changes every `per_client` requests (common.lua).
--
-- The codes come from a file of `phone code` lines (scripts/bench.sh makes
-- it from the code maker's console output). Each wrk thread takes every
-- threads-th line, so the threads never share a phone.
--
--   mode=right  sends each phone's own code, once: otpd approves it (200) and
--               consumes it, so every request needs a line of its own.
--   mode=wrong  sends code+1 (mod 10^6), which is never the code: 422. The
--               thread goes through its phones `tries` times (4 by default),
--               so each code takes at most that many wrong guesses: fewer
--               than otp.max_attempts (5, when the code locks) and the guess
--               budget's limits.free_guesses (10, when waits begin), so every
--               answer is a plain 422.
-- A thread that has gone through its lines as often as it may starts over
-- anyway: those answers are 404 (right: consumed) or 422 and then 429
-- (wrong: the code locks), and `exhausted` in the BENCH line counts them.
--
-- Each thread reads its lines from the file as it goes, holding none: a
-- million codes kept in Lua made wrk's garbage collector stall its threads
-- now and then, which showed as latency (p99 3.9-4.3 ms instead of 1.7-1.9
-- ms, both against the same reference server; docs/performance.md). The
-- lines are the bench's own: a `+1` phone of 12 characters, a space, 6 digits.
--
-- Arguments after `--` (key=value):
--   name=verify_right  label in the BENCH line
--   file=PATH          the `phone code` lines
--   mode=right|wrong
--   tries=4            wrong mode: wrong guesses per phone
--   expected=200       the status every response should have (422 for wrong)
--   threads=2          wrk's -t
--   key=...            the API key, sent as `Authorization: Bearer ...`
--   phase=3            the phase's client address range (0 to 26)
--   per_client=10      requests per client address

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local file, me, threads_total, line_no, round, uses, n = nil, 0, 1, 0, 0, 1, 0
local wrong = false

setup = common.setup

function init(args)
  local opts = common.parse_args(args)
  threads_total = tonumber(opts.threads or "1")
  me = thread_id or 0
  wrong = opts.mode == "wrong"
  uses = wrong and tonumber(opts.tries or "4") or 1
  bench_name = opts.name or (wrong and "verify_wrong" or "verify_right")
  bench_expected = tonumber(opts.expected or (wrong and "422" or "200"))
  file = assert(io.open(assert(opts.file, "file= is required"), "r"))
  assert(file:read("*l"), "no lines in " .. opts.file)
  file:seek("set")

  wrk.method = "POST"
  wrk.path = "/v1/otp/verify"
  common.headers(opts)
  common.clients(opts)
end

-- This thread's next line: every threads_total-th, from the start again at
-- the end of the file.
local function next_line()
  while true do
    local line = file:read("*l")
    if not line then
      file:seek("set")
      line_no = 0
      round = round + 1
      line = file:read("*l")
    end
    line_no = line_no + 1
    if (line_no - 1) % threads_total == me then
      return line
    end
  end
end

function request()
  local line = next_line()
  -- A code used more often than it may be: the file was too short.
  if round >= uses then exhausted = exhausted + 1 end
  local phone, code = string.sub(line, 1, 12), string.sub(line, 14, 19)
  if wrong then
    code = string.format("%06d", (tonumber(code) + 1) % 1000000)
  end
  local k = n * threads_total + me
  n = n + 1
  return common.post(k, '{"phone":"' .. phone .. '","code":"' .. code .. '"}')
end

function response(status)
  common.count(status)
end

done = common.done
