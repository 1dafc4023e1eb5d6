#!/usr/bin/env bash
# Runs lempbench against a real lempgw, a real Redis and real XMPP servers,
# everything on loopback, and writes the results into docs/benchmarks.md
# (the section between the lempbench:begin/end markers; re-running replaces
# it). Usage: scripts/bench.sh [LEMP_SECONDS] [XMPP_SECONDS]
#
#   1. For Prosody, then ejabberd (a private server each, started by
#      "lempbench xmpp-server" from internal/testenv's configuration with
#      in-band registration): the xmpp-xmpp baseline (the server alone), then
#      a gateway on Redis linked to it as a component: lemp-xmpp, xmpp-lemp.
#   2. A gateway on the memory backend, then one on Redis: idle, lemp-lemp,
#      group-fanout to 100 and to 1000 members; on Redis also lemp-lemp paced
#      at half of 4x Prosody's baseline (the issue 5 latency target).
#
# Environment: PAIRS (2) and WINDOW (64) for the 1:1 scenarios; XMPP_SERVERS
# ("prosody ejabberd"); BENCH_DOC (docs/benchmarks.md; empty: do not write).
# Token hashing is made cheap (argon2 8 KiB, 1 pass) so that creating and
# logging in thousands of benchmark users measures the gateway, not argon2id;
# the abuse limits are off (a load generator is one abusive client).
set -euo pipefail
cd "$(dirname "$0")/.."
lemp_secs=${1:-10}
xmpp_secs=${2:-$lemp_secs}
pairs=${PAIRS:-2}
window=${WINDOW:-64}
xmpp_servers=${XMPP_SERVERS:-prosody ejabberd}
doc=${BENCH_DOC-docs/benchmarks.md}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

