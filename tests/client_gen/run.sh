#!/usr/bin/env bash
# Clients generated from openapi.yaml, as "REST clients reading Swagger UI"
# mostly are: a Python client by openapi-python-client and TypeScript types
# by openapi-typescript, each generated without a single warning (a warning
# means a schema or a response left out of the client), the types checked by
# tsc --strict, and the Python client driving the built otpd: a send, a
# wrong code read as a typed Problem with code = code_mismatch, the right
# code. Installs the pinned generators where missing. Takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON_CLIENT=0.29.1
if ! python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('openapi-python-client') != '$PYTHON_CLIENT')" 2>/dev/null; then
  python3 -m pip install -q "openapi-python-client==$PYTHON_CLIENT"
fi
work=$(mktemp -d)
otpd_pid=
cleanup() {
  [ -n "$otpd_pid" ] && kill "$otpd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

no_warnings() { # what, output file
  if grep -qiE 'warning|error|unable|skipp' "$2"; then
    echo "client_gen: $1 warned:" >&2
    cat "$2" >&2
    exit 1
  fi
}

# ruff is not needed (the code's format doesn't matter here); the generator
# says so, which is no warning about the spec, so its post-hooks are off.
printf 'post_hooks: []\n' >"$work/config.yaml"
python3 -m openapi_python_client generate --path openapi.yaml --meta none \
  --config "$work/config.yaml" --fail-on-warning --output-path "$work/otpd_client" >"$work/python.log" 2>&1 ||
  { cat "$work/python.log" >&2; exit 1; }
no_warnings openapi-python-client "$work/python.log"

(cd tests/client_gen && npm ci --no-audit --no-fund --loglevel=error)
tests/client_gen/node_modules/.bin/openapi-typescript openapi.yaml -o "$work/otpd.d.ts" >"$work/ts.log" 2>&1 ||
  { cat "$work/ts.log" >&2; exit 1; }
no_warnings openapi-typescript "$work/ts.log"
tests/client_gen/node_modules/.bin/tsc --strict --noEmit "$work/otpd.d.ts"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key="client-gen-key-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
OTPD_HTTP__LISTEN="127.0.0.1:$port" OTPD_LOG__LEVEL=warn OTPD_AUTH__API_KEYS="$key" \
  target/debug/otpd >"$work/sms.log" &
otpd_pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
OTPD_URL="http://127.0.0.1:$port" OTPD_KEY="$key" OTPD_SMS_LOG="$work/sms.log" PYTHONPATH="$work" \
  timeout 60 python3 tests/client_gen/check.py
