#!/usr/bin/env bash
# Benchmarks otpd against a minimal poem + bb8-redis handler on the same
# machine and Redis, and writes bench/results.md and docs/performance.svg.
#
#   scripts/bench.sh                      # 20 s per scenario
#   DURATION=5 scripts/bench.sh           # a quick look
#   SOAK=300 scripts/bench.sh             # then 5 minutes of sends, RSS every 10 s
#
# Scenarios, in this order, each for DURATION seconds with wrk at
# CONNECTIONS connections over THREADS threads:
#   0. reference     POST /ref on examples/bench_reference.rs: one SETEX;
#   1. send          POST /v1/otp, a fresh valid phone per request;
#   2. verify_right  POST /v1/otp/verify with the right code, each code once;
#   3. verify_wrong  POST /v1/otp/verify with a wrong code (422);
#   4. reference     again, so the yardstick (the two runs together) sees the
#                    same machine as otpd's scenarios did, early and late.
# docs/performance.md explains the method and the targets.
#
# Settings (environment): DURATION (20), SOAK (0 = no soak), CONNECTIONS (32),
# THREADS (2), OTPD_PORT (18080), MAKER_PORT (18082, the otpd that makes the
# verify scenarios' codes), REF_PORT (18081), REDIS_URL
# (redis://127.0.0.1:6379), VERIFY_HEADROOM (3: right codes to make, as a
# multiple of the send rate times DURATION), PROFILE (dist: the cargo profile
# built and measured), EVENTS (1: the measured otpd sends every event to the
# reference's `/hook`, which answers 204), CARGO_TARGET_DIR
# (<repo>/target/bench, so the bench doesn't wait on other builds' lock),
# PRIVATE_REDIS (a port: start a throwaway redis-server there for the run
# instead of using REDIS_URL, so no other client's commands mix into the
# per-request command counts), KEEP_WORK (1: keep the work folder with wrk's output and the codes files;
# it is kept anyway when the run fails).
# Needs cargo, redis-cli, curl and python3; installs wrk with apt-get if missing.
set -euo pipefail

# Work from the repository root whatever the caller's directory.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DURATION=${DURATION:-20}
SOAK=${SOAK:-0}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
OTPD_PORT=${OTPD_PORT:-18080}
MAKER_PORT=${MAKER_PORT:-18082}
REF_PORT=${REF_PORT:-18081}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
VERIFY_HEADROOM=${VERIFY_HEADROOM:-3}
PROFILE=${PROFILE:-dist}
EVENTS=${EVENTS:-0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/bench}

# Every key this run makes starts with this, so cleanup deletes only ours.
RUN_ID="$(date +%Y%m%d%H%M%S)-$$"
PREFIX="bench:$RUN_ID:"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/otpd-bench.XXXXXX")
SMS="$WORK/sms.txt"        # the code maker's stdout: one console line per code sent
RESULTS="$WORK/results"    # one BENCH line per wrk run
FACTS="$WORK/facts"        # key=value lines for the report
OTPD_URL="http://127.0.0.1:$OTPD_PORT"
MAKER_URL="http://127.0.0.1:$MAKER_PORT"
REF_URL="http://127.0.0.1:$REF_PORT"
: >"$RESULTS"
: >"$FACTS"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }
rcli() { redis-cli -u "$REDIS_URL" "$@"; }

