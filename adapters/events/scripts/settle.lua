-- Settles a claimed job that failed, in one step: it leaves the stream and,
-- as asked, waits for its next attempt or is kept as a dead letter.
-- KEYS: the shard's stream, its retries, its dead letters (one slot).
-- ARGV: group, entry id, 'retry' | 'dead', then for 'retry' the
-- due time in ms and the job for its next attempt, for 'dead' the most
-- dead letters kept and the dead letter.
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[3] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
elseif ARGV[3] == 'dead' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'd', ARGV[5])
end
return 1
