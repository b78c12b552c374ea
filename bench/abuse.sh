#!/usr/bin/env bash
# Hostile but cheap clients against the release build, one figure each (the README's
# reliability section): an empty-line flood, 10,000 waiters sending 1 MiB bodies, 10,000 waiters
# leaving at once, a factorial server flooded by 2,000 clients that leave, and the balancer with
# `ulimit -n 256` and 400 idle connections. Usage: bench/abuse.sh [SCENARIO ...]
# (empty-lines, bodies, disconnect, factorial, descriptors; default all).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/arguments.sh
help_if_asked "$@"
for scenario in "$@"; do
  case "$scenario" in
    empty-lines | bodies | disconnect | factorial | descriptors) ;;
    *) echo "abuse.sh: no scenario '$scenario' (--help for the list)" >&2; exit 2 ;;
  esac
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
. bench/release_build.sh
release_build .build balancer factorial-server
WORK="$(mktemp -d)"
trap 'pkill -f "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT
python3 bench/abuse.py "$BIN" "$WORK" "$@"
