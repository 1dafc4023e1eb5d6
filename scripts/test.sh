#!/usr/bin/env bash
# The project's one test command (make test): installs what is missing,
# starts a throwaway redis-server on a free loopback port, and runs every
# test with the race detector. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

tmp=$(mktemp -d)
cleanup() {
  local code=$?
  if [ -f "$tmp/redis.pid" ]; then
    local pid
    pid=$(cat "$tmp/redis.pid")
    kill "$pid" 2>/dev/null || true
    # Wait for it to exit: it still writes its log (and removes its pid
    # file) while shutting down, which would race the removal below.
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$tmp" || true
  exit "$code"
}
trap cleanup EXIT

if command -v redis-server >/dev/null 2>&1; then
  for _ in $(seq 1 20); do
    port=$(( 20000 + RANDOM % 20000 ))
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
      --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log" >/dev/null 2>&1 || continue
    for _ in $(seq 1 50); do
      if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
        export LEMPGW_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
        break 2
      fi
      sleep 0.1
    done
  done
  if [ -z "${LEMPGW_TEST_REDIS_URL:-}" ]; then
    echo "test: could not start redis-server; see $tmp/redis.log" >&2
    cat "$tmp/redis.log" >&2 || true
    exit 1
  fi
  echo "test: redis-server at $LEMPGW_TEST_REDIS_URL"
fi

go vet ./...
go test -race -count=1 "$@" ./...
