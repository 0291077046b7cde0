#!/usr/bin/env bash
# Builds the container image with podman (scripts/image.sh) and runs it
# against Redis as an operator would: listening on every address with an API
# key, the console sender, then a send, a wrong and the right code, /readyz,
# its own `otpd healthcheck`, its user and its size. Installs podman and runc
# from Debian where missing. Takes a few minutes (a release build).
set -euo pipefail
cd "$(dirname "$0")/../.."

redis_url=${OTPD_TEST_REDIS_URL:-redis://127.0.0.1:6379}
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq podman runc >/dev/null
fi
# Machines without the default OCI runtime's needs: runc, and no ulimits to
# set on the container.
conf=$(mktemp)
printf '[containers]\ndefault_ulimits = []\n' >"$conf"
export CONTAINERS_CONF="$conf"
podman=(podman --runtime runc)

tag="otpd:ci-$$"
TAG=$tag ENGINE=podman ENGINE_ARGS="--runtime runc" PROFILE=${PROFILE:-release} scripts/image.sh

name="otpd-ci-$$"
cleanup() {
  "${podman[@]}" rm -f "$name" >/dev/null 2>&1 || true
  "${podman[@]}" rmi -f "$tag" >/dev/null 2>&1 || true
  rm -f "$conf"
}
trap cleanup EXIT

fail() {
  echo "image test: $*" >&2
  "${podman[@]}" logs "$name" >&2 || true
  exit 1
}

size=$("${podman[@]}" image inspect "$tag" --format '{{.Size}}')
[ "$size" -lt 30000000 ] || fail "the image is $size bytes, over 30 MB"
user=$("${podman[@]}" image inspect "$tag" --format '{{.Config.User}}')
[ "$user" = "65532:65532" ] || fail "runs as '$user', not 65532:65532"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key="image-test-key-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
hash_key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
# The host's network: Redis on the host's loopback, no port mapping to set up.
"${podman[@]}" run -d --name "$name" --network host \
  -e "OTPD_HTTP__LISTEN=0.0.0.0:$port" \
  -e "OTPD_STORE__URL=$redis_url" -e "OTPD_STORE__KEY_PREFIX=otpd-image-test-$$:" \
  -e "OTPD_OTP__HASH_KEYS=$hash_key" -e "OTPD_AUTH__API_KEYS=$key" \
  "$tag" >/dev/null

base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fs "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
# The image's own HEALTHCHECK (podman logs that it has no systemd to run
# it on a timer; run here by hand).
"${podman[@]}" healthcheck run "$name" || fail "the image's HEALTHCHECK failed"
if "${podman[@]}" exec -e OTPD_HTTP__LISTEN=127.0.0.1:1 "$name" /otpd healthcheck 2>/dev/null; then
  fail "otpd healthcheck passed with nothing serving"
fi

call() { # method path [json] -> status, body in $reply
  local out
  out=$(curl -s -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} "$base$2")
  status=${out##*$'\n'}
  reply=${out%$'\n'*}
}
phone=+14155550123
call POST /v1/otp "{\"phone\":\"$phone\"}"
[ "$status" = 202 ] || fail "send: $status $reply"
code=$("${podman[@]}" logs "$name" 2>/dev/null | grep -oE 'code is [0-9]{6}' | tail -1 | cut -c9-)
[ -n "$code" ] || fail "no code in the console sender's output"
wrong=$(printf '%06d' $(((10#$code + 1) % 1000000)))
call POST /v1/otp/verify "{\"phone\":\"$phone\",\"code\":\"$wrong\"}"
[ "$status" = 422 ] && grep -q '"code_mismatch"' <<<"$reply" || fail "wrong code: $status $reply"
call POST /v1/otp/verify "{\"phone\":\"$phone\",\"code\":\"$code\"}"
[ "$status" = 200 ] || fail "right code: $status $reply"
call GET /readyz
[ "$status" = 200 ] || fail "readyz: $status $reply"
echo "image test: $tag ($((size / 1000000)) MB, user $user): send 202, wrong 422, right 200, readyz 200, healthcheck ok"
