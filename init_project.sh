#!/usr/bin/env bash
# Builds the release binaries, writes servers.json if it is missing, and runs the balancer in the
# foreground; the balancer starts one factorial server per local entry, restarts any that die,
# and stops them all when it stops (Ctrl-C or SIGTERM). Extra arguments go to the balancer
# (for example --lease-timeout 30, or --no-spawn to start the servers yourself).
set -euo pipefail
cd "$(dirname "$0")"

LB_PORT="${LB_PORT:-8001}"
CONFIG="servers.json"

if ! command -v swift >/dev/null 2>&1; then
  echo "init_project.sh: the Swift toolchain (swift) is not on PATH" >&2
  exit 1
fi

echo "Building release binaries..."
swift build -c release --product balancer >/dev/null
swift build -c release --product factorial-server >/dev/null
BIN="$(swift build -c release --show-bin-path)"

if [ ! -e "$CONFIG" ]; then
  echo '{"available_servers": ["5001", "5002", "5003", "5004", "5005"]}' >"$CONFIG"
  echo "Wrote $CONFIG with servers 5001-5005."
fi

echo "Open http://localhost:$LB_PORT/ in a browser, or run: curl -L http://localhost:$LB_PORT/"
echo "Press Ctrl-C to stop."
# The balancer reports a bad servers.json or a port in use by number, and exits non-zero
# without leaving anything running.
exec "$BIN/balancer" --port "$LB_PORT" --config "$CONFIG" "$@"
