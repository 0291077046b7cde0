-- Adds ARGV[1] (millionths; negative takes a send back) to each ledger in
-- KEYS, each kept until its window ends (ARGV[1 + i], unix ms), and
-- answers the totals after it. The caps (domain::SpendCaps) decide.
local amount = tonumber(ARGV[1])
local reply = { 'spent' }
for i, key in ipairs(KEYS) do
  local total = redis.call('INCRBY', key, amount)
  if total < 0 then
    -- A take-back that outlived its window: nothing was spent here.
    redis.call('SET', key, 0)
    total = 0
  end
  redis.call('PEXPIREAT', key, ARGV[1 + i])
  reply[#reply + 1] = total
end
return reply
