#!/usr/bin/env bash
# The second document's experiments, through the balancer, with this project's own tools:
#  1. distribution: 10,000 requests over 3 servers, requests per server (bar chart);
#  2. scaling: N = 2…6 servers, requests per server and throughput against N (line charts);
#  3. failover: 10,000 requests over 5 servers, one killed with -9 halfway (timeline chart).
# Writes docs/charts/*.svg and docs/results/*.json (and .txt), then checks every chart renders in
# headless Chromium. Usage: bench/experiments.sh [requests, default 10000] [concurrency, default 64]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/arguments.sh
help_if_asked "$@"
at_most 2 "$@"
REQUESTS="${1:-10000}"
CONCURRENCY="${2:-64}"
whole_number requests "$REQUESTS"
whole_number concurrency "$CONCURRENCY"
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }

. bench/release_build.sh
release_build .build
mkdir -p docs/charts docs/results
WORK="$(mktemp -d)"
BALANCER_PID=""
cleanup() {
  [ -n "$BALANCER_PID" ] && kill "$BALANCER_PID" 2>/dev/null && wait "$BALANCER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

. bench/processes.sh  # free_ports

# Starts the balancer on free ports with $1 servers it supervises; sets LB_URL and SERVER_PORTS.
start_system() {
  local ports
  read -r -a ports <<<"$(free_ports $(($1 + 1)))"
  SERVER_PORTS=("${ports[@]:1}")
  python3 -c "import json,sys; print(json.dumps({'available_servers': sys.argv[1:]}))" "${SERVER_PORTS[@]}" >"$WORK/servers.json"
  local port="${ports[0]}"
  "$BIN/balancer" --quiet --port "$port" --config "$WORK/servers.json" >"$WORK/balancer.log" 2>&1 &
  BALANCER_PID=$!
  LB_URL="http://127.0.0.1:$port/"
  for _ in $(seq 200); do
    if python3 -c "import json,urllib.request,sys; sys.exit(0 if json.load(urllib.request.urlopen('${LB_URL}health'))['free'] == $1 else 1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "the system did not start" >&2
  exit 1
}

stop_system() {
  kill "$BALANCER_PID"
  wait "$BALANCER_PID" 2>/dev/null || true
  BALANCER_PID=""
}

echo "== 1. distribution: $REQUESTS requests, 3 servers, $CONCURRENCY at a time =="
start_system 3
"$BIN/loadtest" "$LB_URL" --requests "$REQUESTS" --concurrency "$CONCURRENCY" --quiet \
  --json docs/results/distribution.json --chart docs/charts/distribution.svg | tee docs/results/distribution.txt
stop_system

echo
echo "== 2. scaling: N = 2…6 servers, $REQUESTS requests each =="
"$BIN/loadtest" scale --from 2 --to 6 --requests "$REQUESTS" --concurrency "$CONCURRENCY" --quiet \
  --json docs/results/scaling.json --chart docs/charts/scaling-per-server.svg \
  --throughput-chart docs/charts/scaling-throughput.svg | tee docs/results/scaling.txt

echo
echo "== 3. failover: $REQUESTS requests, 5 servers, one killed with -9 after $((REQUESTS / 2)) =="
start_system 5
VICTIM="${SERVER_PORTS[2]}"
"$BIN/loadtest" "$LB_URL" --requests "$REQUESTS" --concurrency "$CONCURRENCY" --quiet \
  --run-at "$((REQUESTS / 2)):pkill -9 -f -- '[f]actorial-server --port $VICTIM '" \
  --json docs/results/failover.json --chart docs/charts/failover-distribution.svg \
  --timeline-chart docs/charts/failover-timeline.svg | tee docs/results/failover.txt
python3 -c "import urllib.request; print(urllib.request.urlopen('${LB_URL}rep').read().decode())" \
  >docs/results/failover-rep.json
sleep 1
grep -E "$VICTIM: (process|restarting|started|answers|down)" "$WORK/balancer.log" | tee -a docs/results/failover.txt || true
stop_system

echo
echo "== charts in headless Chromium =="
bench/check_charts.sh docs/charts/*.svg
