#!/usr/bin/env bash
# Benchmarks otpd as deployed (every protection on) and with every limit off,
# side by side, against two minimal poem + Redis handlers on the same
# machine, and writes bench/results.md and docs/performance.svg (on the
# cluster: bench/results-cluster.md and docs/performance-cluster.svg).
#
#   scripts/bench.sh                      # 20 s per scenario, about 5 minutes
#   DURATION=5 scripts/bench.sh           # a quick look
#   SOAK=300 scripts/bench.sh             # then 5 minutes of sends at the defaults, RSS every 10 s
#   CLUSTER=1 scripts/bench.sh            # otpd on a Redis Cluster of 3 masters and 3 replicas
#
# Two measured otpd instances run side by side on Redis with the same hash
# key and API key, each under its own key prefix, behind a trusted proxy
# (127.0.0.1, where wrk connects from), their console sender writing to
# /dev/null and their events going to the reference's POST /hook:
#   defaults    every limit at its default; only the service-wide budget
#               (limits.sends_per_hour) raised so the run doesn't spend it;
#   limits off  every limit 0, the guess budget and the pumping breaker off.
# Every request carries the API key and a client address in X-Forwarded-For
# that changes every PER_CLIENT requests (IPv4 addresses and IPv6 /64s in
# turn, a range of their own per phase), and every phone is fresh.
#
# The run, in this order, each scenario for DURATION seconds with wrk at
# CONNECTIONS connections over THREADS threads:
#   memory         MEMORY_CODES sends at the defaults, one client each; Redis
#                  used_memory before and after (the outbox drained): bytes
#                  per pending code;
#   ref pool, ref mux (first)
#                  POST /ref and /mux on examples/bench_reference.rs: one
#                  SETEX through a bb8 pool / one multiplexed connection;
#   send           POST /v1/otp, defaults then limits off;
#   verify right   POST /v1/otp/verify with the right code, each code once,
#                  defaults then limits off, each after a batch of codes;
#   verify wrong   POST /v1/otp/verify with a wrong code, WRONG_TRIES per
#                  phone, defaults then limits off, each after a batch;
#   ref mux, ref pool (last)
#                  again, so the yardsticks see the machine as otpd did.
# After each otpd scenario it waits for the event outbox to drain, and counts
# that time's CPU with the scenario's. With events on, a third instance, the
# defaults without an event endpoint (quiet), takes the same sends at full
# load and both take them at 1 % of it (one connection, paced): what an
# event costs otpd is the difference in CPU per send over the events a send
# makes. docs/performance.md explains the method and the targets.
#
# Settings (environment):
#   DURATION (20)          seconds per scenario
#   SOAK (0 = none)        seconds of sends at the defaults after the scenarios
#   CONNECTIONS (32), THREADS (2)   wrk's -c and -t
#   OTPD_PORT (18080)      the defaults instance
#   OFF_PORT (18083)       the limits-off instance
#   QUIET_PORT (18084)     the defaults without an event endpoint (events on)
#   MAKER_PORT (18082)     the otpd that makes the verify scenarios' codes
#   REF_PORT (18081)       the reference server
#   PRIVATE_REDIS (1)      1: start a redis-server of the run's own on a free
#                          port (no persistence), so the command counts and
#                          Redis CPU are otpd's alone; a number: on that port;
#                          0: use REDIS_URL (also when redis-server is missing)
#   REDIS_URL (redis://127.0.0.1:6379)   the shared Redis, with PRIVATE_REDIS=0
#   CLUSTER (0)            1: otpd on a cluster of 3 masters + 3 replicas
#                          started for the run (the references stay on a
#                          single private Redis)
#   EVENTS (1)             0: no event endpoint on either instance
#   PER_CLIENT (10)        requests per client address
#   WRONG_TRIES (4)        wrong guesses per phone in the wrong-code scenario
#                          (under otp.max_attempts, 5, and limits.free_guesses, 10)
#   VERIFY_HEADROOM (2)    codes made per verify scenario, as a multiple of
#                          DURATION times the fastest otpd req/s so far
#   MEMORY_CODES (50000)   sends in the memory phase (0: skip it)
#   DRAIN_TIMEOUT (60)     longest wait, in seconds, for the outbox to drain
#   PACED_DURATION (DURATION, at least 20)   seconds of each run at 1 % of load
#   PROFILE (dist)         the cargo profile built and measured
#   BIN_DIR                measure the otpd and bench_reference found there
#   REF_BIN                the bench_reference to run (default: BIN_DIR's, or
#                          the one built), e.g. a new one beside an old otpd
#   CARGO_TARGET_DIR (<repo>/target/bench)   a build directory of its own
#   KEEP_WORK              1: keep the work folder (wrk output, codes, INFO
#                          snapshots, logs); it is kept anyway on failure
# Needs cargo, redis-cli, curl and python3 (redis-server for a private Redis
# or a cluster); installs wrk with apt-get if missing.
set -euo pipefail

# Work from the repository root whatever the caller's directory.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
STARTED=$SECONDS

DURATION=${DURATION:-20}
SOAK=${SOAK:-0}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
OTPD_PORT=${OTPD_PORT:-18080}
OFF_PORT=${OFF_PORT:-18083}
QUIET_PORT=${QUIET_PORT:-18084}
MAKER_PORT=${MAKER_PORT:-18082}
REF_PORT=${REF_PORT:-18081}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PRIVATE_REDIS=${PRIVATE_REDIS:-1}
CLUSTER=${CLUSTER:-0}
EVENTS=${EVENTS:-1}
PER_CLIENT=${PER_CLIENT:-10}
WRONG_TRIES=${WRONG_TRIES:-4}
VERIFY_HEADROOM=${VERIFY_HEADROOM:-2}
MEMORY_CODES=${MEMORY_CODES:-50000}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-60}
# The paced runs' length: long enough for a few thousand events at 1 %.
PACED_DURATION=${PACED_DURATION:-$(( DURATION > 20 ? DURATION : 20 ))}
PROFILE=${PROFILE:-dist}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/bench}

# What otpd runs with at the defaults, for the checks below and the report.
CODE_TTL=180           # otp.ttl_secs
MAX_ATTEMPTS=5         # otp.max_attempts
FREE_GUESSES=10        # limits.free_guesses
SENDS_PER_HOUR=1000000000
EVENT_SHARDS=16        # events.shards

