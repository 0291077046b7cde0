-- Shared by the wrk scripts in this folder (loaded with dofile from the
-- script's own folder, so wrk can be started from anywhere).
--
-- What it gives each scenario:
--   * threads numbered at setup, so the scripts can split work between them;
--   * `key=value` script arguments (wrk passes what follows `--` to init);
--   * the headers every request carries: the API key, and a client address
--     in X-Forwarded-For that changes every `per_client` requests (below);
--   * a count of response statuses per thread, merged in done(), so a run
--     that got 401s, 404s or 429s instead of the status it wanted is visible;
--   * one machine-readable `BENCH ...` line from done() with req/s and
--     latency percentiles, which scripts/bench.sh parses;
--   * fresh, valid US phone numbers from a counter.

local M = {}

-- Arguments after `--` on wrk's command line, as `key=value` words.
function M.parse_args(args)
  local opts = {}
  for _, a in ipairs(args or {}) do
    local k, v = string.match(a, "^([%w_]+)=(.*)$")
    if k then opts[k] = v end
  end
  return opts
end

-- setup() runs once per thread in wrk's main Lua state, before that thread's
-- init(); keeping the thread handles lets done() read each thread's counts.
local threads = {}
function M.setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

-- Per-thread counters, read back by done() with thread:get().
statuses = {}
exhausted = 0

function M.count(status)
  statuses[status] = (statuses[status] or 0) + 1
end

-- Fresh phones: +1 NPA NXX XXXX. libphonenumber accepts every exchange from
-- 200 to 999 in these area codes (checked against otpd: 202 for all of
-- them), so each area code gives 800 * 10000 = 8 million numbers. Scenarios
-- pass different area codes so no two phases share a phone.
local EXCHANGES = 800
local PER_AREA = EXCHANGES * 10000

function M.phone(areas, n)
  local area = areas[math.floor(n / PER_AREA) % #areas + 1]
  local within = n % PER_AREA
  local exchange = 200 + math.floor(within / 10000)
  local line = within % 10000
  return string.format("+1%s%03d%04d", area, exchange, line)
end

function M.split(list)
  local out = {}
  for item in string.gmatch(list or "", "[^,]+") do table.insert(out, item) end
  return out
end

-- Many clients. otpd sits behind a trusted proxy (127.0.0.1, where wrk
-- connects from), so it takes each request's client from X-Forwarded-For.
-- Requests n = 0, 1, 2, ... of a phase go out as client floor(n / per_client),
-- and clients alternate between an IPv4 address and an IPv6 /64 (otpd counts
-- IPv6 clients by /64: limits.ipv6_prefix). With per_client = 10, no client
-- comes near its limits (20 sends per 600 s, 60 verifies per minute).
-- Each phase has its own range, so no phase meets another's clients:
--   IPv4: (100 + phase).x.y.z     phase 0 to 26 (never 127, the trusted proxy)
--   IPv6: 2001:(256 + phase):x:y::1, one /64 per client
local phase, per_client = 0, 10

function M.clients(opts)
  phase = tonumber(opts.phase or "0")
  per_client = tonumber(opts.per_client or "10")
  assert(phase >= 0 and phase <= 26, "phase must be 0 to 26")
  assert(per_client >= 1, "per_client must be 1 or more")
end

function M.client(n)
  local c = math.floor(n / per_client)
  local i = math.floor(c / 2)
  if c % 2 == 0 then
    return string.format("%d.%d.%d.%d", 100 + phase,
      math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  end
  return string.format("2001:%x:%x:%x::1", 256 + phase, math.floor(i / 65536) % 65536, i % 65536)
end

-- The headers every script sets once: JSON, and the API key when given
-- (`key=...`: otpd at its defaults refuses a call without one, 401).
function M.headers(opts)
  wrk.headers["Content-Type"] = "application/json"
  if opts.key and opts.key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. opts.key
  end
end

-- A POST of `body` as client number n.
function M.post(n, body)
  wrk.headers["X-Forwarded-For"] = M.client(n)
  return wrk.format(nil, nil, nil, body)
end

local function ms(us)
  return string.format("%.3f", us / 1000)
end

-- One line for scripts/bench.sh: everything it needs, nothing to re-parse
-- from wrk's human output.
-- The name and expected status come from the threads (set by init() from the
-- script arguments), since done() runs in a Lua state that never saw them.
function M.done(summary, latency)
  local name = threads[1] and threads[1]:get("bench_name") or "?"
  local expected = tonumber(threads[1] and threads[1]:get("bench_expected") or 0)
  local merged, total_exhausted = {}, 0
  for _, t in ipairs(threads) do
    local s = t:get("statuses") or {}
    for code, n in pairs(s) do merged[code] = (merged[code] or 0) + n end
    total_exhausted = total_exhausted + (t:get("exhausted") or 0)
  end
  local codes = {}
  for code in pairs(merged) do table.insert(codes, code) end
  table.sort(codes)
  local parts, unexpected = {}, 0
  for _, code in ipairs(codes) do
    table.insert(parts, code .. ":" .. merged[code])
    if code ~= expected then unexpected = unexpected + merged[code] end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "BENCH scenario=%s requests=%d duration_s=%.3f rps=%.1f p50_ms=%s p90_ms=%s p99_ms=%s max_ms=%s "
      .. "expected=%d unexpected=%d statuses=%s socket_errors=%d timeouts=%d exhausted=%d\n",
    name, summary.requests, seconds, summary.requests / seconds,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)), ms(latency.max),
    expected, unexpected, table.concat(parts, ","),
    e.connect + e.read + e.write, e.timeout, total_exhausted))
  if unexpected > 0 then
    io.write(string.format("WARNING %s: %d responses were not %d (%s)\n",
      name, unexpected, expected, table.concat(parts, ",")))
  end
end

return M
