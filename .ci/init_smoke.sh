#!/usr/bin/env bash
# Smoke test of the README's first command: ./init_project.sh builds and runs the whole system,
# answers curl -L, stops everything on SIGTERM, and refuses to start on a port in use.
set -euo pipefail
cd "$(dirname "$0")/.."
LB_PORT=18001
export LB_PORT
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
ports() { python3 -c 'import json; print(" ".join(str(p) for p in json.load(open("servers.json"))["available_servers"]))'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

setsid ./init_project.sh >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 600); do
  if python3 -c "import json,urllib.request,sys; sys.exit(0 if json.load(urllib.request.urlopen('http://127.0.0.1:$LB_PORT/health'))['free'] == 5 else 1)" 2>/dev/null; then
    break
  fi
  kill -0 "$PID" 2>/dev/null || { cat "$LOG"; echo "init_smoke: init_project.sh exited early" >&2; exit 1; }
  sleep 0.5
done
ANSWER="$(curl -s -L "http://127.0.0.1:$LB_PORT/")"
case "$ANSWER" in
  "Factorial of "*) echo "init_smoke: curl -L answered: ${ANSWER:0:40}..." ;;
  *) cat "$LOG"; echo "init_smoke: unexpected answer: $ANSWER" >&2; kill -TERM "$PID"; exit 1 ;;
esac
kill -TERM "$PID"
wait "$PID" || true
sleep 1
for port in "$LB_PORT" $(ports); do
  if port_open "$port"; then echo "init_smoke: port $port still open after SIGTERM" >&2; exit 1; fi
done
if pgrep -f '[f]actorial-server --port' >/dev/null; then
  echo "init_smoke: factorial servers left running" >&2
  exit 1
fi
echo "init_smoke: SIGTERM stopped everything"

# A port already in use is reported by number, and nothing is left running.
python3 -c 'import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 5003)); s.listen(); time.sleep(120)' &
BLOCKER=$!
sleep 0.5
if ./init_project.sh >"$LOG" 2>&1; then
  kill "$BLOCKER"
  echo "init_smoke: started although port 5003 was taken" >&2
  exit 1
fi
kill "$BLOCKER"
grep -q "port 5003 is already in use" "$LOG" || { cat "$LOG"; echo "init_smoke: no port number in the error" >&2; exit 1; }
if pgrep -f '[f]actorial-server --port' >/dev/null; then echo "init_smoke: processes left" >&2; exit 1; fi
echo "init_smoke: a port in use is reported by number"
