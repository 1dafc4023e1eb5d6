#!/usr/bin/env bash
# Runs lempbench against a real lempgw, first on the memory backend, then on
# a throwaway redis-server, everything on loopback. Builds both binaries into
# a temporary directory, prints each result table and a summary, and stops
# every process it started (trap). Usage: scripts/bench.sh [LEMP_SECONDS]
#
# Token hashing is made cheap (argon2 8 KiB, 1 pass) so that creating and
# logging in thousands of benchmark users measures the gateway, not argon2id;
# production uses the defaults (19 MiB, 2 passes).
set -euo pipefail
cd "$(dirname "$0")/.."
lemp_secs=${1:-10}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

tmp=$(mktemp -d)
gw_pid=""
cleanup() {
  if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; fi
  if [ -f "$tmp/redis.pid" ]; then kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/lempgw" ./cmd/lempgw
go build -o "$tmp/lempbench" ./cmd/lempbench

free_port() { # a free loopback port, asked from the kernel
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

redis_url=""
if command -v redis-server >/dev/null 2>&1; then
  for _ in $(seq 1 20); do
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
      --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log" >/dev/null 2>&1 || continue
    for _ in $(seq 1 50); do
      if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
        redis_url="redis://127.0.0.1:$port/0"
        break 2
      fi
      sleep 0.1
    done
  done
  [ -n "$redis_url" ] || { echo "bench: could not start redis-server" >&2; cat "$tmp/redis.log" >&2 || true; exit 1; }
  echo "bench: redis-server at $redis_url"
else
  echo "bench: no redis-server; the redis backend is skipped" >&2
fi

export LEMPGW_AUTH__ADMIN_IDENTITY=benchadmin
export LEMPGW_AUTH__ADMIN_TOKEN="bench-$RANDOM$RANDOM"
export LEMPGW_AUTH__ARGON2_MEMORY_KIB=8
export LEMPGW_AUTH__ARGON2_TIME=1
export LEMPGW_LOG__LEVEL=warn

start_gateway() { # $1 = backend
  local lport hport
  lport=$(free_port); hport=$(free_port)
  LEMPGW_STATE__BACKEND="$1" LEMPGW_STATE__REDIS_URL="${redis_url:-redis://127.0.0.1:1/0}" \
    LEMPGW_LEMP__LISTEN="127.0.0.1:$lport" LEMPGW_HTTP__LISTEN="127.0.0.1:$hport" \
    LEMPGW_LEMP__WRITE_QUEUE=4096 \
    "$tmp/lempgw" serve 2>"$tmp/lempgw-$1.log" &
  gw_pid=$!
  url="ws://127.0.0.1:$lport/lemp"
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1 || \
       curl -fsS "http://127.0.0.1:$hport/healthz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$gw_pid" 2>/dev/null; then cat "$tmp/lempgw-$1.log" >&2; exit 1; fi
    sleep 0.1
  done
  # No ready endpoint answered; fall back to waiting for the port.
  sleep 1
}
stop_gateway() {
  kill "$gw_pid" 2>/dev/null || true
  wait "$gw_pid" 2>/dev/null || true
  gw_pid=""
}

summary="$tmp/summary"
: >"$summary"
bench() { # $1 = backend label, rest = lempbench flags
  local label=$1; shift
  echo "== $label: lempbench $*"
  local out
  set +e
  out=$("$tmp/lempbench" -url "$url" -admin benchadmin -admin-token "$LEMPGW_AUTH__ADMIN_TOKEN" -pid "$gw_pid" -json "$@")
  local rc=$?
  set -e
  echo "$out" | sed '/^{/,$d'
  echo "$out" | sed -n '/^{/,$p' | python3 -c '
import json, sys
r = json.load(sys.stdin)
label, rc = sys.argv[1], sys.argv[2]
s = r["scenario"]
if s == "idle":
    res = "%d/%d sessions, %.1f KiB RSS/session (%d -> %d KiB)" % (r.get("sessions_ok",0), r.get("sessions",0), r.get("rss_per_session_kib",0), r.get("rss_before_kib",0), r.get("rss_after_kib",0))
elif s == "lemp-lemp":
    res = "%.0f msgs/s, p50 %.2f / p99 %.2f / p999 %.2f ms, %d msgs, exactly once: %s" % (r.get("msgs_per_s",0), r.get("p50_ms",0), r.get("p99_ms",0), r.get("p999_ms",0), r.get("sent",0), "yes" if r["verified_exactly_once"] else "NO")
else:
    res = "%d members x %d msgs, p50 %.2f / p99 %.2f ms, %.0f deliveries/s, exactly once: %s" % (r.get("members",0), r.get("sent",0), r.get("p50_ms",0), r.get("p99_ms",0), r.get("msgs_per_s",0), "yes" if r["verified_exactly_once"] else "NO")
print("| %s | %s | %s | %.2f s | %d |%s" % (label, s, res, r.get("gateway_cpu_s",0), r.get("errors",0), "" if rc == "0" else " exit " + rc))
' "$label" "$rc" >>"$summary" || echo "| $label | $* | failed (exit $rc) | | |" >>"$summary"
}

backends=(memory)
[ -n "$redis_url" ] && backends+=(redis)
for be in "${backends[@]}"; do
  start_gateway "$be"
  echo "bench: lempgw ($be) pid $gw_pid at $url"
  # idle first: on a fresh process, so RSS growth is the sessions' and not
  # heap that an earlier scenario grew and the new sessions reuse.
  bench "$be" -scenario idle -n 2000 -duration 5s
  bench "$be" -scenario lemp-lemp -pairs 2 -window 64 -duration "${lemp_secs}s"
  bench "$be" -scenario group-fanout -members 100 -n 100 -window 1 -duration 60s
  bench "$be" -scenario group-fanout -members 1000 -n 50 -window 1 -duration 60s
  stop_gateway
done

echo
echo "## summary ($(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "| backend | scenario | result | gateway CPU | errors |"
echo "|---|---|---|---|---|"
cat "$summary"
