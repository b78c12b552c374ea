#!/usr/bin/env bash
# Benchmarks the balancer side by side with nginx on this machine, in one run:
#  1. the lease/report cycle (GET / then GET /port_update/<port>) with wrk against the balancer,
#     and the same script against nginx (one worker, connections kept for any number of
#     requests) answering 302 for / and 204 for /port_update/ (the reports ask
#     `Prefer: return=minimal`, as the factorial servers' do), printing both request rates and
#     their ratio, and each server's CPU per request (user and system, from /proc/<pid>/stat
#     over the wrk run): wrk has one core and the server the other, so when both servers keep
#     up with wrk the rates say little and the CPU per request says which is cheaper;
#  2. the balancer's resident memory with 10,000 clients waiting at once.
# Usage: bench/run.sh [seconds per wrk run, default 10] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/arguments.sh
help_if_asked "$@"
at_most 2 "$@"
DURATION="${1:-10}"
ROUNDS="${2:-3}"
whole_number seconds "$DURATION"
whole_number rounds "$ROUNDS"
CONNECTIONS=64

need() { command -v "$1" >/dev/null 2>&1 || PACKAGES+=("$2"); }
PACKAGES=()
need wrk wrk
need nginx nginx
need python3 python3
if [ ${#PACKAGES[@]} -gt 0 ]; then
  echo "Installing ${PACKAGES[*]}..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

. bench/release_build.sh
release_build .build balancer
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

. bench/processes.sh  # free_ports, wait_port

# A pool larger than the number of connections: the cycle never waits. The ports are only
# names here (wrk reports for them), so the balancer starts no servers and checks none.
python3 -c "import json; print(json.dumps({'available_servers': [str(p) for p in range(40001, 40257)]}))" >"$WORK/servers.json"
LB_PORT="$(free_ports 1)"
"$BIN/balancer" --no-spawn --heartbeat-interval 0 --lease-timeout 3600 --quiet --bind 127.0.0.1 --port "$LB_PORT" --config "$WORK/servers.json" >"$WORK/balancer.log" 2>&1 &
PIDS+=($!)
wait_port "$LB_PORT"

NGINX_PORT="$(free_ports 1)"
nginx_cycle_conf "$WORK" "$NGINX_PORT" daemon 'http://$host:5001/5001'
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK"
wait_port "$NGINX_PORT"

# ticks PID: the process's user and system CPU so far, in clock ticks ("utime stime").
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
TICK_US="$(python3 -c 'import os; print(1e6 / os.sysconf("SC_CLK_TCK"))')"

# run PORT PID: wrk against 127.0.0.1:PORT; prints "REQ_PER_S USER_US SYSTEM_US TOTAL_US", the
# last three PID's CPU per request over the run.
run() {
  local before after out
  before="$(ticks "$2")"
  out="$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/cycle.lua "http://127.0.0.1:$1/")"
  after="$(ticks "$2")"
  python3 - "$TICK_US" "$before" "$after" "$out" <<'PY'
import re, sys
tick_us, before, after, out = float(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
requests = int(re.search(r"(\d+) requests in", out).group(1))
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
user, system = ((int(a) - int(b)) * tick_us / requests for a, b in zip(after, before))
print(f"{rate:.0f} {user:.1f} {system:.1f} {user + system:.1f}")
PY
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "== Lease/report cycle: wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS alternating rounds =="
BALANCER_RATES=()
NGINX_RATES=()
RATIOS=()
CPU_RATIOS=()
NGINX_CPUS=()
BALANCER_CPUS=()
# nginx's master only starts its worker, which answers every request.
NGINX_WORKER="$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)"
[ -n "$NGINX_WORKER" ] || { echo "run.sh: nginx has no worker process" >&2; exit 1; }
for round in $(seq "$ROUNDS"); do
  read -r n nu ns nt <<<"$(run "$NGINX_PORT" "$NGINX_WORKER")"
  read -r b bu bs bt <<<"$(run "$LB_PORT" "${PIDS[0]}")"
  read -r r c <<<"$(python3 -c "print(f'{$b/$n:.2f} {$bt/$nt:.2f}')")"
  echo "round $round: nginx $n req/s, balancer $b req/s, ratio $r;" \
    "CPU per request: nginx ${nu}+${ns} µs, balancer ${bu}+${bs} µs (user+system), ratio $c"
  NGINX_RATES+=("$n")
  BALANCER_RATES+=("$b")
  RATIOS+=("$r")
  NGINX_CPUS+=("$nt")
  BALANCER_CPUS+=("$bt")
  CPU_RATIOS+=("$c")
done
echo "median: nginx $(median "${NGINX_RATES[@]}") req/s, balancer $(median "${BALANCER_RATES[@]}") req/s," \
  "ratio balancer/nginx $(median "${RATIOS[@]}") (median of the per-round ratios)"
echo "median CPU per request: nginx $(median "${NGINX_CPUS[@]}") µs, balancer" \
  "$(median "${BALANCER_CPUS[@]}") µs, ratio balancer/nginx $(median "${CPU_RATIOS[@]}")" \
  "(median of the per-round ratios; lower is cheaper)"
curl -s "http://127.0.0.1:$LB_PORT/health" 2>/dev/null || python3 -c "
import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$LB_PORT/health').read().decode().strip())"

echo
echo "== 10,000 waiting clients =="
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
PIDS=()
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo '{"available_servers": ["40001"]}' >"$WORK/one.json"
LB_PORT="$(free_ports 1)"
"$BIN/balancer" --no-spawn --heartbeat-interval 0 --lease-timeout 3600 --quiet --bind 127.0.0.1 --port "$LB_PORT" --config "$WORK/one.json" >"$WORK/balancer.log" 2>&1 &
PIDS+=($!)
wait_port "$LB_PORT"
python3 bench/waiting_clients.py "$LB_PORT" "${PIDS[0]}" 10000
