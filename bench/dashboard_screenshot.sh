#!/usr/bin/env bash
# Takes a screenshot of the live dashboard under load, as a person's browser shows it: starts
# the balancer with five supervised servers on free ports, drives a steady open-loop load with
# the load tester (a heavy-tailed mix of job sizes, so clients wait now and then), kills one
# server midway so the page shows a server down and back, and saves headless Chromium's view.
# Installs chromium if missing. Usage: bench/dashboard_screenshot.sh [OUT.png, default docs/dashboard.png]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/arguments.sh
help_if_asked "$@"
at_most 1 "$@"
OUT="${1:-docs/dashboard.png}"
case "$OUT" in *.png) ;; *) echo "dashboard_screenshot.sh: the output must be a .png file, not '$OUT'" >&2; exit 2 ;; esac
[ -d "$(dirname "$OUT")" ] || { echo "dashboard_screenshot.sh: no folder $(dirname "$OUT") for $OUT" >&2; exit 2; }
if ! command -v chromium >/dev/null 2>&1; then
  echo "Installing chromium..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
. bench/release_build.sh
release_build .build balancer factorial-server loadtest
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

. bench/processes.sh  # free_ports
PORTS="$(free_ports 6)"
set -- $PORTS
LB_PORT="$1"
shift
python3 -c "import json,sys; print(json.dumps({'available_servers': sys.argv[1:]}))" "$@" >"$WORK/servers.json"
"$BIN/balancer" --port "$LB_PORT" --config "$WORK/servers.json" --quiet --heartbeat-interval 1 \
  >"$WORK/balancer.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do
  python3 -c "import json,urllib.request,sys; sys.exit(0 if json.load(urllib.request.urlopen('http://127.0.0.1:$LB_PORT/health'))['free'] == 5 else 1)" 2>/dev/null && break
  sleep 0.1
done
"$BIN/loadtest" "http://127.0.0.1:$LB_PORT/" --requests 4000 --rate 150 --concurrency 64 \
  --mix 100:80,2000:15,20000:5 --quiet >"$WORK/loadtest.log" 2>&1 &
PIDS+=($!)
sleep 8
VICTIM="$(grep -o "] $3: started process [0-9]*" "$WORK/balancer.log" | tail -1 | awk '{print $NF}')"
[ -n "$VICTIM" ] && kill -9 "$VICTIM"
sleep 6
timeout 90 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,820 \
  --virtual-time-budget=3000 --screenshot="$OUT" "http://127.0.0.1:$LB_PORT/dashboard" >/dev/null 2>&1
python3 bench/png_not_blank.py "$OUT"
echo "dashboard screenshot: $OUT"
