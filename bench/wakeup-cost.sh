#!/usr/bin/env bash
# What a wake-up costs on this machine, the cost under every figure of bench/vs-haproxy.sh: two
# processes pass a small message back and forth over a connected socket, each sleeping until the
# other's message arrives (bench/wakeup_cost.swift, built with `swiftc -O`). Each round runs four
# cases, in turn:
#
#  - TCP on 127.0.0.1, both processes free to run on either CPU (the scheduler's choice, as for
#    the balancer, its servers and curl), and the same with both held on CPU 0 (`taskset -c 0`);
#  - a Unix socket pair, free and on one CPU.
#
# For each case it prints the round trip's wall time and the CPU time (user + system, getrusage)
# of each side per round trip, then the medians over the rounds. When the two processes run on
# two CPUs, each message wakes a process whose CPU has gone idle; on one CPU it does not.
#
# Usage: bench/wakeup-cost.sh [ROUNDS=3] [ROUND_TRIPS=30000]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/arguments.sh
help_if_asked "$@"
at_most 2 "$@"
ROUNDS="${1:-3}"
TRIPS="${2:-30000}"
whole_number rounds "$ROUNDS"
whole_number round_trips "$TRIPS"
command -v taskset >/dev/null || { echo "needs taskset (util-linux)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
swiftc -O bench/wakeup_cost.swift -o "$WORK/wakeup_cost"
echo "CPUs: $(nproc); $TRIPS round trips a case, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  for transport in tcp unix; do
    # Captured first, so that a failed run stops the script (set -e) instead of being printed.
    free="$("$WORK/wakeup_cost" "$transport" "$TRIPS")"
    echo "round $round, free:      $free" | tee -a "$WORK/lines"
    pinned="$(taskset -c 0 "$WORK/wakeup_cost" "$transport" "$TRIPS")"
    echo "round $round, one CPU:   $pinned" | tee -a "$WORK/lines"
  done
done
python3 - "$WORK/lines" <<'PY'
import re, statistics, sys
cases = {}
for line in open(sys.argv[1]):
    placement = "one CPU" if "one CPU" in line else "free"
    transport, trip, asking, answering = re.search(
        r"(tcp|unix): round trip ([\d.]+) µs; CPU per round trip: asking side ([\d.]+) µs, "
        r"answering side ([\d.]+) µs", line).groups()
    cases.setdefault((transport, placement), []).append(
        (float(trip), float(asking), float(answering)))
print()
print("| transport | placement | round trip µs | CPU µs per round trip, each side |")
print("| --- | --- | ---: | ---: |")
for (transport, placement), rows in sorted(cases.items()):
    trip = statistics.median(r[0] for r in rows)
    cpu = statistics.median((r[1] + r[2]) / 2 for r in rows)
    print(f"| {transport} | {placement} | {trip:.1f} | {cpu:.1f} |")
PY
