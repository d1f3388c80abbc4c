#!/usr/bin/env bash
# Builds the MinIO server used by the S3 checkpoint-storage tests from the Go
# module proxy at a pinned version, into a per-user cache, and optionally
# starts it.
#
#   scripts/minio.sh            build (skipped when the pinned binary exists);
#                               prints the binary's path
#   scripts/minio.sh path       print the binary's path (no build)
#   scripts/minio.sh start      build, then start a server on 127.0.0.1 with a
#                               free port and a temporary data directory, and
#                               print the environment to use it (eval-able)
#
# The Go tests (checkpoint/miniotest) start their own server from the
# same binary, found through WEIR_MINIO_BIN or the cache path printed here, so
# `make test` only needs the build. The pin lives here and in miniotest; keep
# them equal (a test checks it).
set -euo pipefail

# The MinIO repository tags releases as RELEASE.<date>, which the module proxy
# does not serve, so the pin is the pseudo version of a main-branch commit.
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

CACHE_DIR="${WEIR_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir/bin}"
DEST_DIR="$CACHE_DIR/minio-$MINIO_VERSION"
BIN="$DEST_DIR/minio"

export PATH="/usr/local/go/bin:$PATH"

build() {
  if [ -x "$BIN" ]; then
    return 0
  fi
  mkdir -p "$DEST_DIR"
  echo "building $MINIO_MODULE@$MINIO_VERSION into $DEST_DIR (takes a few minutes)" >&2
  local start end tmp
  start=$(date +%s)
  # Install into a temporary directory first so an interrupted build never
  # leaves a binary the idempotence check above would trust.
  tmp=$(mktemp -d "$DEST_DIR/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$tmp" \
    go install -trimpath "$MINIO_MODULE@$MINIO_VERSION"
  mv "$tmp/minio" "$BIN"
  rm -rf "$tmp"
  trap - EXIT
  end=$(date +%s)
  echo "built $BIN in $((end - start))s" >&2
}

free_port() {
  # Ask the kernel for a free port by binding port 0; python3 is not assumed,
  # so use the Go toolchain that the build needs anyway.
  local f
  f=$(mktemp -d)/freeport.go
  cat >"$f" <<'GO'
package main

import (
	"fmt"
	"net"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	l.Close()
}
GO
  go run "$f"
  rm -rf "$(dirname "$f")"
}

start() {
  build
  local port cport data log key secret
  port=$(free_port)
  cport=$(free_port)
  data=$(mktemp -d "${TMPDIR:-/tmp}/weir-minio.XXXXXX")
  log="$data.log"
  key=weirtest
  secret=weirtest-secret
  MINIO_ROOT_USER=$key MINIO_ROOT_PASSWORD=$secret MINIO_BROWSER=off \
    nohup "$BIN" server --quiet --address "127.0.0.1:$port" \
    --console-address "127.0.0.1:$cport" "$data" >"$log" 2>&1 &
  local pid=$!
  # Poll the liveness endpoint until it answers, with a deadline.
  local deadline=$(( $(date +%s) + 60 ))
  until curl -fsS "http://127.0.0.1:$port/minio/health/live" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "minio exited during start; log: $log" >&2
      cat "$log" >&2
      exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "minio not ready after 60s; log: $log" >&2
      exit 1
    fi
    sleep 0.1
  done
  cat <<ENV
export WEIR_TEST_S3_ENDPOINT=127.0.0.1:$port
export AWS_ACCESS_KEY_ID=$key
export AWS_SECRET_ACCESS_KEY=$secret
export WEIR_MINIO_PID=$pid
export WEIR_MINIO_DATA=$data
# stop with: kill \$WEIR_MINIO_PID; rm -rf \$WEIR_MINIO_DATA
ENV
}

case "${1:-build}" in
  build) build; echo "$BIN" ;;
  path) echo "$BIN" ;;
  start) start ;;
  *) echo "usage: $0 [build|path|start]" >&2; exit 2 ;;
esac
