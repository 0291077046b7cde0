-- Takes back a code whose SMS failed, and its send; a verification left
-- without codes is removed, else it lives as long as its newest code left
-- (its key, longer if the phone's tally needs it).
-- KEYS[1]: the phone's key. ARGV[1]: the hash of the code to withdraw.
local tally, record = split(get_record(KEYS[1]))
local v = read_record(record)
if not v then
  return 0
end
local now = now_ms()
live_codes(v, KEYS[1], now)
local kept, latest = {}, 0
for _, c in ipairs(v.codes) do
  if c[1] ~= ARGV[1] then
    kept[#kept + 1] = c
    latest = math.max(latest, c[2])
  end
end
if #kept == #v.codes then
  return 0
end
if #kept == 0 then
  return remove(KEYS[1], tally)
end
v.codes = kept
v.sends = math.max(v.sends - 1, 1)
v.times = string.gsub(v.times, ' ?%d+$', '')
if tally == '' then
  redis.call('SET', KEYS[1], write_record(v), 'PX', latest - now)
else
  -- The tally's key lives at least as long as the codes left.
  redis.call('SET', KEYS[1], tally .. write_record(v), 'KEEPTTL')
end
return 1
