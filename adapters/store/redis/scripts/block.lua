-- Keeps a group's block (traffic.lua's hash, field `b`, as traffic.rs
-- writes it: since,until,...). ARGV: the block, its since ms, '1' to start
-- it only if no block of the group is on then (two sends that trip at once
-- start one block, told once), the ms the hash is kept.
-- Returns {'set'} or {'held'}: another block was on.
local held = redis.call('HGET', KEYS[1], 'b')
if ARGV[3] == '1' and held then
  local ends = tonumber(string.match(held, '^%d+,(%d+),'))
  if ends and ends > tonumber(ARGV[2]) then
    return {'held'}
  end
end
redis.call('HSET', KEYS[1], 'b', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'set'}
