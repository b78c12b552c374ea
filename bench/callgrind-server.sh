#!/usr/bin/env bash
# Counts the instructions a factorial server spends per job with and without a lease and its
# report, with callgrind (stable on a noisy machine, where timings are not): what checking the lease
# and reporting cost the server in user space. (The report's kernel time, a write that wakes the
# balancer, is not counted here: see bench/vs-haproxy.sh for CPU time.)
#
# Usage: bench/callgrind-server.sh [N=100] [JOBS_A=500] [JOBS_B=1500] [SCRATCH=.build]
#
# Builds the release balancer and factorial-server, runs one server under
# `valgrind --tool=callgrind` and a native balancer whose pool is that server. Drives JOBS_A and
# then JOBS_B jobs `?n=N` one at a time with bench/server_job_client.py, first through the
# balancer (302 with a lease, the job, the report), then straight at the server (`GET /`, no
# lease, no report). The server's counters are zeroed before and dumped after each run; the
# difference of two runs over the difference of their jobs is the cost of one job without
# start-up or warm-up. Prints both, then the server's top functions (inclusive) per leased job.
# The dumps are left in $OUT (default /tmp/callgrind-server) for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/callgrind_counters.sh
. bench/processes.sh  # free_ports
. bench/arguments.sh
help_if_asked "$@"
at_most 4 "$@"
N="${1:-100}"
JOBS_A="${2:-500}"
JOBS_B="${3:-1500}"
[[ "$N" =~ ^[0-9]+$ ]] || { echo "callgrind-server.sh: N must be a whole number (0 or more), not '$N'" >&2; exit 2; }
two_runs JOBS_A "$JOBS_A" JOBS_B "$JOBS_B"
SCRATCH="${4:-.build}"
OUT="${OUT:-/tmp/callgrind-server}"

command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
. bench/release_build.sh
release_build "$SCRATCH" balancer factorial-server
rm -rf "$OUT"
mkdir -p "$OUT"
read -r SERVER_PORT BALANCER_PORT <<<"$(free_ports 2)"
echo "{\"available_servers\": [\"$SERVER_PORT\"]}" >"$OUT/servers.json"

# Valgrind 3.19 cannot read the DWARF 5 that swiftc writes: count a copy without debug info (the
# symbol table still names every function).
cp "$BIN/factorial-server" "$OUT/factorial-server"
strip --strip-debug "$OUT/factorial-server"
"$BIN/balancer" --no-spawn --quiet --bind 127.0.0.1 --port "$BALANCER_PORT" \
  --config "$OUT/servers.json" >"$OUT/balancer.log" 2>&1 &
BALANCER=$!
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
  "$OUT/factorial-server" --port "$SERVER_PORT" --bind 127.0.0.1 \
  --balancer "127.0.0.1:$BALANCER_PORT" --quiet >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $BALANCER $SERVER 2>/dev/null || true' EXIT
callgrind_wait_port "$SERVER" "$SERVER_PORT" "$OUT/server.log"
# The balancer takes the server once its first heartbeat is answered.
for _ in $(seq 100); do
  curl -s --max-time 2 "http://127.0.0.1:$BALANCER_PORT/health" | grep -q '"free":1' && break
  sleep 0.1
done

# Warm-up: first-time allocations, lazy metrics.
python3 bench/server_job_client.py leased "$BALANCER_PORT" 100 "$N"
python3 bench/server_job_client.py direct "$SERVER_PORT" 100 "$N"
# A run of MODE (leased or direct) at PORT, JOBS jobs: prints its dump's file. The last report's
# answer is read lazily, within 0.2 s: the run waits that out before the dump.
run() {
  callgrind_count "$SERVER" "$1-$3" \
    bash -c 'python3 bench/server_job_client.py "$@" && sleep 0.5' run "$1" "$2" "$3" "$N"
}
LEASED_A="$(run leased "$BALANCER_PORT" "$JOBS_A")"
LEASED_B="$(run leased "$BALANCER_PORT" "$JOBS_B")"
DIRECT_A="$(run direct "$SERVER_PORT" "$JOBS_A")"
DIRECT_B="$(run direct "$SERVER_PORT" "$JOBS_B")"
per_job() { echo $((($(callgrind_total "$2") - $(callgrind_total "$1")) / (JOBS_B - JOBS_A))); }
LEASED="$(per_job "$LEASED_A" "$LEASED_B")"
DIRECT="$(per_job "$DIRECT_A" "$DIRECT_B")"
echo "instructions per job, n=$N, at the server:"
echo "  with a lease and its report: $LEASED"
echo "  GET / alone:                 $DIRECT"
echo "  the lease and the report:    $((LEASED - DIRECT))"
echo
echo "== top functions with a lease, $JOBS_B jobs, inclusive (callgrind_annotate $LEASED_B) =="
# (sed, not head: head would end the pipe early, and under pipefail the script would exit 141.)
callgrind_annotate --inclusive=yes "$LEASED_B" 2>/dev/null | sed -n '/file:function/,$p' |
  grep -v '(100.0%)' | grep -v '(99\.' | sed -n '1,40p'
