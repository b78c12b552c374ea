#!/usr/bin/env bash
# Several balancers on one queue: the load tester against
#   - one balancer with its queue in the process (the default),
#   - one balancer with --shared-queue (the cost of keeping the books in Redis),
#   - two balancers with --shared-queue on the same Redis, the load spread over both
#     (`loadtest URL_A,URL_B`: visit i starts at balancer i mod 2, as round-robin DNS would),
# on the same five factorial servers (release build, --quiet), each reporting to
# `--balancer A,B` (with one balancer, B is simply never needed). The same visits each time:
# REQUESTS visits, CONCURRENCY at a time, jobs of random n in 100...1000 (the original's).
# Each round runs the three in turn (the order rotates), with Redis emptied (FLUSHALL) and the
# balancers started afresh for each; the table gives the medians over the rounds of jobs per
# second and of the time a visit spends at the balancer (p50, p99: its wait for a free server).
#
# Usage: bench/shared-queue.sh [rounds, default 3] [visits per run, default 4000]
#        CONCURRENCY=32 in the environment.
# Installs redis-server, curl and python3 from Debian's packages if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/arguments.sh
help_if_asked "$@"
at_most 2 "$@"
ROUNDS="${1:-3}"
REQUESTS="${2:-4000}"
whole_number rounds "$ROUNDS"
whole_number visits "$REQUESTS"
CONCURRENCY="${CONCURRENCY:-32}"

PACKAGES=()
command -v redis-server >/dev/null || PACKAGES+=(redis-server)
command -v python3 >/dev/null || PACKAGES+=(python3)
if [ ${#PACKAGES[@]} -gt 0 ]; then
  echo "Installing ${PACKAGES[*]}..."
  apt-get update -qq
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

. bench/release_build.sh
release_build .build balancer factorial-server loadtest

WORK="$(mktemp -d)"
PIDS=()
REDIS_PID=""
. bench/processes.sh  # stop_pid, wait_port, free_ports
cleanup() {
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  [ -n "$REDIS_PID" ] && stop_pid "$REDIS_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Eight free ports: five servers, two balancers, Redis.
read -r -a PORTS <<<"$(free_ports 8)"
SERVER_PORTS=("${PORTS[@]:0:5}")
A="${PORTS[5]}"
B="${PORTS[6]}"
REDIS_PORT="${PORTS[7]}"
fail() { echo "$*" >&2; for f in "$WORK"/*.log; do echo "--- $f" >&2; tail -5 "$f" >&2; done; exit 1; }
redis() {
  python3 - "$REDIS_PORT" "$@" <<'PY'
import socket, sys
port, args = int(sys.argv[1]), sys.argv[2:]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)).encode())
print(s.recv(65536).decode().strip())
PY
}

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --logfile "$WORK/redis.log" &
REDIS_PID=$!
wait_port "$REDIS_PORT" || fail "redis-server did not start"
for port in "${SERVER_PORTS[@]}"; do
  "$BIN/factorial-server" --port "$port" --bind 127.0.0.1 \
    --balancer "127.0.0.1:$A,127.0.0.1:$B" --quiet >>"$WORK/server-$port.log" 2>&1 &
  PIDS+=($!)
done
for port in "${SERVER_PORTS[@]}"; do wait_port "$port" || fail "server $port did not start"; done
python3 -c "import json, sys; print(json.dumps({'available_servers': sys.argv[1:]}))" \
  "${SERVER_PORTS[@]}" >"$WORK/servers.json"

# run NAME PORT... : starts the balancers, waits until the first sees every server free, runs
# the load tester over all of them, stops them; prints "jobs/s p50 p99" (ms at the balancer).
run() {
  local name="$1" shared="$2"
  shift 2
  local ports=("$@") pids=() urls=()
  redis FLUSHALL >/dev/null
  for port in "${ports[@]}"; do
    local flags=(--port "$port" --config "$WORK/servers.json" --no-spawn --quiet)
    [ "$shared" = yes ] && flags+=(--shared-queue "redis://127.0.0.1:$REDIS_PORT/bench")
    "$BIN/balancer" "${flags[@]}" >>"$WORK/balancer-$port.log" 2>&1 &
    pids+=($!)
    PIDS+=($!)
    urls+=("http://127.0.0.1:$port/")
  done
  for port in "${ports[@]}"; do wait_port "$port" || fail "balancer $port did not start"; done
  for _ in $(seq 100); do
    free=$(curl -s "http://127.0.0.1:${ports[0]}/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["free"])' 2>/dev/null || echo 0)
    [ "$free" = 5 ] && break
    sleep 0.1
  done
  [ "$free" = 5 ] || fail "$name: the servers did not all become free"
  local list
  list="$(IFS=,; echo "${urls[*]}")"
  "$BIN/loadtest" "$list" --requests "$REQUESTS" --concurrency "$CONCURRENCY" --quiet \
    --json "$WORK/$name.json" >"$WORK/$name.txt" 2>&1 || fail "$name: loadtest failed: $(tail -3 "$WORK/$name.txt")"
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  python3 - "$WORK/$name.json" "$REQUESTS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if r["succeeded"] != int(sys.argv[2]):
    sys.exit("%s: only %d of %s visits got their factorial" % (sys.argv[1], r["succeeded"], sys.argv[2]))
b = r["latency_ms"]["at_balancer"]
print("%.0f %.2f %.2f" % (r["throughput_rps"], b["p50"], b["p99"]))
PY
}

NAMES=(one-in-process one-shared two-shared)
declare -A RESULTS
echo "$ROUNDS rounds of $REQUESTS visits, $CONCURRENCY at a time; 5 servers; $(nproc) cores"
for round in $(seq "$ROUNDS"); do
  for offset in 0 1 2; do
    name="${NAMES[$(( (offset + round) % 3 ))]}"
    case "$name" in
      one-in-process) line="$(run "$name" no "$A")" ;;
      one-shared) line="$(run "$name" yes "$A")" ;;
      two-shared) line="$(run "$name" yes "$A" "$B")" ;;
    esac
    echo "round $round $name: jobs/s, p50 and p99 ms at the balancer: $line"
    RESULTS[$name]+="$line;"
  done
done

echo
printf '%-34s %10s %16s %16s\n' "" "jobs/s" "p50 ms at LB" "p99 ms at LB"
for name in "${NAMES[@]}"; do
  python3 - "$name" "${RESULTS[$name]}" <<'PY'
import statistics, sys
rows = [list(map(float, r.split())) for r in sys.argv[2].split(";") if r.strip()]
label = {"one-in-process": "one balancer, queue in the process",
         "one-shared": "one balancer, --shared-queue",
         "two-shared": "two balancers, one Redis queue"}[sys.argv[1]]
med = [statistics.median(col) for col in zip(*rows)]
print("%-34s %10.0f %16.2f %16.2f" % (label, med[0], med[1], med[2]))
PY
done
