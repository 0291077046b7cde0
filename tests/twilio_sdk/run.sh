#!/usr/bin/env bash
# Starts the built otpd on a free loopback port with the Twilio Verify API
# on, and drives it with the official twilio-python SDK (sdk_check.py),
# installed at its pinned version where missing. Takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."

TWILIO_PYTHON=9.13.0
if ! python3 -c "import twilio, sys; sys.exit(twilio.__version__ != '$TWILIO_PYTHON')" 2>/dev/null; then
  python3 -m pip install -q "twilio==$TWILIO_PYTHON"
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
OTPD_HTTP__LISTEN="127.0.0.1:$port" OTPD_LOG__LEVEL=warn \
  OTPD_TWILIO_VERIFY__ACCOUNT_SID="AC$(printf 'a%.0s' {1..32})" \
  OTPD_TWILIO_VERIFY__AUTH_TOKENS="sdk-check-token-0123456789" \
  OTPD_TWILIO_VERIFY__API_KEYS="SK$(printf 'c%.0s' {1..32})=sdk-api-key-secret-0123456789" \
  OTPD_TWILIO_VERIFY__SERVICES="VA$(printf 'b%.0s' {1..32})=SDK check" \
  OTPD_OTP__TEST_NUMBERS="+14155550106=424242,+14155550107=424242" \
  OTPD_LIMITS__RESEND_AFTER_SECS=0 OTPD_LIMITS__SENDS_PER_PHONE=3 \
  target/debug/otpd >/dev/null &
otpd_pid=$!
trap 'kill "$otpd_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
OTPD_URL="http://127.0.0.1:$port" timeout 60 python3 tests/twilio_sdk/sdk_check.py