# Every key this run makes starts with one of these, so cleanup of a shared
# Redis deletes only ours. Each instance has its own prefix, so neither's
# event worker delivers the other's events, nor do their counters meet.
RUN_ID="$(date +%Y%m%d%H%M%S)-$$"
PREFIX="bench:$RUN_ID:"
PREFIX_DEFAULTS="${PREFIX}defaults:"
PREFIX_OFF="${PREFIX}off:"
PREFIX_QUIET="${PREFIX}quiet:"
PREFIX_REF="${PREFIX}ref:"
HASH_KEY="bench-hash-key-$RUN_ID"
API_KEY="bench-api-key-$RUN_ID"
API_KEY_DIGEST=$(printf %s "$API_KEY" | sha256sum | cut -d' ' -f1)
# A fresh secret each run: otpd refuses the specification's published one.
WEBHOOK_SECRET="whsec_$(head -c 32 /dev/urandom | base64 -w0)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/otpd-bench.XXXXXX")
SMS="$WORK/sms.txt"        # the code maker's stdout: one console line per code sent
RESULTS="$WORK/results"    # one BENCH line per wrk run
FACTS="$WORK/facts"        # key=value lines for the report
OTPD_URL="http://127.0.0.1:$OTPD_PORT"
OFF_URL="http://127.0.0.1:$OFF_PORT"
QUIET_URL="http://127.0.0.1:$QUIET_PORT"
MAKER_URL="http://127.0.0.1:$MAKER_PORT"
REF_URL="http://127.0.0.1:$REF_PORT"
: >"$RESULTS"
: >"$FACTS"

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; fact warning "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }

