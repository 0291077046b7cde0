-- A client's destination countries of its day (a set, the day starting
-- with its first): adds ARGV[1], the day lasting ARGV[2] ms.
-- Returns {'noted', 1 if it was new else 0, how many now, ms left}.
local added = redis.call('SADD', KEYS[1], ARGV[1])
local count = redis.call('SCARD', KEYS[1])
if added == 1 and count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {'noted', added, count, redis.call('PTTL', KEYS[1])}
