#!/usr/bin/env bash
# What each step of a send's script costs Redis: redis-benchmark runs
# EVALSHA with the send's keys and arguments (the phone's key, the client's
# and the service's counters, a new verification at the default limits, a
# console receipt) for a script of one step at a time, then the steps
# together, then open.lua whole, on a redis-server of its own; Redis's own
# time per call (INFO commandstats) is printed for each. Every call has a
# fresh phone and a fresh client, so each makes its keys: a send at the
# defaults from a new client. Last, the pumping breaker's count of a send
# to a country with a full history, read whole or with this instance's
# reading of the hour. docs/performance.md has what it showed.
#
#   bench/script_costs.sh            # 200,000 calls per line, about a minute
#   CALLS=50000 bench/script_costs.sh
#
# Needs redis-server, redis-cli, redis-benchmark and python3 (for a free port).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CALLS=${CALLS:-200000}
SCRIPTS=adapters/store/redis/scripts
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
redis-server --port "$PORT" --save '' --appendonly no --dir "$WORK" --daemonize yes --logfile "$WORK/redis.log"
trap 'redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.1; done

# open.lua's keys and arguments at the defaults, as
# adapters/store/redis/mod.rs passes them (see the script's header): a new
# verification's id, scope, hash, ttl, attempts and time; mode 'new'; the
# cooldown, the phone's quota, the ceiling; no breaker keys; the client's
# and the service's quotas; a console receipt.
KEYS=('otp:{+1555__rand_int__}' 'otp:ip:{10.__rand_int__}:sends' 'otp:{global}:sends')
ARGS=("VE$(printf 'a%.0s' {1..32})" 'key:bench' "$(printf 'h%.0s' {1..64})" 180000 5 1796000000
    new '' 30000 5 600000 1 20 3600000 0 20 600000 1000000000 3600000
    console "$(printf 'm%.0s' {1..36})" queued 1796000000)

# cost LABEL LUA: Redis's µs per EVALSHA of LUA with the send's keys and args.
cost() {
    local sha
    sha=$(redis-cli -p "$PORT" SCRIPT LOAD "$2")
    redis-cli -p "$PORT" FLUSHALL >/dev/null
    redis-cli -p "$PORT" CONFIG RESETSTAT >/dev/null
    redis-benchmark -p "$PORT" -n "$CALLS" -c 16 -r 100000000 -q \
        EVALSHA "$sha" 3 "${KEYS[@]}" "${ARGS[@]}" >/dev/null
    printf '| %s | %s |\n' "$1" "$(redis-cli -p "$PORT" INFO commandstats |
        sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')"
}

PRELUDE=$(cat "$SCRIPTS/record.lua")
echo "| script | µs per call |"
echo "|---|---:|"
cost "return 1" "return 1"
cost "the record prelude, then return 1" "$PRELUDE
return 1"
cost "TIME" "redis.call('TIME') return 1"
cost "INCR (the service's counter)" "redis.call('INCR', KEYS[3]) return 1"
cost "INCR and PEXPIRE (a new client's counter)" "redis.call('INCR', KEYS[2]) redis.call('PEXPIRE', KEYS[2], 600000) return 1"
cost "GET (a new phone)" "redis.call('GET', KEYS[1]) return 1"
cost "SET PX (a new phone's record)" "redis.call('SET', KEYS[1], ARGV[3], 'PX', 180000) return 1"
cost "the send's commands alone" "redis.call('INCR', KEYS[2]) redis.call('PEXPIRE', KEYS[2], 600000)
redis.call('INCR', KEYS[3]) redis.call('TIME') redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[3], 'PX', 180000) return {'stored', ARGV[3]}"
cost "open.lua, as a send runs it" "$PRELUDE
$(cat "$SCRIPTS/traffic_count.lua" "$SCRIPTS/open.lua")"

# traffic LABEL READ: Redis's µs per send the pumping breaker counts
# (traffic.lua) for a country whose hash holds its full 25 hours and 15
# days, the caller's reading of it being of hour slot READ (0: none, so
# the script reads the hash whole).
traffic() {
    local sha hour key='otp:traffic:{US}:US' fields=()
    sha=$(cat "$SCRIPTS/traffic_count.lua" "$SCRIPTS/traffic.lua" | redis-cli -p "$PORT" -x SCRIPT LOAD)
    redis-cli -p "$PORT" FLUSHALL >/dev/null
    hour=$(($(date +%s) / 3600))
    for i in $(seq 0 24); do fields+=("s$((hour - i))" 40 "a$((hour - i))" 30); done
    for i in $(seq 0 14); do fields+=("d$((hour / 24 - i))" 700); done
    redis-cli -p "$PORT" HSET "$key" "${fields[@]}" >/dev/null
    redis-cli -p "$PORT" CONFIG RESETSTAT >/dev/null
    redis-benchmark -p "$PORT" -n "$CALLS" -c 16 -q \
        EVALSHA "$sha" 1 "$key" send 0 25 15 1 '' 0 0 "${2/HOUR/$hour}" >/dev/null
    printf '| %s | %s |\n' "$1" "$(redis-cli -p "$PORT" INFO commandstats |
        sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')"
}
traffic "traffic.lua, a send to a country with 15 days of history, no reading held" 0
traffic "the same, this instance's reading of the hour held" HOUR
