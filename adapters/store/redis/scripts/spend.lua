-- A bounded add (domain::add_within, which the store tests hold this to):
-- ARGV[1] 'spend' adds ARGV[2] (millionths) to each ledger in KEYS, each
-- kept until its window ends (ARGV[2 + i], unix ms), unless that would take
-- one past its limit (ARGV[2 + n + i], '' for none): then adds to none.
-- 'refund' takes ARGV[2] back from each, never below 0.
-- Returns {'spent', totals...}, {'refused', which ledger (0-based),
-- totals...} or {'refunded'}.
local cost, n = tonumber(ARGV[2]), #KEYS
if ARGV[1] == 'refund' then
  for _, key in ipairs(KEYS) do
    local total = tonumber(redis.call('GET', key) or '0')
    if total > 0 then
      redis.call('SET', key, math.max(total - cost, 0), 'KEEPTTL')
    end
  end
  return {'refunded'}
end
local totals, refused = {}, nil
for i, key in ipairs(KEYS) do
  totals[i] = tonumber(redis.call('GET', key) or '0')
  local limit = ARGV[2 + n + i]
  if not refused and limit ~= '' and totals[i] + cost > tonumber(limit) then
    refused = i - 1
  end
end
if refused then
  return {'refused', refused, unpack(totals)}
end
for i, key in ipairs(KEYS) do
  totals[i] = redis.call('INCRBY', key, cost)
  redis.call('PEXPIREAT', key, ARGV[2 + i])
end
return {'spent', unpack(totals)}
