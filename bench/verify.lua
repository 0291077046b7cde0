-- POST /v1/otp/verify for codes otpd sent earlier in the run.
--
-- The codes come from a file of `phone code` lines (scripts/bench.sh makes
-- it from the console sender's output). Each wrk thread takes every
-- threads-th line, so the threads never share a phone.
--
--   mode=right  sends each phone's own code, once: otpd approves it (200) and
--               consumes it, so every request needs a line of its own. If the
--               file runs out the thread starts over (those answers are 404)
--               and `exhausted` in the BENCH line says how many there were.
--   mode=wrong  sends code+1 (mod 10^6), which is never the code: 422. The
--               thread cycles through its phones, so each phone takes about
--               requests / phones wrong tries; past otp.max_attempts (100 at
--               most) a code locks and answers 429, which the status mix shows.
--
-- Arguments after `--` (key=value):
--   name=verify_right  label in the BENCH line
--   file=PATH          the `phone code` lines
--   mode=right|wrong
--   expected=200       the status every response should have (422 for wrong)
--   threads=2          wrk's -t

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local phones, codes, count, next_index, round, wrong = {}, {}, 0, 1, 0, false

setup = common.setup

function init(args)
  local opts = common.parse_args(args)
  local threads_total = tonumber(opts.threads or "1")
  local me = thread_id or 0
  wrong = opts.mode == "wrong"
  bench_name = opts.name or (wrong and "verify_wrong" or "verify_right")
  bench_expected = tonumber(opts.expected or (wrong and "422" or "200"))

  local file = assert(io.open(assert(opts.file, "file= is required"), "r"))
  local i = 0
  for line in file:lines() do
    local phone, code = string.match(line, "^(%+%d+)%s+(%d%d%d%d%d%d)")
    if phone then
      if i % threads_total == me then
        count = count + 1
        phones[count] = phone
        if wrong then
          codes[count] = string.format("%06d", (tonumber(code) + 1) % 1000000)
        else
          codes[count] = code
        end
      end
      i = i + 1
    end
  end
  file:close()
  assert(count > 0, "no `phone code` lines for this thread in " .. opts.file)

  wrk.method = "POST"
  wrk.path = "/v1/otp/verify"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  if next_index > count then
    next_index = 1
    round = round + 1
  end
  local i = next_index
  next_index = next_index + 1
  -- A right code sent a second time is a request the file was too short for.
  if round > 0 and not wrong then exhausted = exhausted + 1 end
  return wrk.format(nil, nil, nil, '{"phone":"' .. phones[i] .. '","code":"' .. codes[i] .. '"}')
end

function response(status)
  common.count(status)
end

done = common.done
