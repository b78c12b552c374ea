# Sourced by the bench scripts: choosing free ports, waiting for a port to answer, and stopping
# the processes a script started.

# free_ports N: N distinct free ports on 127.0.0.1, never one of the project's usual ones (8001,
# 5001-5005, Redis's 6379), all held until all are chosen (so none is handed out twice).
free_ports() {
  python3 -c '
import socket, sys
avoid = {8001, 6379, 5001, 5002, 5003, 5004, 5005}
socks, ports = [], []
while len(ports) < int(sys.argv[1]):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    if s.getsockname()[1] not in avoid:
        ports.append(s.getsockname()[1])
print(" ".join(map(str, ports)))' "$1"
}

# wait_port PORT: whether 127.0.0.1:PORT accepts a connection within 5 s.
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# alive PID: whether the process runs (a zombie does not).
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ "$state" != Z* ]]
}

# stop_pid PID: TERM (after CONT, for a paused one), then KILL if it is still there after 5 s;
# reaps it. An empty PID is nothing to stop. Never fails (safe in an EXIT trap under set -e).
stop_pid() {
  local pid="$1"
  [ -n "$pid" ] || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return 0
}
