-- The pumping breaker's counts alone: `traffic_count.lua` says what KEYS
-- and ARGV hold and what it returns.
return count_traffic(KEYS, ARGV)
