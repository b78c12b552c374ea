#!/usr/bin/env bash
# Smoke test of the README's first command: ./init_project.sh builds and runs the whole system
# (and builds the load tester the README runs), prints the URL to open once the balancer listens,
# answers curl -L, stops everything on SIGTERM, and refuses to start on a port in use without
# printing a URL; and that --help answers without starting anything.
set -euo pipefail
cd "$(dirname "$0")/.."
LB_PORT=18001
export LB_PORT
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
ports() { python3 -c 'import json; print(" ".join(str(p) for p in json.load(open("servers.json"))["available_servers"]))'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --help answers at once, without building or starting anything.
HELP="$(timeout 10 ./init_project.sh --help)" || { echo "init_smoke: --help failed" >&2; exit 1; }
case "$HELP" in
  "usage: ./init_project.sh"*) echo "init_smoke: --help answered" ;;
  *) echo "init_smoke: unexpected --help: ${HELP:0:80}" >&2; exit 1 ;;
esac
port_open "$LB_PORT" && { echo "init_smoke: --help started a balancer" >&2; exit 1; }

# The README runs .build/release/loadtest after ./init_project.sh: the script must build it.
rm -f .build/release/loadtest
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
# The URL is printed once the balancer listens, after its line, with the port it listens on.
listening_at() { grep -n '^\[balancer\] listening on port ' "$LOG" | head -1 | cut -d: -f1; }
open_at() { grep -n '^Open http://' "$LOG" | head -1 | cut -d: -f1; }
for _ in $(seq 50); do [ -n "$(open_at)" ] && break; sleep 0.1; done
LISTENING_AT="$(listening_at)"
OPEN_AT="$(open_at)"
if [ -z "$LISTENING_AT" ] || [ -z "$OPEN_AT" ] || [ "$OPEN_AT" -le "$LISTENING_AT" ]; then
  cat "$LOG"; echo "init_smoke: no 'Open http://...' line after the balancer's listening line" >&2
  kill -TERM "$PID"; exit 1
fi
REAL_PORT="$(sed -n "${LISTENING_AT}p" "$LOG" | sed -E 's/^\[balancer\] listening on port ([0-9]+) .*/\1/')"
OPEN_LINE="$(sed -n "${OPEN_AT}p" "$LOG")"
if [ "$REAL_PORT" != "$LB_PORT" ] || [ "$(grep -c '^Open http://' "$LOG")" != 1 ] \
  || [[ "$OPEN_LINE" != "Open http://localhost:$REAL_PORT/ "* ]]; then
  cat "$LOG"; echo "init_smoke: the URL does not name the port the balancer listens on ($REAL_PORT)" >&2
  kill -TERM "$PID"; exit 1
fi
echo "init_smoke: printed after the balancer listened: $OPEN_LINE"
# The load tester the README runs was built, and works against the system.
if ! LOADTEST="$(.build/release/loadtest "http://127.0.0.1:$LB_PORT/" --requests 20 --concurrency 4 --quiet 2>&1)"; then
  echo "$LOADTEST"; echo "init_smoke: .build/release/loadtest missing or failed" >&2
  kill -TERM "$PID"; exit 1
fi
case "$LOADTEST" in
  *"succeeded: 20,"*) echo "init_smoke: .build/release/loadtest ran 20 visits" ;;
  *) echo "$LOADTEST"; echo "init_smoke: unexpected loadtest report" >&2; kill -TERM "$PID"; exit 1 ;;
esac
kill -TERM "$PID"
STATUS=0
wait "$PID" || STATUS=$?
if [ "$STATUS" != 0 ]; then
  cat "$LOG"; echo "init_smoke: init_project.sh exited $STATUS after SIGTERM, not the balancer's 0" >&2
  exit 1
fi
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
STATUS=0
./init_project.sh >"$LOG" 2>&1 || STATUS=$?
kill "$BLOCKER"
if [ "$STATUS" = 0 ]; then
  echo "init_smoke: started although port 5003 was taken" >&2
  exit 1
fi
grep -q "port 5003 is already in use" "$LOG" || { cat "$LOG"; echo "init_smoke: no port number in the error" >&2; exit 1; }
# The balancer's own status (1: a port in use), and no URL to open.
[ "$STATUS" = 1 ] || { cat "$LOG"; echo "init_smoke: exited $STATUS, not the balancer's 1" >&2; exit 1; }
if grep -q "Open http" "$LOG"; then
  cat "$LOG"; echo "init_smoke: printed a URL to open although the balancer did not start" >&2
  exit 1
fi
if pgrep -f '[f]actorial-server --port' >/dev/null; then echo "init_smoke: processes left" >&2; exit 1; fi
echo "init_smoke: a port in use is reported by number, with no URL to open"
