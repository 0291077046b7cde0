-- The pumping breaker's counts (domain/pumping.rs decides on them). KEYS:
-- one phone's groups, a hash each in its country's slot: `s<hour>` sends
-- and `a<hour>` approvals per hour slot, `d<day>` approvals per day slot,
-- `b` its block (kept, never read here). ARGV: 'send', 'unsend',
-- 'approve' or 'forget' (its hours' counts, for an operator's unblock); for 'unsend' the hour slot to take a send back from; the hour
-- and day slots kept (KEEP_HOURS, KEEP_DAYS), older ones dropped here.
-- Returns {'counted', now ms, and for a send each hash's fields}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local what = ARGV[1]
local keep_hours, keep_days = tonumber(ARGV[3]), tonumber(ARGV[4])
local hour, day = math.floor(now / 3600000), math.floor(now / 86400000)
local out = {'counted', now}
for _, key in ipairs(KEYS) do
  if what == 'send' then
    redis.call('HINCRBY', key, 's' .. hour, 1)
  elseif what == 'unsend' then
    local field = 's' .. ARGV[2]
    if tonumber(redis.call('HGET', key, field) or '0') > 0 then
      redis.call('HINCRBY', key, field, -1)
    end
  elseif what == 'approve' then
    redis.call('HINCRBY', key, 'a' .. hour, 1)
    redis.call('HINCRBY', key, 'd' .. day, 1)
  elseif what ~= 'forget' then
    return {'unknown'}
  end
  local fields = redis.call('HGETALL', key)
  local kept = {}
  for i = 1, #fields, 2 do
    local kind, slot = string.sub(fields[i], 1, 1), tonumber(string.sub(fields[i], 2))
    local hourly = kind == 's' or kind == 'a'
    local stale = (hourly and (what == 'forget' or slot <= hour - keep_hours))
      or (kind == 'd' and slot <= day - keep_days)
    if stale then
      redis.call('HDEL', key, fields[i])
    else
      kept[#kept + 1] = fields[i]
      kept[#kept + 1] = fields[i + 1]
    end
  end
  if #kept > 0 then
    redis.call('PEXPIRE', key, keep_days * 86400000)
  end
  if what == 'send' then
    out[#out + 1] = kept
  end
end
return out
