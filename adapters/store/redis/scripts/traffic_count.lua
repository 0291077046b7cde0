-- The pumping breaker's counts (domain/pumping.rs decides on them), as a
-- function: `traffic.lua` runs it alone, `open.lua` after storing a code.
-- keys (KEYS, run alone): one phone's groups (argv[5] of them), a hash each in its country's
-- slot: `s<hour>` sends and `a<hour>` approvals per hour slot, `d<day>`
-- approvals per day slot, `b` its block (kept, never read here); then,
-- when argv[6] names a country, the client's countries of its day (a
-- string, `NG,GB,`: a third of a set's memory, for a key every client
-- keeps a day; it lives argv[7] ms from its first).
-- argv[1]: 'send', 'unsend', 'approve' or 'forget' (the hours' counts, for
-- an operator's unblock); argv[2]: for 'unsend', the hour slot to take a
-- send back from; argv[3], argv[4]: the hour and day slots kept
-- (KEEP_HOURS, KEEP_DAYS); argv[8]: per group, '1' if its block, while on,
-- holds a send back: then no group is counted; argv[9]: for a send, per
-- group (comma-separated) the hour slot of the reading of its hash the
-- caller holds, 0 for none. Older slots are dropped, and the hash's life
-- renewed, when a slot is first counted (once an hour at most): the
-- reader ignores what has aged out in between.
-- Returns {'counted' or 'held', now ms, for a send each hash's fields as
-- {'all', fields}, or {'hour', the hour's two counts, today's approvals
-- and the block} when the caller's reading is of this hour (the hours
-- before it and the days before today do not change within one, so only
-- these are read: a hash
-- holding 25 hours and 15 days costs a send no more than a new one), and
-- for a country {1 if it was new else 0, its place in the day (first
-- sent, 1), ms the day has left}}. `now`: the caller's unix ms, if it has
-- read the time already.
local function count_traffic(keys, argv, now)
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  local what = argv[1]
  local keep_hours, keep_days = tonumber(argv[3]), tonumber(argv[4])
  local hour, day = math.floor(now / 3600000), math.floor(now / 86400000)
  local groups = tonumber(argv[5])
  local read = {}
  for slot in string.gmatch(argv[9] or '', '%d+') do
    read[#read + 1] = tonumber(slot)
  end
  local held = false
  if what == 'send' then
    for i = 1, groups do
      if string.sub(argv[8], i, i) == '1' then
        local block = redis.call('HGET', keys[i], 'b')
        local ends = block and tonumber(string.match(block, '^%d+,(%d+),'))
        if ends and ends > now then
          held = true
        end
      end
    end
  end
  local out = {held and 'held' or 'counted', now}
  for i = 1, groups do
    local key = keys[i]
    local first = what == 'forget'
    if what == 'send' and held then
      first = false
    elseif what == 'send' then
      first = redis.call('HINCRBY', key, 's' .. hour, 1) == 1
    elseif what == 'unsend' then
      local field = 's' .. argv[2]
      if tonumber(redis.call('HGET', key, field) or '0') > 0 then
        redis.call('HINCRBY', key, field, -1)
      end
    elseif what == 'approve' then
      first = redis.call('HINCRBY', key, 'a' .. hour, 1) == 1
      redis.call('HINCRBY', key, 'd' .. day, 1)
    elseif what ~= 'forget' then
      return {'unknown'}
    end
    if what == 'send' and not first and read[i] == hour then
      local names = {'s' .. hour, 'a' .. hour, 'd' .. day, 'b'}
      local part = redis.call('HMGET', key, unpack(names))
      local fields = {}
      for j, field in ipairs(names) do
        if part[j] then
          fields[#fields + 1] = field
          fields[#fields + 1] = part[j]
        end
      end
      out[#out + 1] = {'hour', fields}
    else
      local fields = (first or what == 'send') and redis.call('HGETALL', key) or {}
      local kept = {}
      for j = 1, #fields, 2 do
        local kind, slot = string.sub(fields[j], 1, 1), tonumber(string.sub(fields[j], 2))
        local hourly = kind == 's' or kind == 'a'
        local stale = first and ((hourly and (what == 'forget' or slot <= hour - keep_hours))
          or (kind == 'd' and slot <= day - keep_days))
        if stale then
          redis.call('HDEL', key, fields[j])
        else
          kept[#kept + 1] = fields[j]
          kept[#kept + 1] = fields[j + 1]
        end
      end
      if first and #kept > 0 then
        redis.call('PEXPIRE', key, keep_days * 86400000)
      end
      if what == 'send' then
        out[#out + 1] = {'all', kept}
      end
    end
  end
  if argv[6] ~= '' then
    local key = keys[groups + 1]
    local countries = redis.call('GET', key)
    local at = countries and string.find(countries, argv[6] .. ',', 1, true)
    local added, left = 0, nil
    if not countries then
      -- A new day: it has its whole length left, no PTTL needed.
      added, at, left = 1, 1, tonumber(argv[7])
      redis.call('SET', key, argv[6] .. ',', 'PX', argv[7])
    elseif not at then
      added, at = 1, #countries + 1
      redis.call('SET', key, countries .. argv[6] .. ',', 'KEEPTTL')
    end
    -- Each entry is 3 characters (`NG,`).
    local place = (at - 1) / 3 + 1
    out[#out + 1] = {added, place, left or redis.call('PTTL', key)}
  end
  return out
end
