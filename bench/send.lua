-- POST {"phone": ...} with a fresh valid phone on every request, from a
-- client address that changes every `per_client` requests (common.lua).
-- Used for otpd's send scenarios (/v1/otp), the memory phase, the batches
-- that make codes for the verify scenarios, the soak, and the references
-- (/ref, /mux), so otpd and the references get byte-for-byte the same kind
-- of request, headers included.
--
-- Arguments after `--` (key=value):
--   name=send        label in the BENCH line
--   path=/v1/otp     where to POST
--   areas=415,212    area codes to draw phones from (keep phases apart)
--   expected=202     the status every response should have
--   threads=2        wrk's -t, so the threads' counters interleave
--   key=...          the API key, sent as `Authorization: Bearer ...`
--   phase=1          the phase's client address range (0 to 26)
--   per_client=10    requests per client address
--   offset=0         the first phone's (and client's) number: a later run
--                    of the same phase on the same instance starts past
--                    the numbers an earlier one used
--   rate=0           requests a second per connection, paced (0: as fast
--                    as answers come), for the runs at a fraction of load
-- e.g. wrk -t2 -c32 -d5s -s bench/send.lua http://127.0.0.1:18080 -- threads=2 areas=415

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local opts, areas, n, threads_total, offset = {}, {}, 0, 1, 0

setup = common.setup

function init(args)
  opts = common.parse_args(args)
  areas = common.split(opts.areas or "415")
  threads_total = tonumber(opts.threads or "1")
  offset = tonumber(opts.offset or "0")
  local rate = tonumber(opts.rate or "0")
  if rate > 0 then
    -- wrk waits this long before each request (a pause after each answer:
    -- the rate is a little under the one asked for). Defined only here:
    -- wrk sends through a timer whenever a script has delay(), which would
    -- change the unpaced runs.
    local pause_ms = math.max(1, math.floor(1000 / rate))
    function delay()
      return pause_ms
    end
  end
  bench_name = opts.name or "send"
  bench_expected = tonumber(opts.expected or "202")
  wrk.method = "POST"
  wrk.path = opts.path or "/v1/otp"
  common.headers(opts)
  common.clients(opts)
end

function request()
  -- Interleave the threads' counters so each phone is used once per phase,
  -- and each client address per_client times.
  local k = offset + n * threads_total + (thread_id or 0)
  n = n + 1
  return common.post(k, '{"phone":"' .. common.phone(areas, k) .. '"}')
end

function response(status)
  common.count(status)
end

done = common.done
