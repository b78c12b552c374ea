#!/usr/bin/env bash
# Counts the instructions the balancer spends per lease/report cycle, with callgrind: stable on a
# noisy machine, where timings are not.
#
# Usage: bench/callgrind-cycle.sh [CYCLES_A=2000] [CYCLES_B=4000] [SCRATCH=.build-hot]
#
# Builds the release balancer (swift build --scratch-path SCRATCH), runs it under
# `valgrind --tool=callgrind` with a pool of 256 fake ports (--no-spawn, no heartbeats: nothing
# else happens), warms it up, then drives CYCLES_A and, separately, CYCLES_B cycles with
# bench/cycle_client.py (GET / -> 302 with a lease on one keep-alive connection, then
# GET /port_update/<port>?lease=T -> 204 on another, as a factorial server reports). The
# counters are zeroed before and dumped after each run; the difference of the two counts over
# the difference of the cycles is the cost of one cycle, without start-up, warm-up or shutdown.
# Prints that; then the same count for nginx
# (the reference for raw HTTP, if installed) answering the same client with `return 302` and
# `return 204`, and the ratio; then the top functions of the balancer's CYCLES_B run (self and
# inclusive). The dumps are left in $OUT (default
# /tmp/callgrind-cycle) for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/callgrind_counters.sh
. bench/processes.sh  # free_ports
. bench/arguments.sh
help_if_asked "$@"
at_most 3 "$@"
CYCLES_A="${1:-2000}"
CYCLES_B="${2:-4000}"
SCRATCH="${3:-.build-hot}"
two_runs CYCLES_A "$CYCLES_A" CYCLES_B "$CYCLES_B"
OUT="${OUT:-/tmp/callgrind-cycle}"

command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
. bench/release_build.sh
release_build "$SCRATCH" balancer
rm -rf "$OUT"
mkdir -p "$OUT"
python3 -c "import json; print(json.dumps({'available_servers': [str(p) for p in range(40001, 40257)]}))" >"$OUT/servers.json"
PORT="$(free_ports 1)"

# Valgrind 3.19 cannot read the DWARF 5 that swiftc writes: count a copy without debug info (the
# symbol table still names every function).
cp "$BIN/balancer" "$OUT/balancer"
strip --strip-debug "$OUT/balancer"
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
  "$OUT/balancer" --no-spawn --heartbeat-interval 0 --lease-timeout 3600 --quiet \
  --bind 127.0.0.1 --port "$PORT" --config "$OUT/servers.json" >"$OUT/balancer.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
callgrind_wait_port "$PID" "$PORT" "$OUT/balancer.log"

python3 bench/cycle_client.py "$PORT" 200  # warm-up: first-time allocations, lazy metrics
FILE_A="$(callgrind_count "$PID" "cycles-$CYCLES_A" python3 bench/cycle_client.py "$PORT" "$CYCLES_A")"
FILE_B="$(callgrind_count "$PID" "cycles-$CYCLES_B" python3 bench/cycle_client.py "$PORT" "$CYCLES_B")"
kill -TERM "$PID"
wait "$PID" 2>/dev/null || true
trap - EXIT

A="$(callgrind_total "$FILE_A")"
B="$(callgrind_total "$FILE_B")"
PER_CYCLE=$(( (B - A) / (CYCLES_B - CYCLES_A) ))
echo "instructions: $A for $CYCLES_A cycles, $B for $CYCLES_B cycles"
echo "per cycle: $PER_CYCLE"

# The reference, counted the same way: nginx (one process, no master) answering the same client
# with `return 302` to a Location of the same shape (a port and a 32-digit lease) and `return 204`
# to the reports.
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
if [ -x "$NGINX" ]; then
  NGINX_PORT="$(free_ports 1)"
  nginx_cycle_conf "$OUT" "$NGINX_PORT" single \
    'http://$host:40001/40001?lease=0123456789abcdef0123456789abcdef'
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
    "$NGINX" -c "$OUT/nginx.conf" -p "$OUT" >"$OUT/nginx.log" 2>&1 &
  PID=$!
  trap 'kill $PID 2>/dev/null || true' EXIT
  callgrind_wait_port "$PID" "$NGINX_PORT" "$OUT/nginx.log"
  python3 bench/cycle_client.py "$NGINX_PORT" 200
  NGINX_A="$(callgrind_total "$(callgrind_count "$PID" "nginx-cycles-$CYCLES_A" \
    python3 bench/cycle_client.py "$NGINX_PORT" "$CYCLES_A")")"
  NGINX_B="$(callgrind_total "$(callgrind_count "$PID" "nginx-cycles-$CYCLES_B" \
    python3 bench/cycle_client.py "$NGINX_PORT" "$CYCLES_B")")"
  kill -TERM "$PID"
  wait "$PID" 2>/dev/null || true
  trap - EXIT
  NGINX_PER_CYCLE=$(( (NGINX_B - NGINX_A) / (CYCLES_B - CYCLES_A) ))
  echo "nginx, the same client and cycles: $NGINX_PER_CYCLE per cycle;" \
    "ratio balancer/nginx $(python3 -c "print(f'{$PER_CYCLE / $NGINX_PER_CYCLE:.2f}')")"
else
  echo "(nginx not installed: no reference count; apt-get install nginx)"
fi
echo
echo "== top functions, $CYCLES_B cycles (callgrind_annotate $FILE_B) =="
# (Zeroing the counters leaves the callers on the stack at 100 %: those lines are dropped.)
# (sed, not head, keeps the first lines: head would end the pipe early, and under pipefail
# the script's status would be 141 although it succeeded.)
callgrind_annotate --inclusive=no --threshold=100 "$FILE_B" 2>/dev/null | sed -n '/file:function/,$p' |
  grep -v '(100.0%)' | sed -n '1,40p'
echo
callgrind_annotate --inclusive=yes "$FILE_B" 2>/dev/null | sed -n '/file:function/,$p' |
  grep -v '(100.0%)' | sed -n '1,60p'
