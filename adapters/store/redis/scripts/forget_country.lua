-- Takes ARGV[1] back from a client's countries of the day (traffic.lua's
-- string, `NG,GB,`), keeping the day's end.
local held = redis.call('GET', KEYS[1])
if held then
  local from, to = string.find(held, ARGV[1] .. ',', 1, true)
  if from then
    redis.call('SET', KEYS[1], string.sub(held, 1, from - 1) .. string.sub(held, to + 1), 'KEEPTTL')
  end
end
return {'forgotten'}
