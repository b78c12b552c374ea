#!/usr/bin/env bash
# Builds the release binaries, writes servers.json if it is missing, starts one factorial server
# per local entry and the balancer, and stays in the foreground with their logs.
# Ctrl-C or SIGTERM stops everything it started.
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

# Validates the file (exit 2 with the reason if it is invalid) and lists its local ports.
mapfile -t SERVER_PORTS < <("$BIN/balancer" --config "$CONFIG" --check-config)

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for port in "$LB_PORT" "${SERVER_PORTS[@]}"; do
  if port_in_use "$port"; then
    echo "init_project.sh: port $port is already in use; stop what uses it or edit $CONFIG / LB_PORT" >&2
    exit 1
  fi
done

PIDS=()
stop_all() {
  trap - INT TERM EXIT
  if [ ${#PIDS[@]} -gt 0 ]; then
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      alive=0
      for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ $alive -eq 0 ] && break
      sleep 0.1
    done
    kill -KILL "${PIDS[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
  fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

# Waits until something accepts on $1, or fails if process $2 has exited.
wait_listening() {
  for _ in $(seq 200); do
    port_in_use "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

"$BIN/balancer" --port "$LB_PORT" --config "$CONFIG" &
PIDS+=($!)
wait_listening "$LB_PORT" "$!" || { echo "init_project.sh: the balancer did not start" >&2; exit 1; }

for port in "${SERVER_PORTS[@]}"; do
  "$BIN/factorial-server" --port "$port" --balancer "127.0.0.1:$LB_PORT" &
  PIDS+=($!)
  wait_listening "$port" "$!" || { echo "init_project.sh: the server on port $port did not start" >&2; exit 1; }
done

echo
echo "Ready: open http://localhost:$LB_PORT/ in a browser, or run: curl -L http://localhost:$LB_PORT/"
echo "Press Ctrl-C to stop."
echo

# Stay in the foreground; if any process dies, stop the rest.
wait -n "${PIDS[@]}" || true
echo "init_project.sh: a process exited; stopping the others" >&2
exit 1