DEFAULTS_PID="" OFF_PID="" QUIET_PID="" MAKER_PID="" REF_PID="" WRK_PID=""
REDIS_PIDS=()
stop_pid() {
    local pid=$1
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -CONT "$pid" 2>/dev/null || true # if paused (below)
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
# Every key matching PATTERN on one node, one a line: SCAN with a large
# COUNT (`redis-cli --scan` asks for ten keys a call, and a long run leaves
# millions).
scan_keys() {
    local node=$1 pattern=$2 cursor=0 reply
    while :; do
        mapfile -t reply < <(redis-cli -u "$node" --raw SCAN "$cursor" MATCH "$pattern" COUNT 10000)
        (( ${#reply[@]} > 0 )) || return 1
        cursor=${reply[0]}
        if (( ${#reply[@]} > 1 )); then printf '%s\n' "${reply[@]:1}"; fi
        [[ $cursor == 0 ]] && break
    done
    return 0
}
# Deletes this run's keys from the shared Redis, and prints how many.
unlink_run_keys() {
    scan_keys "$REDIS_URL" "${PREFIX}*" >"$WORK/run-keys.txt" || return 1
    xargs -r -n 1000 redis-cli -u "$REDIS_URL" UNLINK <"$WORK/run-keys.txt" >/dev/null
    wc -l <"$WORK/run-keys.txt"
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # Stop what we started, by pid: wrk (if a run was cut short), otpd, the
    # reference, then the Redis servers of the run's own, keys and all.
    for pid in "$WRK_PID" "$DEFAULTS_PID" "$OFF_PID" "$QUIET_PID" "$MAKER_PID" "$REF_PID" "${REDIS_PIDS[@]}"; do
        stop_pid "$pid"
    done
    # Only this run's keys on a shared Redis, which stays up.
    if [[ ${USES_SHARED_REDIS:-0} == 1 ]] && command -v redis-cli >/dev/null; then
        local deleted
        deleted=$(unlink_run_keys) || deleted="?"
        log "deleted $deleted Redis keys under $PREFIX"
    fi
    if [[ $status -eq 0 && ${KEEP_WORK:-0} != 1 ]]; then
        rm -rf "$WORK"
    elif [[ $status -eq 0 ]]; then
        log "work folder kept: $WORK"
    else
        log "failed; logs kept in $WORK (*.err, *.out)"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. Build and tools ------------------------------------------------------

# --bin as well as --examples: with --examples alone cargo builds only the
# examples (and the library), not the otpd binary.
if [[ -n ${BIN_DIR:-} ]]; then
    log "using otpd and bench_reference from $BIN_DIR"
    OTPD_BIN="$BIN_DIR/otpd"
    REF_BIN=${REF_BIN:-$BIN_DIR/bench_reference}
else
    log "building otpd and examples/bench_reference.rs (profile $PROFILE, $CARGO_TARGET_DIR)"
    cargo build --profile "$PROFILE" --bin otpd --examples
    OTPD_BIN="$CARGO_TARGET_DIR/$PROFILE/otpd"
    REF_BIN=${REF_BIN:-$CARGO_TARGET_DIR/$PROFILE/examples/bench_reference}
fi
[[ -x $OTPD_BIN ]] || die "no otpd at $OTPD_BIN"
[[ -x $REF_BIN ]] || die "no bench_reference at $REF_BIN"

if ! command -v wrk >/dev/null; then
    log "installing wrk"
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    # The package lists may be stale; refresh them only if the install fails.
    $SUDO apt-get install -y wrk || { $SUDO apt-get update && $SUDO apt-get install -y wrk; }
fi
for tool in wrk redis-cli curl python3; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done

for port in "$OTPD_PORT" "$OFF_PORT" "$QUIET_PORT" "$MAKER_PORT" "$REF_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port is in use; set OTPD_PORT / OFF_PORT / QUIET_PORT / MAKER_PORT / REF_PORT"
    fi
done

# Codes live otp.ttl_secs (180 s) at the defaults; each verify scenario's
# codes are made just before it, and the oldest must outlive it.
if (( DURATION > 60 )); then
    warn "DURATION=$DURATION: codes live $CODE_TTL s, and a verify scenario's batch of codes takes about VERIFY_HEADROOM x DURATION to make; past about 60 s the oldest codes may expire before they are used (404s in the status mix)"
fi
# A code locks at its max_attempts-th wrong guess, and the guess budget makes
# a phone wait after free_guesses of them: the wrong-code scenario stays under both.
if (( WRONG_TRIES >= MAX_ATTEMPTS || WRONG_TRIES >= FREE_GUESSES )); then
    warn "WRONG_TRIES=$WRONG_TRIES reaches otp.max_attempts ($MAX_ATTEMPTS) or limits.free_guesses ($FREE_GUESSES): expect 429s in the wrong-code scenario"
fi

# --- 2. Redis ----------------------------------------------------------------

# The Redis servers otpd and the references use, each as a list of redis-cli
# URLs (one per node: a cluster's INFO is summed over its nodes).
OTPD_NODES=() REF_NODES=()
ncli() { local node=$1; shift; redis-cli -u "$node" "$@"; }

# A port free for a redis-server, and for its cluster bus (port + 10000).
free_port() {
    python3 - "$@" <<'EOF'
import random, socket, sys
taken = set(int(p) for p in sys.argv[1:])
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
while True:
    port = random.randint(20000, 28999)
    if port not in taken and free(port) and free(port + 10000):
        print(port)
        break
EOF
}
# start_redis PORT [extra redis-server arguments]: no persistence; it lives
# for this run only, and its pid is ours to stop.
start_redis() {
    local port=$1; shift
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$WORK" "$@" >"$WORK/redis-$port.log" 2>&1 &
    REDIS_PIDS+=("$!")
    for _ in $(seq 1 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "redis-server on $port did not start: $(tail -3 "$WORK/redis-$port.log")"
}

if [[ $PRIVATE_REDIS != 0 ]] && ! command -v redis-server >/dev/null; then
    (( CLUSTER == 1 )) && die "CLUSTER=1 needs redis-server"
    warn "redis-server is missing: using the shared Redis at $REDIS_URL (other clients' commands and CPU mix into Redis's figures)"
    PRIVATE_REDIS=0
fi
if [[ $PRIVATE_REDIS == 0 ]]; then
    USES_SHARED_REDIS=1
    SINGLE_URL=$REDIS_URL
else
    port=$PRIVATE_REDIS
    [[ $port == 1 ]] && port=$(free_port)
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port is in use; pick a free one for PRIVATE_REDIS"
    fi
    log "starting a private redis-server on port $port"
    start_redis "$port"
    SINGLE_URL="redis://127.0.0.1:$port"
fi
ncli "$SINGLE_URL" ping >/dev/null || die "no Redis at $SINGLE_URL"
# On Redis of the run's own the defaults instance keeps the default key
# prefix, `otp:`: key names are part of what a pending code costs.
if [[ ${USES_SHARED_REDIS:-0} != 1 ]]; then
    PREFIX_DEFAULTS="otp:" PREFIX_OFF="off:" PREFIX_REF="ref:"
fi
REF_NODES=("$SINGLE_URL")

if (( CLUSTER == 1 )); then
    # As the tests do (tests/it/own_redis.rs): six servers in cluster mode,
    # then `redis-cli --cluster create` with one replica per master.
    ports=()
    while (( ${#ports[@]} < 6 )); do ports+=("$(free_port "${ports[@]}")"); done
    log "starting a Redis Cluster (3 masters, 3 replicas) on ports ${ports[*]}"
    for port in "${ports[@]}"; do
        start_redis "$port" --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
            --cluster-node-timeout 2000
    done
    addresses=()
    for port in "${ports[@]}"; do addresses+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes \
        >"$WORK/cluster-create.log" 2>&1 || die "cluster create failed: $(tail -5 "$WORK/cluster-create.log")"
    for _ in $(seq 1 300); do
        ok=1
        for port in "${ports[@]}"; do
            redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' || ok=0
        done
        (( ok )) && break
        sleep 0.1
    done
    (( ok )) || die "the cluster did not come up"
    for port in "${ports[@]}"; do OTPD_NODES+=("redis://127.0.0.1:$port"); done
    OTPD_REDIS_URL="redis+cluster://${addresses[0]},${addresses[1]},${addresses[2]}"
else
    OTPD_NODES=("$SINGLE_URL")
    OTPD_REDIS_URL=$SINGLE_URL
fi

# The masters among a list of nodes: they hold the data and run the commands
# (a replica runs them again, and its CPU counts; its commands and memory
# would count them twice).
masters_of() {
    local node
    for node in "$@"; do
        ncli "$node" INFO replication | grep -q '^role:master' && echo "$node"
    done
    return 0
}
mapfile -t OTPD_MASTERS < <(masters_of "${OTPD_NODES[@]}")
(( ${#OTPD_MASTERS[@]} > 0 )) || die "no master among ${OTPD_NODES[*]}"

# Sums one `INFO` field over nodes.
info_sum() {
    local section=$1 field=$2 node; shift 2
    for node in "$@"; do ncli "$node" INFO "$section"; done |
        awk -F: -v f="$field" '$1 == f {s += $2} END {printf "%.0f\n", s}'
}
# Redis's CPU time, user + system, in seconds, over nodes.
redis_cpu() {
    local node
    for node in "$@"; do ncli "$node" INFO cpu; done | tr -d '\r' |
        awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" {s += $2} END {printf "%.3f\n", s}'
}
# Redis's memory for data, over otpd's masters, as two numbers: used_memory,
# and used_memory less what is not the data's and moves on its own: the
# replication buffers (on a cluster, up to 1 MB per master, filled as writes
# come in) and the clients' buffers.
data_memory() {
    local node
    for node in "${OTPD_MASTERS[@]}"; do ncli "$node" INFO memory; done | tr -d '\r' | awk -F: '
        $1 == "used_memory" {used += $2}
        $1 == "mem_replication_backlog" || $1 == "mem_clients_slaves" || $1 == "mem_clients_normal" {buffers += $2}
        END {printf "%.0f %.0f\n", used, used - buffers}'
}

# --- 3. Start otpd and the reference -----------------------------------------

# The settings of each otpd, as NAME=value words, into SETTINGS.
#   defaults  what docs/operations.md has an operator run: Redis, a hash key,
#             an API key (as its digest), a trusted proxy, every limit at its
#             default, events to an endpoint; only the service-wide budget is
#             raised, so the run doesn't spend it;
#   off       the same with every limit 0 and the guess budget off;
#   maker     the API key (its codes are in the measured instance's scope),
#             no proxy, no events: it only makes codes; limits off
#             but, making codes for the defaults instance (MAKING_FOR), the
#             phone's cooldown and quota at their defaults, so its codes
#             carry the phone's tally as that instance's would.
# otp.ttl_secs and otp.max_attempts stay at their defaults in all three.
settings_for() {
    local role=$1 port=$2 prefix=$3
    SETTINGS=(
        "OTPD_HTTP__LISTEN=127.0.0.1:$port"
        "OTPD_STORE__URL=$OTPD_REDIS_URL"
        "OTPD_STORE__KEY_PREFIX=$prefix"
        "OTPD_OTP__HASH_KEYS=$HASH_KEY"
        "OTPD_SMS__PROVIDER=console"
        "OTPD_LOG__LEVEL=warn"
        "OTPD_AUTH__API_KEYS=sha256:$API_KEY_DIGEST"
    )
    if [[ $role != maker ]]; then
        SETTINGS+=("OTPD_HTTP__TRUSTED_PROXIES=127.0.0.1")
        if [[ $EVENTS == 1 && $role != quiet ]]; then
            SETTINGS+=(
                "OTPD_EVENTS__ENDPOINTS__BENCH__URL=$REF_URL/hook"
                "OTPD_EVENTS__ENDPOINTS__BENCH__SECRETS=$WEBHOOK_SECRET"
            )
        fi
    fi
    if [[ $role == defaults || $role == quiet ]]; then
        SETTINGS+=("OTPD_LIMITS__SENDS_PER_HOUR=$SENDS_PER_HOUR")
    else
        if [[ $role != maker || ${MAKING_FOR:-} != defaults ]]; then
            SETTINGS+=(OTPD_LIMITS__RESEND_AFTER_SECS=0 OTPD_LIMITS__SENDS_PER_PHONE=0)
        fi
        SETTINGS+=(
            OTPD_LIMITS__SENDS_PER_IP=0
            OTPD_LIMITS__VERIFIES_PER_IP=0
            OTPD_LIMITS__LOOKUPS_PER_IP=0
            OTPD_LIMITS__SENDS_PER_HOUR=0
            OTPD_LIMITS__MAX_CONSECUTIVE_GUESSES=0
        )
        # The phone's ceiling, in builds that have it (an older otpd, measured
        # for a before-and-after, refuses a setting it doesn't know).
        if grep -qa wrong_codes_per_phone "$OTPD_BIN"; then
            SETTINGS+=(OTPD_LIMITS__WRONG_CODES_PER_PHONE=0)
        fi
        # The pumping breaker, likewise.
        if grep -qa countries_per_client "$OTPD_BIN"; then
            SETTINGS+=(OTPD_FRAUD__COUNTRY_MODE=off OTPD_FRAUD__PREFIX_MODE=off OTPD_FRAUD__CLIENT_MODE=off)
        fi
    fi
}
# The settings for the report, secrets replaced by what they are.
describe_settings() {
    settings_for "$@"
    printf '%s\n' "${SETTINGS[@]}" | sed -E \
        -e 's/^(OTPD_OTP__HASH_KEYS)=.*/\1=<a hash key>/' \
        -e 's/^(OTPD_AUTH__API_KEYS)=.*/\1=sha256:<the digest of the API key wrk sends>/' \
        -e 's/^(OTPD_EVENTS__ENDPOINTS__BENCH__SECRETS)=.*/\1=<a whsec_ secret>/' \
        -e "s/$RUN_ID/<run>/g" | paste -sd' ' -
}

# start_otpd ROLE PORT PREFIX STDOUT, in the background: sets OTPD_STARTED
# to its pid. It runs from the work folder so an otpd.toml in the caller's
# directory can't apply, with every other OTPD_ variable unset (one from the
# caller's environment would change what is measured, and this script's own
# OTPD_PORT is no setting) and no RUST_LOG (it would beat log.level).
start_otpd() {
    local role=$1 port=$2 prefix=$3 out=$4
    settings_for "$role" "$port" "$prefix"
    (
        cd "$WORK"
        for var in $(compgen -e | grep '^OTPD_' || true); do unset "$var"; done
        unset RUST_LOG
        exec env "${SETTINGS[@]}" "$OTPD_BIN" >>"$out" 2>>"$WORK/$role.err"
    ) &
    OTPD_STARTED=$!
}

# Up when it answers: otpd's /healthz, and a real /ref and /mux request.
wait_for() {
    local what=$1 pid=$2; shift 2
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || die "$what exited at start: $(tail -n 5 "$WORK"/*.err)"
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    die "$what did not come up in 10 s"
}

# While one otpd is measured the other is paused (SIGSTOP), and both are
# while a reference is: an idle instance's event worker looks for work
# every 250 ms, a few hundred Redis commands a second, which would otherwise
# land in the figures of whatever is measured. `resume_otpd` lets them go on.
pause_otpd_but() {
    local keep=$1 pid
    for pid in "$DEFAULTS_PID" "$OFF_PID" $QUIET_PID; do
        if [[ $pid != "$keep" ]]; then kill -STOP "$pid"; fi
    done
}
resume_otpd() { kill -CONT "$DEFAULTS_PID" "$OFF_PID" $QUIET_PID; }

log "starting the reference on $REF_URL (Redis ${REF_NODES[0]})"
# One pooled connection per wrk connection: no request waits for a slot.
REF_LISTEN="127.0.0.1:$REF_PORT" REF_REDIS_URL="${REF_NODES[0]}" REF_KEY_PREFIX="$PREFIX_REF" \
    REF_POOL_SIZE="$CONNECTIONS" "$REF_BIN" >/dev/null 2>"$WORK/reference.err" &
REF_PID=$!
wait_for "the reference" "$REF_PID" curl -sf -H 'Content-Type: application/json' \
    -d '{"phone":"+14155550000"}' "$REF_URL/ref"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"phone":"+14155550001"}' "$REF_URL/mux")
[[ $code == 202 ]] || die "the reference at $REF_BIN answered $code to POST /mux, not 202 (one built before /mux? set REF_BIN to a bench_reference built from this checkout)"

log "starting otpd at the defaults on $OTPD_URL and with limits off on $OFF_URL (store $OTPD_REDIS_URL), SMS to /dev/null"
start_otpd defaults "$OTPD_PORT" "$PREFIX_DEFAULTS" /dev/null
DEFAULTS_PID=$OTPD_STARTED
start_otpd off "$OFF_PORT" "$PREFIX_OFF" /dev/null
OFF_PID=$OTPD_STARTED
wait_for "otpd (defaults)" "$DEFAULTS_PID" curl -sf "$OTPD_URL/healthz"
wait_for "otpd (limits off)" "$OFF_PID" curl -sf "$OFF_URL/healthz"
if [[ $EVENTS == 1 ]]; then
    start_otpd quiet "$QUIET_PORT" "$PREFIX_QUIET" /dev/null
    QUIET_PID=$OTPD_STARTED
    wait_for "otpd (defaults, no events)" "$QUIET_PID" curl -sf "$QUIET_URL/healthz"
fi

# A send with the key from a client address must be accepted before anything
# is measured (a 400 means the wrk scripts' phones are not valid for otpd, a
# 401 that the key is wrong, a 429 a limit), and one without the key refused:
# the defaults are really on.
probe() {
    curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "$@"
}
for url in "$OTPD_URL" "$OFF_URL"; do
    code=$(probe -H "Authorization: Bearer $API_KEY" -H 'X-Forwarded-For: 198.51.100.1' \
        -d '{"phone":"+19175550000"}' "$url/v1/otp")
    [[ $code == 202 ]] || die "a probe send to $url got $code, not 202"
    code=$(probe -d '{"phone":"+19175550001"}' "$url/v1/otp")
    [[ $code == 401 ]] || die "a probe send to $url without the API key got $code, not 401"
done

# --- Helpers for the runs ----------------------------------------------------

# One line of otpd's counters, from its /metrics (behind the API key):
#   served store_calls store_errors events_kept events_dropped delivered sent waiting labelled all_calls
# store_calls are the API's own (`caller="requests"`) when otpd labels them
# by caller, else all of them; all_calls are every caller's (the event
# worker's too). 0 for a metric that is missing: a report
# without it beats no report.
otpd_counters() {
    { curl -sf -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$1/metrics" || true; } | awk '
        /^#/ {next}
        {
            name = $1; sub(/\{.*/, "", name); v = $NF
            if (name == "otpd_http_request_duration_seconds_count") served += v
            else if (name == "otpd_store_calls_total") {
                calls_all += v
                if (index($1, "caller=\"requests\"")) { calls_req += v; labelled = 1 }
            }
            else if (name == "otpd_store_errors_total") errors += v
            else if (name == "otpd_events_total" && index($1, "outcome=\"kept\"")) kept += v
            else if (name == "otpd_events_total" && index($1, "outcome=\"dropped\"")) dropped += v
            else if (name == "otpd_event_deliveries_seconds_count" && index($1, "outcome=\"delivered\"")) delivered += v
            else if (name == "otpd_sends_total" && index($1, "outcome=\"sent\"")) sent += v
            else if (name == "otpd_events_waiting") waiting += v
        }
        END {
            printf "%d %d %d %d %d %d %d %d %d %d\n", served, labelled ? calls_req : calls_all, errors,
                kept, dropped, delivered, sent, waiting, labelled, calls_all
        }'
}
counter() { otpd_counters "$1" | awk -v i="$2" '{print $i}'; }
rss_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# CPU time a process has used, user + system, in clock ticks. Per request it
# says how much work a request costs, which the other load on a shared
# machine skews less than req/s.
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
# The same in nanoseconds, from each thread's schedstat: what a slow run's
# few ticks can't resolve. A thread that ends within the run takes its time
# with it (otpd's threads live as long as it does, bar tokio's blocking
# pool, which a send doesn't use).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d\n", s}'; }
TICKS=$(getconf CLK_TCK)
ticks_to_s() { awk -v t="$1" -v hz="$TICKS" 'BEGIN {printf "%.2f", t / hz}'; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a - b}'; }
# CHILDREN_CPU: the user + system seconds of this shell's children reaped so
# far (bash's `times`, second line). Read just before wrk starts and just
# after it is reaped, the difference is wrk's own CPU. Not called as $(...):
# a subshell's `times` has only the subshell's children, none.
children_cpu() {
    times >"$WORK/times"
    CHILDREN_CPU=$(awk 'NR == 2 {for (i = 1; i <= 2; i++) {split($i, t, /[ms]/); s += t[1] * 60 + t[2]}}
                        END {printf "%.3f", s}' "$WORK/times")
}

# Deliveries still in an instance's outbox: the entries of its streams (one
# per shard, `<prefix>events:{n}`, and its retries beside it). On a cluster
# redis-cli -c follows each key to its node (and says so on a line of its
# own, which the grep drops). -1 when none
# of the streams exists, e.g. when the outbox's layout has changed: then
# otpd's own gauge is the answer (it is read every 10 s, so it lags).
backlog() {
    local prefix=$1 shard
    {
        for ((shard = 0; shard < EVENT_SHARDS; shard++)); do
            printf 'EXISTS %sevents:{%d}\nXLEN %sevents:{%d}\nZCARD %sevents:{%d}:retry\n' \
                "$prefix" "$shard" "$prefix" "$shard" "$prefix" "$shard"
        done
    } | redis-cli -c -u "${OTPD_NODES[0]}" | grep -E '^-?[0-9]+$' | awk '
        NR % 3 == 1 {exists += $1; next}
        {n += $1}
        END {print (exists > 0 ? n : -1)}'
}
# Waits until an instance's outbox is empty, for at most DRAIN_TIMEOUT
# seconds, and prints how long it took and how often it looked (each look
# is 3 commands per shard, which the report takes out of Redis's command
# counts). Events are delivered after the API call answers, so this is work
# a scenario's requests caused.
drain() {
    local prefix=$1 port=$2 start=$EPOCHREALTIME left looks=0
    [[ $EVENTS == 1 ]] || { echo "0 0"; return; }
    while :; do
        left=$(backlog "$prefix")
        looks=$((looks + 1))
        if (( left < 0 )); then
            (( $(counter "$port" 4) == 0 )) && break # no event made yet
            left=$(counter "$port" 8)
        fi
        (( left == 0 )) && break
        if (( $(since "$start") >= DRAIN_TIMEOUT )); then
            warn "the outbox of the otpd on port $port still held $left deliveries after $DRAIN_TIMEOUT s"
            break
        fi
        sleep 0.2
    done
    awk -v s="$start" -v e="$EPOCHREALTIME" -v n="$looks" 'BEGIN {printf "%.1f %d\n", e - s, n}'
}
# Whole seconds since an $EPOCHREALTIME.
since() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN {printf "%d\n", e - s}'; }

# Snapshots around a run: the serving process's CPU, Redis's CPU and
# commands, and for otpd its counters.
snapshot() {
    local tag=$1 pid=$2 port=$3; shift 3
    SNAP_CPU=$(cpu_ticks "$pid")
    SNAP_REDIS_CPU=$(redis_cpu "$@")
    local masters
    mapfile -t masters < <(masters_of "$@")
    for node in "${masters[@]}"; do ncli "$node" INFO commandstats; done >"$WORK/$tag"
    SNAP_COUNTERS="0 0 0 0 0 0 0 0 0 0"
    [[ -n $port ]] && SNAP_COUNTERS=$(otpd_counters "$port")
    return 0
}

# run_wrk NAME INSTANCE URL SCRIPT SECONDS [key=value ...]
# Runs one scenario with wrk, keeps its output in $WORK/NAME.out, and
# appends its BENCH line to $RESULTS with what the script measured around
# it: for otpd, its counters' changes, its CPU, Redis's and the event
# endpoint's over the run and the outbox's drain after it, and its RSS; for
# every run, wrk's own CPU. INFO commandstats before and
# after go to NAME.cmd.before / NAME.cmd.after, for commands per request.
# INSTANCE: defaults, off, pool or mux.
run_wrk() {
    local name=$1 instance=$2 url=$3 script=$4 seconds=$5
    shift 5
    local pid port="" prefix="" nodes
    case $instance in
        defaults) pid=$DEFAULTS_PID port=$OTPD_PORT prefix=$PREFIX_DEFAULTS nodes=("${OTPD_NODES[@]}") ;;
        off) pid=$OFF_PID port=$OFF_PORT prefix=$PREFIX_OFF nodes=("${OTPD_NODES[@]}") ;;
        quiet) pid=$QUIET_PID port=$QUIET_PORT prefix=$PREFIX_QUIET nodes=("${OTPD_NODES[@]}") ;;
        *) pid=$REF_PID nodes=("${REF_NODES[@]}") ;;
    esac
    pause_otpd_but "$pid"
    snapshot "$name.cmd.before" "$pid" "$port" "${nodes[@]}"
    local cpu0=$SNAP_CPU rcpu0=$SNAP_REDIS_CPU counters0=$SNAP_COUNTERS ns0
    ns0=$(cpu_ns "$pid")
    # While otpd is measured the reference serves only its POST /hook: its
    # CPU is what the events cost their endpoint.
    local hook0=0
    if [[ -n $port ]]; then hook0=$(cpu_ticks "$REF_PID"); fi
    children_cpu
    local wrk0=$CHILDREN_CPU
    # RUN_THREADS and RUN_CONNECTIONS: one run's own, for the paced ones.
    local threads=${RUN_THREADS:-$THREADS}
    wrk -t"$threads" -c"${RUN_CONNECTIONS:-$CONNECTIONS}" -d"${seconds}s" --timeout 5s -s "$script" "$url" \
        -- threads="$threads" name="$name" key="$API_KEY" per_client="$PER_CLIENT" "$@" \
        >"$WORK/$name.out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || die "wrk failed for $name: $(tail -5 "$WORK/$name.out")"
    WRK_PID=""
    children_cpu
    local wrk_cpu
    wrk_cpu=$(fsub "$CHILDREN_CPU" "$wrk0")
    local cpu1 rcpu1 drain_s=0 looks=0 ns1
    cpu1=$(cpu_ticks "$pid") ns1=$(cpu_ns "$pid")
    rcpu1=$(redis_cpu "${nodes[@]}")
    if [[ -n $port ]]; then read -r drain_s looks < <(drain "$prefix" "$port"); fi
    local ns2
    ns2=$(cpu_ns "$pid")
    snapshot "$name.cmd.after" "$pid" "$port" "${nodes[@]}"
    local hook_ticks=0
    if [[ -n $port ]]; then hook_ticks=$(( $(cpu_ticks "$REF_PID") - hook0 )); fi
    resume_otpd
    local line
    line=$(grep '^BENCH ' "$WORK/$name.out") || die "no BENCH line from wrk for $name: $(cat "$WORK/$name.out")"
    local deltas
    deltas=$(paste -d' ' <(tr ' ' '\n' <<<"$counters0") <(tr ' ' '\n' <<<"$SNAP_COUNTERS") |
        awk '{d[NR] = $2 - $1} END {printf "served=%d store_calls=%d store_errors=%d events_kept=%d events_dropped=%d delivered=%d all_store_calls=%d", d[1], d[2], d[3], d[4], d[5], d[6], d[10]}')
    echo "$line instance=$instance phase=scenario $deltas" \
        "cpu_s=$(ticks_to_s $((cpu1 - cpu0))) drain_cpu_s=$(ticks_to_s $((SNAP_CPU - cpu1)))" \
        "cpu_ns=$((ns1 - ns0)) drain_cpu_ns=$((ns2 - ns1))" \
        "redis_cpu_s=$(fsub "$rcpu1" "$rcpu0") drain_redis_cpu_s=$(fsub "$SNAP_REDIS_CPU" "$rcpu1")" \
        "wrk_cpu_s=$wrk_cpu hook_cpu_s=$(ticks_to_s "$hook_ticks")" \
        "drain_s=$drain_s drain_looks=$looks rss_kb=$(rss_kb "$pid" VmRSS) hwm_kb=$(rss_kb "$pid" VmHWM)" >>"$RESULTS"
    grep '^WARNING ' "$WORK/$name.out" >&2 || true
    # One readable line as we go; the tables come at the end.
    awk '{for (i = 2; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
          printf "    %-22s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  statuses %s%s\n",
                 v["scenario"], v["rps"], v["p50_ms"], v["p99_ms"], v["statuses"],
                 (v["drain_s"] > 0 ? "  (events drained in " v["drain_s"] " s)" : "")}' \
        <<<"$(tail -1 "$RESULTS")" >&2
}
field() { grep "^BENCH scenario=$1 " "$RESULTS" | tail -1 | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
# The fastest req/s any otpd scenario has reached so far: how fast the next
# verify scenario may go through its codes.
fastest_otpd() {
    awk '/^BENCH / && /phase=scenario/ && (/instance=defaults/ || /instance=off/) {
            for (i = 2; i <= NF; i++) {split($i, kv, "="); if (kv[1] == "rps" && kv[2] > m) m = kv[2]}
         } END {printf "%.0f\n", m}' "$RESULTS"
}

# Area codes and client address ranges (phase, 0 to 26) per phase, so no
# phase sends to a phone, or comes from a client, another one used. The two
# instances get the same phones and clients in a scenario (same streams);
# their key prefixes keep them apart.
AREAS_MEMORY=206   PHASE_MEMORY=0
AREAS_REF_POOL_FIRST=818 PHASE_REF_POOL_FIRST=1
AREAS_REF_MUX_FIRST=919  PHASE_REF_MUX_FIRST=2
AREAS_SEND=415,212 PHASE_SEND=3
AREAS_RIGHT=310,646 PHASE_RIGHT=4
AREAS_WRONG=303,404 PHASE_WRONG=5
AREAS_REF_MUX_LAST=213  PHASE_REF_MUX_LAST=6
AREAS_REF_POOL_LAST=305 PHASE_REF_POOL_LAST=7
AREAS_SOAK=312,617,512,602,702 PHASE_SOAK=8
PHASE_CODES=9

# make_codes NAME PREFIX AREAS COUNT PER_PHONE_USES: a batch of COUNT codes
# under PREFIX, from a code maker started for it and stopped after, into
# $WORK/NAME.txt as `phone code` lines. The maker runs with limits off on the
# same Redis, prefix and hash key as the instance that will verify them, as
# another instance of its deployment; its console prints to a file. A send
# run is cut short with SIGINT once the file has enough lines (wrk has no
# request-count option). USES_AFTER: the seconds the batch's first codes
# must outlive it (the wrong-code scenario goes round its phones for all of
# DURATION), for the expiry check.
make_codes() {
    local name=$1 prefix=$2 areas=$3 want=$4 outlive=$5
    : >"$SMS"
    start_otpd maker "$MAKER_PORT" "$prefix" "$SMS"
    MAKER_PID=$OTPD_STARTED
    wait_for "the code maker" "$MAKER_PID" curl -sf "$MAKER_URL/healthz"
    local start=$SECONDS rate cap
    rate=$(fastest_otpd)
    cap=$(( 3 * want / (rate > 0 ? rate : 1000) + 60 ))
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${cap}s" --timeout 5s -s bench/send.lua "$MAKER_URL" \
        -- threads="$THREADS" name="$name" areas="$areas" expected=202 phase="$PHASE_CODES" \
        per_client="$PER_CLIENT" key="$API_KEY" >"$WORK/$name.out" 2>&1 &
    WRK_PID=$!
    while kill -0 "$WRK_PID" 2>/dev/null; do
        if (( $(wc -l <"$SMS") >= want )); then kill -INT "$WRK_PID" 2>/dev/null || true; break; fi
        sleep 0.2
    done
    wait "$WRK_PID" || true
    WRK_PID=""
    # Stopping the maker lets the requests in flight when wrk stopped finish
    # and print first.
    stop_pid "$MAKER_PID"
    MAKER_PID=""
    local took=$((SECONDS - start))
    grep '^BENCH ' "$WORK/$name.out" | sed "s/\$/ instance=maker phase=prep batch_s=$took/" >>"$RESULTS" ||
        die "the code batch $name failed: $(tail -5 "$WORK/$name.out")"
    sed -nE 's/^SMS to (\+[0-9]+): .* code is ([0-9]{6})\..*/\1 \2/p' "$SMS" >"$WORK/$name.txt"
    : >"$SMS"
    local made
    made=$(wc -l <"$WORK/$name.txt")
    (( made >= want )) || die "only $made codes were made for $name, $want wanted (see $WORK/$name.out)"
    if (( took + outlive + 10 > CODE_TTL )); then
        warn "$name took $took s to make; its first codes are used up to $((took + outlive)) s after they were made, near or past their $CODE_TTL s life: lower DURATION or VERIFY_HEADROOM"
    fi
    log "    made $made codes in $took s"
}
# How many codes the next verify scenario needs: VERIFY_HEADROOM times what
# the fastest otpd scenario so far would do in DURATION.
codes_needed() {
    python3 -c "import math; print(max(1000, math.ceil($VERIFY_HEADROOM * $(fastest_otpd) * $DURATION / $1)))"
}

# --- 4. Memory per pending code ----------------------------------------------

fact load_before "$(cut -d' ' -f1-3 /proc/loadavg)"
# The probes' events delivered, so nothing is in flight when an instance is paused.
drain "$PREFIX_DEFAULTS" "$OTPD_PORT" >/dev/null
drain "$PREFIX_OFF" "$OFF_PORT" >/dev/null
fact event_shards "$EVENT_SHARDS"

if (( MEMORY_CODES > 0 )); then
    # On a Redis that holds nothing else of the run's yet (no key is expiring
    # under the measurement): MEMORY_CODES sends at the defaults, each from a
    # client of its own (so each has its own client counter, as most users
    # do), then the outbox drained, then used_memory again.
    log "memory: $MEMORY_CODES sends at the defaults, one client each"
    pause_otpd_but "$DEFAULTS_PID"
    sleep 1
    read -r used0 mem0 < <(data_memory)
    sent0=$(counter "$OTPD_PORT" 7)
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$((MEMORY_CODES / 500 + 60))s" --timeout 5s -s bench/send.lua "$OTPD_URL" \
        -- threads="$THREADS" name=memory areas="$AREAS_MEMORY" expected=202 phase="$PHASE_MEMORY" \
        per_client=1 key="$API_KEY" >"$WORK/memory.out" 2>&1 &
    WRK_PID=$!
    while kill -0 "$WRK_PID" 2>/dev/null; do
        if (( $(counter "$OTPD_PORT" 7) - sent0 >= MEMORY_CODES )); then kill -INT "$WRK_PID" 2>/dev/null || true; break; fi
        sleep 0.2
    done
    wait "$WRK_PID" || true
    WRK_PID=""
    sleep 1 # requests in flight when wrk stopped finish
    read -r drained _ < <(drain "$PREFIX_DEFAULTS" "$OTPD_PORT")
    sleep 1
    read -r used1 mem1 < <(data_memory)
    sent1=$(counter "$OTPD_PORT" 7)
    resume_otpd
    grep '^BENCH ' "$WORK/memory.out" | sed 's/$/ instance=defaults phase=memory/' >>"$RESULTS" || true
    grep '^WARNING ' "$WORK/memory.out" >&2 || true
    fact memory_codes "$((sent1 - sent0))"
    fact memory_bytes "$((mem1 - mem0))"
    fact memory_used_bytes "$((used1 - used0))"
    fact memory_drain_s "$drained"
    awk -v b=$((mem1 - mem0)) -v n=$((sent1 - sent0)) -v d="$drained" 'BEGIN {
        printf "    %d pending codes: +%d bytes of data, %.0f bytes per code (outbox drained in %s s)\n", n, b, n ? b / n : 0, d}' >&2

    # What the memory is, by kind of key: every key under the instance's
    # prefix, its name with the hash tag's contents taken out, counted; and
    # MEMORY USAGE and PTTL of up to 50 of each kind (how long a kind lives
    # is what a steady rate of sends holds of it: report.py).
    for node in "${OTPD_MASTERS[@]}"; do
        scan_keys "$node" "${PREFIX_DEFAULTS}*" >"$WORK/keys.txt"
        awk -v p="$PREFIX_DEFAULTS" '{k = substr($0, length(p) + 1); gsub(/\{[^}]*\}/, "{}", k); print k "\t" $0}' \
            "$WORK/keys.txt" >"$WORK/kinds.txt"
        awk -F'\t' '{n[$1]++} END {for (k in n) print k "\t" n[k]}' "$WORK/kinds.txt" >>"$WORK/kind-counts.txt"
        awk -F'\t' 'seen[$1]++ < 50 {print $1 "\t" $2}' "$WORK/kinds.txt" >"$WORK/sample.txt"
        cut -f2 "$WORK/sample.txt" | sed 's/^/MEMORY USAGE /' | ncli "$node" >"$WORK/sample-bytes.txt"
        cut -f2 "$WORK/sample.txt" | sed 's/^/PTTL /' | ncli "$node" >"$WORK/sample-pttl.txt"
        paste "$WORK/sample.txt" "$WORK/sample-bytes.txt" "$WORK/sample-pttl.txt" >>"$WORK/kind-sizes.txt"
    done
    # A kind's life: the longest PTTL sampled (the newest key's, a few
    # seconds short of its whole life); -1 for keys without one.
    awk -F'\t' 'FILENAME ~ /counts/ {n[$1] += $2; next}
        {b[$1] += $3; s[$1]++; if (!($1 in t) || $4 > t[$1]) t[$1] = $4}
        END {for (k in n) printf "memory_kind=kind=%s,keys=%d,mean_bytes=%.0f,life_ms=%d\n", k, n[k], s[k] ? b[k] / s[k] : 0, t[k]}' \
        "$WORK/kind-counts.txt" "$WORK/kind-sizes.txt" >>"$FACTS"
fi

# --- 5. The scenarios --------------------------------------------------------

log "reference, bb8 pool (first): $DURATION s"
run_wrk ref_pool_first pool "$REF_URL" bench/send.lua "$DURATION" \
    path=/ref areas="$AREAS_REF_POOL_FIRST" phase="$PHASE_REF_POOL_FIRST" expected=202
log "reference, multiplexed connection (first): $DURATION s"
run_wrk ref_mux_first mux "$REF_URL" bench/send.lua "$DURATION" \
    path=/mux areas="$AREAS_REF_MUX_FIRST" phase="$PHASE_REF_MUX_FIRST" expected=202

for instance in defaults off; do
    url=$OTPD_URL; [[ $instance == off ]] && url=$OFF_URL
    log "send ($instance): $DURATION s"
    run_wrk "send_$instance" "$instance" "$url" bench/send.lua "$DURATION" \
        areas="$AREAS_SEND" phase="$PHASE_SEND" expected=202
done

# What an event costs otpd: the same sends to the defaults without an event
# endpoint, at full load, then both at 1 % of the defaults' send rate (one
# connection, paced; phones and clients past those of the full-load runs),
# where no batching can hide the cost of each event. report.py takes the
# difference in CPU per send over the events a send made.
if [[ $EVENTS == 1 ]]; then
    log "send (defaults, no events): $DURATION s"
    run_wrk send_quiet quiet "$QUIET_URL" bench/send.lua "$DURATION" \
        areas="$AREAS_SEND" phase="$PHASE_SEND" expected=202
    paced_rate=$(awk -v r="$(field send_defaults rps)" 'BEGIN {printf "%.0f", (r > 200 ? r / 100 : 2)}')
    fact paced_rate "$paced_rate"
    for instance in defaults quiet; do
        url=$OTPD_URL; [[ $instance == quiet ]] && url=$QUIET_URL
        log "send at 1 % of full load ($instance, $paced_rate req/s): $PACED_DURATION s"
        RUN_THREADS=1 RUN_CONNECTIONS=1 run_wrk "send_paced_$instance" "$instance" "$url" bench/send.lua \
            "$PACED_DURATION" areas="$AREAS_SEND" phase="$PHASE_SEND" offset=5000000 rate="$paced_rate" expected=202
    done
fi

# A right code is approved once, so the right-code scenario needs one code
# per request it will make; the wrong-code scenario needs phones with pending
# codes, WRONG_TRIES requests each. Each batch is made just before its
# scenario, under that instance's prefix.
for instance in defaults off; do
    url=$OTPD_URL prefix=$PREFIX_DEFAULTS
    [[ $instance == off ]] && url=$OFF_URL prefix=$PREFIX_OFF
    want=$(codes_needed 1)
    log "making $want codes for verify_right_$instance"
    MAKING_FOR=$instance make_codes "codes_right_$instance" "$prefix" "$AREAS_RIGHT" "$want" 0
    log "verify with the right code ($instance): $DURATION s"
    run_wrk "verify_right_$instance" "$instance" "$url" bench/verify.lua "$DURATION" \
        mode=right file="$WORK/codes_right_$instance.txt" phase="$PHASE_RIGHT" expected=200
    if (( $(field "verify_right_$instance" exhausted) > 0 )); then
        warn "verify_right_$instance used up its $want codes; raise VERIFY_HEADROOM"
    fi
done
for instance in defaults off; do
    url=$OTPD_URL prefix=$PREFIX_DEFAULTS
    [[ $instance == off ]] && url=$OFF_URL prefix=$PREFIX_OFF
    want=$(codes_needed "$WRONG_TRIES")
    log "making $want codes for verify_wrong_$instance ($WRONG_TRIES wrong guesses each)"
    MAKING_FOR=$instance make_codes "codes_wrong_$instance" "$prefix" "$AREAS_WRONG" "$want" "$DURATION"
    log "verify with a wrong code ($instance): $DURATION s"
    run_wrk "verify_wrong_$instance" "$instance" "$url" bench/verify.lua "$DURATION" \
        mode=wrong tries="$WRONG_TRIES" file="$WORK/codes_wrong_$instance.txt" phase="$PHASE_WRONG" expected=422
    if (( $(field "verify_wrong_$instance" exhausted) > 0 )); then
        warn "verify_wrong_$instance went round its $want phones more than $WRONG_TRIES times; raise VERIFY_HEADROOM"
    fi
done

log "reference, multiplexed connection (last): $DURATION s"
run_wrk ref_mux_last mux "$REF_URL" bench/send.lua "$DURATION" \
    path=/mux areas="$AREAS_REF_MUX_LAST" phase="$PHASE_REF_MUX_LAST" expected=202
log "reference, bb8 pool (last): $DURATION s"
run_wrk ref_pool_last pool "$REF_URL" bench/send.lua "$DURATION" \
    path=/ref areas="$AREAS_REF_POOL_LAST" phase="$PHASE_REF_POOL_LAST" expected=202

# --- 6. Memory of each otpd, and the optional soak ----------------------------

for instance in defaults off; do
    pid=$DEFAULTS_PID; [[ $instance == off ]] && pid=$OFF_PID
    fact "vmhwm_kb_$instance" "$(rss_kb "$pid" VmHWM)"
    fact "vmrss_kb_$instance" "$(rss_kb "$pid" VmRSS)"
done

if (( SOAK > 0 )); then
    log "soak: send at the defaults for $SOAK s, fresh phones and clients, RSS every 10 s"
    fact soak_seconds "$SOAK"
    pause_otpd_but "$DEFAULTS_PID"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SOAK}s" --timeout 5s -s bench/send.lua "$OTPD_URL" \
        -- threads="$THREADS" name=soak areas="$AREAS_SOAK" expected=202 phase="$PHASE_SOAK" \
        per_client="$PER_CLIENT" key="$API_KEY" >"$WORK/soak.out" 2>&1 &
    WRK_PID=$!
    start=$SECONDS
    soak_sample() {
        local t=$((SECONDS - start)) rss served
        rss=$(rss_kb "$DEFAULTS_PID" VmRSS) served=$(counter "$OTPD_PORT" 1)
        fact soak_sample "t=$t,rss_kb=$rss,requests=$served"
        awk -v t="$t" -v rss="$rss" -v n="$served" \
            'BEGIN {printf "    t=%4ds  RSS %6.1f MB  %d requests served so far\n", t, rss / 1024, n}' >&2
    }
    soak_sample
    # Sample on a 10 s grid until wrk ends, then once more at the end.
    next=10
    while kill -0 "$WRK_PID" 2>/dev/null; do
        sleep 1
        if (( SECONDS - start >= next )) && kill -0 "$WRK_PID" 2>/dev/null; then
            soak_sample
            next=$((next + 10))
        fi
    done
    wait "$WRK_PID" || die "wrk failed for the soak: $(tail -5 "$WORK/soak.out")"
    WRK_PID=""
    soak_sample
    resume_otpd
    grep '^BENCH ' "$WORK/soak.out" | sed 's/$/ instance=defaults phase=soak/' >>"$RESULTS" || true
    grep '^WARNING ' "$WORK/soak.out" >&2 || true
    fact vmhwm_kb_defaults "$(rss_kb "$DEFAULTS_PID" VmHWM)"
    fact vmrss_kb_defaults "$(rss_kb "$DEFAULTS_PID" VmRSS)"
fi

# --- 7. Report ---------------------------------------------------------------

fact otpd_requests_defaults "$(counter "$OTPD_PORT" 1)"
fact otpd_requests_off "$(counter "$OFF_PORT" 1)"
fact store_calls_labelled "$(counter "$OTPD_PORT" 9)"
fact settings_defaults "$(describe_settings defaults "$OTPD_PORT" "$PREFIX_DEFAULTS")"
fact settings_off "$(describe_settings off "$OFF_PORT" "$PREFIX_OFF")"
fact settings_maker "$(describe_settings maker "$MAKER_PORT" "<the verifying instance's prefix>")"
fact date "$(date -u +%Y-%m-%dT%H:%MZ)"
fact commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src adapters Cargo.toml Cargo.lock 2>/dev/null || echo '+changes')"
fact duration "$DURATION"
fact profile "$PROFILE"
fact bin_dir "${BIN_DIR:-built here}"
fact events "$EVENTS"
fact threads "$THREADS"
fact connections "$CONNECTIONS"
fact per_client "$PER_CLIENT"
fact wrong_tries "$WRONG_TRIES"
fact cluster "$CLUSTER"
fact otpd_redis "$OTPD_REDIS_URL"
fact otpd_redis_nodes "${#OTPD_NODES[@]}"
fact otpd_redis_masters "${#OTPD_MASTERS[@]}"
fact ref_redis "${REF_NODES[0]}"
fact redis_private "$([[ ${USES_SHARED_REDIS:-0} == 1 ]] && echo no || echo yes)"
fact redis_version "$(ncli "${REF_NODES[0]}" INFO server | awk -F: '/^redis_version/ {print $2}' | tr -d '\r')"
fact nproc "$(nproc)"
fact cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
fact mem_total "$(free -h | awk '/^Mem:/ {print $2}')"
fact run_seconds "$((SECONDS - STARTED))"

echo
# A cluster's run beside the single server's, not over it.
OUT=$([[ $CLUSTER == 1 ]] && echo -cluster || true)
python3 bench/report.py "$WORK" --markdown "bench/results$OUT.md" --svg "docs/performance$OUT.svg"
log "wrote bench/results$OUT.md and docs/performance$OUT.svg ($((SECONDS - STARTED)) s in all)"
