-- POST {"phone": ...} with a fresh valid phone on every request.
-- Used for otpd's send scenario (/v1/otp), the batch that makes codes for
-- the verify scenarios, the soak, and the reference server (/ref), so otpd
-- and the reference get byte-for-byte the same kind of request.
--
-- Arguments after `--` (key=value):
--   name=send        label in the BENCH line
--   path=/v1/otp     where to POST
--   areas=415,212    area codes to draw phones from (keep phases apart)
--   expected=202     the status every response should have
--   threads=2        wrk's -t, so the threads' phone counters interleave
-- e.g. wrk -t2 -c32 -d5s -s bench/send.lua http://127.0.0.1:18080 -- threads=2 areas=415

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local opts, areas, n, threads_total = {}, {}, 0, 1

setup = common.setup

function init(args)
  opts = common.parse_args(args)
  areas = common.split(opts.areas or "415")
  threads_total = tonumber(opts.threads or "1")
  bench_name = opts.name or "send"
  bench_expected = tonumber(opts.expected or "202")
  wrk.method = "POST"
  wrk.path = opts.path or "/v1/otp"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  -- Interleave the threads' counters so each phone is used once per phase.
  local phone = common.phone(areas, n * threads_total + (thread_id or 0))
  n = n + 1
  return wrk.format(nil, nil, nil, '{"phone":"' .. phone .. '"}')
end

function response(status)
  common.count(status)
end

done = common.done