OTPD_PID="" MAKER_PID="" REF_PID="" WRK_PID="" REDIS_PID=""
# Deletes this run's keys, and prints how many. SCAN with a large COUNT and
# one UNLINK per batch: a long run leaves millions of keys, and `--scan`
# (ten keys a call) took minutes to list them.
unlink_run_keys() {
    local cursor=0 deleted=0 reply
    while :; do
        mapfile -t reply < <(rcli --raw SCAN "$cursor" MATCH "${PREFIX}*" COUNT 10000)
        (( ${#reply[@]} > 0 )) || return 1
        cursor=${reply[0]}
        if (( ${#reply[@]} > 1 )); then
            rcli UNLINK "${reply[@]:1}" >/dev/null
            deleted=$((deleted + ${#reply[@]} - 1))
        fi
        [[ $cursor == 0 ]] && break
    done
    echo "$deleted"
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # Stop what we started, by pid: wrk (if a soak or batch was cut short),
    # then otpd and the reference.
    for pid in "$WRK_PID" "$OTPD_PID" "$MAKER_PID" "$REF_PID"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    # Only this run's keys; the Redis is shared and stays up. A private one
    # goes, keys and all.
    if [[ -n $REDIS_PID ]]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    elif command -v redis-cli >/dev/null; then
        local deleted
        deleted=$(unlink_run_keys) || deleted="?"
        log "deleted $deleted Redis keys under $PREFIX"
    fi
    if [[ $status -eq 0 && ${KEEP_WORK:-0} != 1 ]]; then
        rm -rf "$WORK"
    elif [[ $status -eq 0 ]]; then
        log "work folder kept: $WORK"
    else
        log "failed; logs kept in $WORK (otpd.err, reference.err, *.out)"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. Build and tools ------------------------------------------------------

# --bin as well as --examples: with --examples alone cargo builds only the
# examples (and the library), not the otpd binary.
log "building otpd and examples/bench_reference.rs (profile $PROFILE, $CARGO_TARGET_DIR)"
cargo build --profile "$PROFILE" --bin otpd --examples
OTPD_BIN="$CARGO_TARGET_DIR/$PROFILE/otpd"
REF_BIN="$CARGO_TARGET_DIR/$PROFILE/examples/bench_reference"

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
if [[ -n ${PRIVATE_REDIS:-} ]]; then
    # No persistence: it lives for this run only. Its pid is ours to stop.
    command -v redis-server >/dev/null || die "PRIVATE_REDIS needs redis-server"
    if (exec 3<>"/dev/tcp/127.0.0.1/$PRIVATE_REDIS") 2>/dev/null; then
        die "port $PRIVATE_REDIS is in use; pick a free one for PRIVATE_REDIS"
    fi
    REDIS_URL="redis://127.0.0.1:$PRIVATE_REDIS"
    log "starting a private redis-server on $REDIS_URL"
    redis-server --port "$PRIVATE_REDIS" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$WORK" >"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 1 50); do rcli ping >/dev/null 2>&1 && break; sleep 0.1; done
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server did not start: $(tail -3 "$WORK/redis.log")"
fi
rcli ping >/dev/null || die "no Redis at $REDIS_URL"

# --- 2. Start otpd and the reference -----------------------------------------

for port in "$OTPD_PORT" "$MAKER_PORT" "$REF_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port is in use; set OTPD_PORT / MAKER_PORT / REF_PORT"
    fi
done

# Two otpd processes on the same Redis, key prefix and hash key, as two
# instances of one deployment. The measured one prints its SMS to /dev/null,
# as the issue asks. The verify scenarios need codes that were sent and read
# from a console, so a second one, the code maker, makes them beforehand and
# prints them to a file opened for appending (emptied between phases with
# `: >"$SMS"`); the measured one verifies them, as any instance can. Both run
# from the work folder so an otpd.toml in the caller's directory can't apply.
# Codes live an hour so none expires before the verify scenarios use it,
# whatever DURATION is; max_attempts is 100, the highest allowed, so the
# wrong-code scenario can try each phone 100 times before it locks.
# Run in the background (`start_otpd ... &`): the function's subshell
# becomes otpd, so `$!` is otpd's pid.
start_otpd() {
    local port=$1 name=$2
    cd "$WORK"
    # otpd reads every OTPD_ variable as a setting: ones from the caller's
    # environment would change what is measured (an API key would make every
    # request 401) or stop the start (this script's own OTPD_PORT is no
    # setting). RUST_LOG would beat log.level.
    for var in $(compgen -e | grep '^OTPD_' || true); do unset "$var"; done
    unset RUST_LOG
    export OTPD_HTTP__LISTEN="127.0.0.1:$port" \
        OTPD_STORE__URL="$REDIS_URL" \
        OTPD_STORE__KEY_PREFIX="$PREFIX" \
        OTPD_OTP__HASH_KEYS="bench-hash-key-$RUN_ID" \
        OTPD_OTP__TTL_SECS=3600 \
        OTPD_OTP__MAX_ATTEMPTS=100 \
        OTPD_SMS__PROVIDER=console \
        OTPD_LIMITS__RESEND_AFTER_SECS=0 \
        OTPD_LIMITS__SENDS_PER_PHONE=0 \
        OTPD_LIMITS__SENDS_PER_IP=0 \
        OTPD_LIMITS__VERIFIES_PER_IP=0 \
        OTPD_LIMITS__SENDS_PER_HOUR=0 \
        OTPD_LOG__LEVEL=warn
    if [[ $EVENTS == 1 && $name == otpd ]]; then
        export OTPD_EVENTS__ENDPOINTS__BENCH__URL="$REF_URL/hook" \
            OTPD_EVENTS__ENDPOINTS__BENCH__SECRETS="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    fi
    exec "$OTPD_BIN" 2>"$WORK/$name.err"
}
log "starting otpd on $OTPD_URL (store $REDIS_URL, prefix $PREFIX), SMS to /dev/null"
start_otpd "$OTPD_PORT" otpd >/dev/null &
OTPD_PID=$!
log "starting the code maker on $MAKER_URL, SMS to $SMS"
start_otpd "$MAKER_PORT" maker >>"$SMS" &
MAKER_PID=$!

log "starting the reference on $REF_URL"
# One pooled connection per wrk connection: no request waits for a slot.
REF_LISTEN="127.0.0.1:$REF_PORT" REF_REDIS_URL="$REDIS_URL" REF_KEY_PREFIX="${PREFIX}ref:" \
    REF_POOL_SIZE="$CONNECTIONS" "$REF_BIN" >/dev/null 2>"$WORK/reference.err" &
REF_PID=$!

# Both are up when they answer: otpd's /healthz, and a real /ref request.
wait_for() {
    local what=$1 pid=$2; shift 2
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || die "$what exited at start: $(tail -5 "$WORK"/*.err)"
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    die "$what did not come up in 10 s"
}
wait_for otpd "$OTPD_PID" curl -sf "$OTPD_URL/healthz"
wait_for "the code maker" "$MAKER_PID" curl -sf "$MAKER_URL/healthz"
wait_for reference "$REF_PID" curl -sf -H 'Content-Type: application/json' \
    -d '{"phone":"+14155550000"}' "$REF_URL/ref"

# A send must be accepted before anything is measured: a 400 here means the
# phones the wrk scripts make are not valid for otpd.
for url in "$OTPD_URL" "$MAKER_URL"; do
    probe=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d '{"phone":"+19175550000"}' "$url/v1/otp")
    [[ $probe == 202 ]] || die "a probe send to $url got $probe, not 202"
done

# --- Helpers for the runs ----------------------------------------------------

# From otpd's /metrics: the sum of its HTTP request counter (what otpd itself
# says it served) and its store errors. 0 if the metric is missing: a report
# without them beats no report.
metric_sum() {
    { curl -sf "$OTPD_URL/metrics" || true; } | awk -v m="$1" 'index($1, m) == 1 {n += $NF} END {printf "%d\n", n}'
}
otpd_served() { metric_sum otpd_http_request_duration_seconds_count; }
store_errors() { metric_sum otpd_store_errors_total; }
store_calls() { metric_sum otpd_store_calls_total; }
rss_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# CPU time a process has used, user + system, in clock ticks. Per request it
# says how much work a request costs, which the other load on a shared
# machine skews less than req/s.
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

# run_wrk NAME TARGET PHASE URL SCRIPT SECONDS [key=value ...]
# Runs wrk once, keeps its output in $WORK/NAME.out, and appends its BENCH
# line (with target, phase and otpd's store calls and errors during the run)
# to $RESULTS. Measured scenarios also get INFO commandstats before and after,
# for the Redis commands per request.
run_wrk() {
    local name=$1 target=$2 phase=$3 url=$4 script=$5 seconds=$6
    shift 6
    local errors_before=0 errors_after=0 calls_before=0 calls_after=0 pid=$OTPD_PID
    [[ $target == otpd ]] && errors_before=$(store_errors) && calls_before=$(store_calls)
    [[ $target == ref ]] && pid=$REF_PID
    local cpu_before
    cpu_before=$(cpu_ticks "$pid")
    [[ $phase == scenario ]] && rcli INFO commandstats >"$WORK/$name.cmd.before"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --timeout 5s -s "$script" "$url" \
        -- threads="$THREADS" name="$name" "$@" >"$WORK/$name.out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || die "wrk failed for $name: $(tail -5 "$WORK/$name.out")"
    WRK_PID=""
    local cpu_after
    cpu_after=$(cpu_ticks "$pid")
    [[ $phase == scenario ]] && rcli INFO commandstats >"$WORK/$name.cmd.after"
    [[ $target == otpd ]] && errors_after=$(store_errors) && calls_after=$(store_calls)
    local line
    line=$(grep '^BENCH ' "$WORK/$name.out") || die "no BENCH line from wrk for $name: $(cat "$WORK/$name.out")"
    echo "$line target=$target phase=$phase store_errors=$((errors_after - errors_before))" \
        "store_calls=$((calls_after - calls_before))" \
        "cpu_s=$(awk -v t=$((cpu_after - cpu_before)) -v hz="$TICKS" 'BEGIN {printf "%.2f", t / hz}')" >>"$RESULTS"
    grep '^WARNING ' "$WORK/$name.out" >&2 || true
    # One readable line as we go; the table comes at the end.
    awk '{for (i = 2; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
          printf "    %-13s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  statuses %s\n",
                 v["scenario"], v["rps"], v["p50_ms"], v["p99_ms"], v["statuses"]}' <<<"$line" >&2
}
field() { grep "^BENCH scenario=$1 " "$RESULTS" | tail -1 | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }

# Area codes per phase, so no phase sends to a phone another one used.
AREAS_SEND=415,212
AREAS_CODES=310,646
AREAS_SOAK=312,617,206,303,404,512,602,702
AREAS_REF=213,305
AREAS_REF_FIRST=818,919

# --- 3. The scenarios --------------------------------------------------------

# Other work on the machine shows in every figure; the report says how busy it was.
fact load_before "$(cut -d' ' -f1-3 /proc/loadavg)"

log "0/4 reference (one SETEX), first: $DURATION s"
run_wrk reference_first ref scenario "$REF_URL" bench/send.lua "$DURATION" \
    path=/ref areas="$AREAS_REF_FIRST" expected=202

log "1/4 send: $DURATION s"
run_wrk send otpd scenario "$OTPD_URL" bench/send.lua "$DURATION" areas="$AREAS_SEND" expected=202

# The verify scenarios need codes otpd has sent and not yet used. A right code
# is approved once, so the right-code run needs one code per request it will
# make: VERIFY_HEADROOM times what the send scenario did in DURATION seconds
# (a verify is cheaper than a send, so it runs faster). The wrong-code run
# needs phones with pending codes, 100 wrong tries each before the code
# locks: a twentieth as many phones covers 5x the right-code count.
send_rps=$(field send rps)
right_codes=$(python3 -c "import math; print(max(1000, math.ceil($VERIFY_HEADROOM * $send_rps * $DURATION)))")
wrong_phones=$(( right_codes / 20 > 500 ? right_codes / 20 : 500 ))
want=$(( right_codes + wrong_phones ))
log "making $want codes for the verify scenarios ($right_codes right, $wrong_phones phones for wrong guesses)"
# A send run cut short by SIGINT once the console file has enough lines
# (wrk has no request-count option; SIGINT makes it stop and report).
: >"$SMS"
cap=$(python3 -c "import math; print(math.ceil(3 * $want / max($send_rps, 1)) + 30)")
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${cap}s" --timeout 5s -s bench/send.lua "$MAKER_URL" \
    -- threads="$THREADS" name=codes areas="$AREAS_CODES" expected=202 >"$WORK/codes.out" 2>&1 &
WRK_PID=$!
while kill -0 "$WRK_PID" 2>/dev/null; do
    if (( $(wc -l <"$SMS") >= want )); then kill -INT "$WRK_PID" 2>/dev/null || true; break; fi
    sleep 0.2
done
wait "$WRK_PID" || true
WRK_PID=""
grep '^BENCH ' "$WORK/codes.out" | sed 's/$/ target=otpd phase=prep store_errors=0/' >>"$RESULTS" ||
    die "the code batch failed: $(tail -5 "$WORK/codes.out")"
sleep 1 # requests still in flight when wrk stopped finish and print
sed -nE 's/^SMS to (\+[0-9]+): .* code is ([0-9]{6})\..*/\1 \2/p' "$SMS" >"$WORK/codes.txt"
: >"$SMS"
made=$(wc -l <"$WORK/codes.txt")
(( made >= want )) || die "only $made codes were made, $want wanted (see $WORK/codes.out)"
head -n "$right_codes" "$WORK/codes.txt" >"$WORK/right.txt"
tail -n +"$((right_codes + 1))" "$WORK/codes.txt" >"$WORK/wrong.txt"

log "2/4 verify with the right code: $DURATION s"
run_wrk verify_right otpd scenario "$OTPD_URL" bench/verify.lua "$DURATION" \
    mode=right file="$WORK/right.txt" expected=200
if (( $(field verify_right exhausted) > 0 )); then
    log "WARNING: the right-code run used up its $right_codes codes; raise VERIFY_HEADROOM"
fi

log "3/4 verify with a wrong code: $DURATION s"
run_wrk verify_wrong otpd scenario "$OTPD_URL" bench/verify.lua "$DURATION" \
    mode=wrong file="$WORK/wrong.txt" expected=422

log "4/4 reference (one SETEX), last: $DURATION s"
run_wrk reference ref scenario "$REF_URL" bench/send.lua "$DURATION" \
    path=/ref areas="$AREAS_REF" expected=202

# --- 4. Memory after the scenarios, and the optional soak ---------------------

fact vmhwm_kb "$(rss_kb "$OTPD_PID" VmHWM)"
fact vmrss_kb "$(rss_kb "$OTPD_PID" VmRSS)"

if (( SOAK > 0 )); then
    log "soak: send for $SOAK s, RSS every 10 s"
    fact soak_seconds "$SOAK"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SOAK}s" --timeout 5s -s bench/send.lua "$OTPD_URL" \
        -- threads="$THREADS" name=soak areas="$AREAS_SOAK" expected=202 >"$WORK/soak.out" 2>&1 &
    WRK_PID=$!
    start=$SECONDS
    soak_sample() {
        local t=$((SECONDS - start)) rss served
        rss=$(rss_kb "$OTPD_PID" VmRSS) served=$(otpd_served)
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
    grep '^BENCH ' "$WORK/soak.out" | sed 's/$/ target=otpd phase=soak store_errors=0/' >>"$RESULTS" || true
    fact vmhwm_kb "$(rss_kb "$OTPD_PID" VmHWM)"
    fact vmrss_kb "$(rss_kb "$OTPD_PID" VmRSS)"
fi

# --- 5. Report ---------------------------------------------------------------

fact otpd_requests "$(otpd_served)"
fact date "$(date -u +%Y-%m-%dT%H:%MZ)"
fact commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src adapters Cargo.toml Cargo.lock 2>/dev/null || echo '+changes')"
fact duration "$DURATION"
fact profile "$PROFILE"
fact events "$EVENTS"
fact threads "$THREADS"
fact connections "$CONNECTIONS"
fact redis_url "$REDIS_URL"
fact redis_private "${PRIVATE_REDIS:+yes}"
fact redis_version "$(rcli INFO server | awk -F: '/^redis_version/ {print $2}' | tr -d '\r')"
fact nproc "$(nproc)"
fact cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
fact mem_total "$(free -h | awk '/^Mem:/ {print $2}')"

echo
python3 bench/report.py "$WORK" --markdown bench/results.md --svg docs/performance.svg
log "wrote bench/results.md and docs/performance.svg"