tmp=$(mktemp -d)
gw_pid=""
xs_pid=""
cleanup() {
  if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; fi
  if [ -n "$xs_pid" ]; then kill "$xs_pid" 2>/dev/null || true; wait "$xs_pid" 2>/dev/null || true; fi
  if [ -f "$tmp/redis.pid" ]; then
    local rp
    rp=$(cat "$tmp/redis.pid")
    kill "$rp" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$rp" 2>/dev/null || break; sleep 0.1; done # it logs while it exits
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/lempgw" ./cmd/lempgw
go build -o "$tmp/lempbench" ./cmd/lempbench
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
began=$(date +%s)

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
  echo "bench: no redis-server; the redis backend and the bridged scenarios are skipped" >&2
fi

export LEMPGW_AUTH__ADMIN_IDENTITY=benchadmin
export LEMPGW_AUTH__ADMIN_TOKEN="bench-$RANDOM$RANDOM"
export LEMPGW_AUTH__ARGON2_MEMORY_KIB=8
export LEMPGW_AUTH__ARGON2_TIME=1
export LEMPGW_LOG__LEVEL=warn
export LEMPGW_LIMITS__MESSAGE_RATE=0 LEMPGW_LIMITS__REQUEST_RATE=0
export LEMPGW_LIMITS__CONNECTIONS_PER_ADDRESS=0

gw_runs=0
start_gateway() { # $1 = backend; bridged to the XMPP server in XMPP_* when $2 = xmpp
  local lport hport xmpp_env=()
  lport=$(free_port); hport=$(free_port)
  gw_runs=$((gw_runs + 1))
  if [ "${2:-}" = xmpp ]; then
    xmpp_env=(LEMPGW_XMPP__COMPONENT_ADDRESS="$XMPP_COMPONENT" LEMPGW_XMPP__DOMAIN="$XMPP_GATEWAY_DOMAIN"
              LEMPGW_XMPP__SECRET="$XMPP_SECRET")
  fi
  env LEMPGW_STATE__BACKEND="$1" LEMPGW_STATE__REDIS_URL="${redis_url:-redis://127.0.0.1:1/0}" \
    LEMPGW_STATE__KEY_PREFIX="bench$gw_runs:" \
    LEMPGW_LEMP__LISTEN="127.0.0.1:$lport" LEMPGW_HTTP__LISTEN="127.0.0.1:$hport" \
    LEMPGW_LEMP__WRITE_QUEUE=4096 "${xmpp_env[@]}" \
    "$tmp/lempgw" serve 2>"$tmp/lempgw-$gw_runs.log" &
  gw_pid=$!
  url="ws://127.0.0.1:$lport/lemp"
  # /readyz: the store answers and, when bridged, the component link is up.
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$gw_pid" 2>/dev/null; then cat "$tmp/lempgw-$gw_runs.log" >&2; exit 1; fi
    sleep 0.1
  done
  echo "bench: lempgw not ready after 30 s" >&2; cat "$tmp/lempgw-$gw_runs.log" >&2; exit 1
}
stop_gateway() {
  kill "$gw_pid" 2>/dev/null || true
  wait "$gw_pid" 2>/dev/null || true
  gw_pid=""
}

start_xmpp() { # $1 = kind; sets XMPP_* from the server's announcement
  local env="$tmp/xmpp-$1.env" rc
  "$tmp/lempbench" xmpp-server -kind "$1" -dir "$tmp/xmpp-$1" >"$env" 2>"$tmp/xmpp-$1.err" &
  xs_pid=$!
  for _ in $(seq 1 900); do
    if grep -q '^XMPP_READY=' "$env"; then
      # shellcheck disable=SC1090
      . "$env"
      return 0
    fi
    if ! kill -0 "$xs_pid" 2>/dev/null; then
      set +e; wait "$xs_pid"; rc=$?; set -e
      xs_pid=""
      echo "bench: $1 did not start (exit $rc): $(tail -c 2000 "$tmp/xmpp-$1.err")" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "bench: $1 not ready after 90 s" >&2
  return 1
}
stop_xmpp() {
  kill "$xs_pid" 2>/dev/null || true
  wait "$xs_pid" 2>/dev/null || true
  xs_pid=""
}

results="$tmp/results.jsonl"
: >"$results"
bench() { # $1 = backend label ("-": none), $2 = XMPP server label ("-": none), rest = lempbench flags
  local be=$1 kind=$2; shift 2
  local labels=()
  [ "$be" != - ] && labels+=(-backend "$be")
  [ "$kind" != - ] && labels+=(-xmpp-kind "$kind")
  [ "$be" = redis ] && labels+=(-redis-pid "$(cat "$tmp/redis.pid")")
  echo "== ${be}/${kind}: lempbench $*"
  set +e
  "$tmp/lempbench" -url "${url:-ws://127.0.0.1:1/lemp}" -admin benchadmin -admin-token "$LEMPGW_AUTH__ADMIN_TOKEN" \
    -results "$results" "${labels[@]}" "$@"
  local rc=$?
  set -e
  [ "$rc" = 0 ] || echo "bench: exit $rc" >&2
}
baseline_rate() { # $1 = kind: the msgs/s of its xmpp-xmpp run, or nothing
  python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["scenario"] == "xmpp-xmpp" and r.get("xmpp_kind") == sys.argv[2] and not r.get("failed") and r.get("msgs_per_s", 0) > 0:
        print(int(r["msgs_per_s"])); break
' "$results" "$1"
}
one=(-pairs "$pairs" -window "$window")

# 1. The XMPP servers: baseline, then bridged on Redis.
for kind in $xmpp_servers; do
  if ! start_xmpp "$kind"; then
    echo "{\"scenario\":\"xmpp-xmpp\",\"xmpp_kind\":\"$kind\",\"url\":\"\",\"elapsed_s\":0,\"failed\":\"the server did not start\",\"lost\":0,\"duplicates\":0,\"verified_exactly_once\":false,\"errors\":1}" >>"$results"
    continue
  fi
  echo "bench: $kind pid $XMPP_PID, c2s $XMPP_C2S, components $XMPP_COMPONENT"
  xflags=(-xmpp-c2s "$XMPP_C2S" -xmpp-domain "$XMPP_DOMAIN" -server-pid "$XMPP_PID")
  url="" bench - "$kind" -scenario xmpp-xmpp "${one[@]}" -duration "${xmpp_secs}s" "${xflags[@]}"
  if [ -n "$redis_url" ]; then
    start_gateway redis xmpp
    echo "bench: lempgw (redis, bridged to $kind) pid $gw_pid at $url"
    for sc in lemp-xmpp xmpp-lemp; do
      bench redis "$kind" -scenario "$sc" "${one[@]}" -duration "${xmpp_secs}s" "${xflags[@]}" \
        -gateway-domain "$XMPP_GATEWAY_DOMAIN" -pid "$gw_pid"
    done
    stop_gateway
  fi
  stop_xmpp
done

# 2. LEMP only, on each backend.
backends=(memory)
[ -n "$redis_url" ] && backends+=(redis)
for be in "${backends[@]}"; do
  start_gateway "$be"
  echo "bench: lempgw ($be) pid $gw_pid at $url"
  # idle first: on a fresh process, so RSS growth is the sessions' and not
  # heap that an earlier scenario grew and the new sessions reuse.
  bench "$be" - -scenario idle -n 2000 -duration 5s -pid "$gw_pid"
  bench "$be" - -scenario lemp-lemp "${one[@]}" -duration "${lemp_secs}s" -pid "$gw_pid"
  base=$(baseline_rate prosody)
  if [ "$be" = redis ] && [ -n "$base" ]; then
    # Issue 5: p99 under 5 ms at half of 4x Prosody's baseline.
    bench "$be" - -scenario lemp-lemp "${one[@]}" -rate $((2 * base)) -duration "${lemp_secs}s" -pid "$gw_pid"
  fi
  bench "$be" - -scenario group-fanout -members 100 -n 100 -window 1 -duration 60s -pid "$gw_pid"
  bench "$be" - -scenario group-fanout -members 1000 -n 50 -window 1 -duration 60s -pid "$gw_pid"
  stop_gateway
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
ver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"; }
machine="$(nproc) vCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), \
$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), \
$( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null || uname -sr), $(go version | cut -d' ' -f3), \
Redis $(redis-server --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/\1/p'), Prosody $(ver prosody), ejabberd $(ver ejabberd); \
load average (1/5/15 min) $load_start at the start, $load_end at the end; $(( $(date +%s) - began )) s in all"
cmd="scripts/bench.sh $lemp_secs $xmpp_secs (PAIRS=$pairs WINDOW=$window)"

echo
"$tmp/lempbench" report -results "$results" -machine "$machine" -command "$cmd"
if [ -n "$doc" ]; then
  "$tmp/lempbench" report -results "$results" -machine "$machine" -command "$cmd" -doc "$doc"
  echo "bench: wrote $doc"
fi
