#!/usr/bin/env bash
# Builds the release binaries (balancer, factorial-server and the load tester, loadtest), writes
# servers.json if it is missing, and runs the balancer with its logs on this terminal; once it
# listens, prints the URL to open. The balancer starts one factorial server per local entry,
# restarts any that die, and stops them all when it stops: Ctrl-C or SIGTERM to this script stops
# it, and the script exits with the balancer's status. Extra arguments go to the balancer (for
# example --lease-timeout 30, or --no-spawn to start the servers yourself).
set -euo pipefail
cd "$(dirname "$0")"

for argument in "$@"; do
  if [ "$argument" = --help ] || [ "$argument" = -h ]; then
    echo "usage: ./init_project.sh [balancer options]    (LB_PORT=PORT for another port than 8001)"
    echo
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' init_project.sh
    if [ -x .build/release/balancer ]; then
      echo
      .build/release/balancer --help
    else
      echo
      echo "The balancer's options: .build/release/balancer --help, once a first run has built it."
    fi
    exit 0
  fi
done

LB_PORT="${LB_PORT:-8001}"
CONFIG="servers.json"

if ! command -v swift >/dev/null 2>&1; then
  echo "init_project.sh: the Swift toolchain (swift) is not on PATH" >&2
  exit 1
fi

# From scratch whenever a source changed since the last release build (see the script).
. bench/release_build.sh
echo "Building release binaries..."
release_build .build balancer factorial-server loadtest

if [ ! -e "$CONFIG" ]; then
  echo '{"available_servers": ["5001", "5002", "5003", "5004", "5005"]}' >"$CONFIG"
  echo "Wrote $CONFIG with servers 5001-5005."
fi

# Copies the balancer's output (its servers' too) through, and on its line
# "[balancer] listening on port N with ..." says where to go, with the port it really took; then
# hands the rest to cat, which keeps up with a line per request. Ctrl-C reaches this copier too:
# it ignores the signal and ends when the output does.
announce() {
  trap '' INT TERM
  local line listening='^\[balancer\] listening on port ([0-9]+) '
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "$line"
    if [[ "$line" =~ $listening ]]; then
      echo "Open http://localhost:${BASH_REMATCH[1]}/ in a browser, or run: curl -L http://localhost:${BASH_REMATCH[1]}/"
      echo "Press Ctrl-C to stop."
      exec cat
    fi
  done
}
exec 3> >(announce)
COPIER=$!

# SIGINT and SIGTERM to this script stop the balancer (which stops its servers). A signal that
# comes before the balancer has started is passed on once it has.
BALANCER=""
PENDING=""
forward() {
  if [ -n "$BALANCER" ]; then kill -s "$1" "$BALANCER" 2>/dev/null || true; else PENDING="$1"; fi
}
trap 'forward INT' INT
trap 'forward TERM' TERM

# The balancer runs in its own process group (set -m), so that Ctrl-C reaches it once, from the
# trap, rather than also straight from the terminal. It reports a bad servers.json or a port in
# use by number, and exits non-zero without leaving anything running.
set -m
"$BIN/balancer" --port "$LB_PORT" --config "$CONFIG" "$@" </dev/null >&3 3>&- &
BALANCER=$!
set +m
exec 3>&-
if [ -n "$PENDING" ]; then forward "$PENDING"; fi

# A trapped signal ends `wait` early: wait again until the balancer has exited, then once more
# for its status (bash keeps it).
while kill -0 "$BALANCER" 2>/dev/null; do
  wait "$BALANCER" || true
done
STATUS=0
wait "$BALANCER" || STATUS=$?
# Its last lines (and its servers', which it has stopped) are still being copied.
wait "$COPIER" || true
exit "$STATUS"
