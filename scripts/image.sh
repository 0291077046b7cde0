#!/usr/bin/env bash
# Builds the otpd container image: otpd linked statically (glibc's static
# libc, which since 2.34 resolves host names without loading NSS modules;
# rustls throughout, so no OpenSSL), then deploy/Containerfile, an image
# FROM scratch holding that one file.
#
#   scripts/image.sh                       # otpd:latest, with podman or docker
#   TAG=otpd:1.0 ENGINE=docker scripts/image.sh
#   PROFILE=release scripts/image.sh       # a quicker build than `dist`
#
# Settings (environment): TAG (otpd:latest), ENGINE (podman if installed,
# else docker), ENGINE_ARGS (extra arguments for the engine, before the
# command), PROFILE (dist: the benchmark's whole-program build).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${TAG:-otpd:latest}
PROFILE=${PROFILE:-dist}
if [ -z "${ENGINE:-}" ]; then
  if command -v podman >/dev/null 2>&1; then ENGINE=podman; else ENGINE=docker; fi
fi
# An explicit target keeps crt-static off build scripts and proc macros,
# which must stay dynamic.
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --profile "$PROFILE" --bin otpd --target "$host"
binary="target/$host/$PROFILE/otpd"
# A static binary needs no shared library (ldd may still answer 0 for a
# static-pie one).
if readelf -d "$binary" | grep -q '(NEEDED)'; then
  echo "image.sh: $binary is not static" >&2
  exit 1
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
# Without its symbols: a panic's backtrace then names no functions, but a
# panic is a bug that the logs' message still shows, and the image is a
# third smaller.
if command -v strip >/dev/null 2>&1; then
  strip -o "$context/otpd" "$binary"
else
  cp "$binary" "$context/otpd"
fi
# --format docker: OCI images have no HEALTHCHECK.
format=()
if [ "$ENGINE" = podman ]; then format=(--format docker); fi
# shellcheck disable=SC2086
$ENGINE ${ENGINE_ARGS:-} build "${format[@]}" -f deploy/Containerfile -t "$TAG" "$context"
$ENGINE ${ENGINE_ARGS:-} image inspect "$TAG" --format '{{.Size}}' |
  awk -v tag="$TAG" '{ printf "%s: %.1f MB\n", tag, $1 / 1e6 }'
