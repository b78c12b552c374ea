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

# nginx_cycle_conf DIR PORT MODE LOCATION: writes DIR/nginx.conf (its pid, logs and
# temporary files in DIR too) for the reference of the lease/report cycle: one worker on
# 127.0.0.1:PORT answering `/` with `return 302 LOCATION` and `/port_update/...` with
# `return 204` (as the balancer answers a factorial server's report), logging nothing, keeping
# a connection for any number of requests (as the balancer does). MODE `daemon`: a master that
# starts the worker and returns; `single`: one process in the foreground (as valgrind runs it).
nginx_cycle_conf() {
  local dir="$1" port="$2" mode="$3" location="$4" process='daemon on;'
  if [ "$mode" = single ]; then process=$'master_process off;\ndaemon off;'; fi
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
$process
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $dir;
  proxy_temp_path $dir;
  fastcgi_temp_path $dir;
  uwsgi_temp_path $dir;
  scgi_temp_path $dir;
  server {
    listen 127.0.0.1:$port;
    location /port_update/ { return 204; }
    location / { return 302 $location; }
  }
}
CONF
}
