#!/usr/bin/env bash
# The balancer against what a user would pick instead: HAProxy with `maxconn 1` on each server and
# `timeout queue`, the same promise (one job per server at a time, clients wait in one FIFO line)
# kept by proxying instead of redirecting. One run, on this machine:
#
#  - the same five factorial servers (release build, `--quiet`, one worker thread each), started
#    by this script on free ports with `--balancer 127.0.0.1:<the balancer's port>`, serve both
#    systems, so their CPU is counted the same way for both:
#      * behind the balancer (`--no-spawn`, otherwise its defaults: heartbeats every 5 s, a
#        supervisor tick every 0.1 s, servers.json polled every second) a client asks
#        `GET /?n=K`, gets `302` to `/<port>?n=K&lease=T`, and the server answers, then reports
#        `GET /port_update/<port>?lease=T` to the balancer;
#      * behind HAProxy a client asks `GET /?n=K`, HAProxy forwards it as it is; the server
#        answers `GET /` (the job) and, as that request carries no lease, sends no report (see
#        FactorialHandler: `case "/": job(..., reports: false)`), so the servers do the same
#        arithmetic and no extra work;
#  - HAProxy: one thread, no logging, `balance roundrobin`, every server `maxconn 1`,
#    `timeout queue 30s` (the balancer's `--wait-timeout`), `check inter 5s` on `/health` (the
#    balancer's heartbeats). With `maxconn 1` a request is given a server only while one has a
#    free slot; otherwise it waits in the backend's queue, which HAProxy serves oldest first
#    whenever any server frees a slot, whatever the algorithm: that is the FIFO line. The
#    algorithm only picks among free servers: roundrobin spreads jobs over them as the
#    balancer's queue of free servers does (`first` would pile a light load onto server 1);
#  - the same client for both: `curl -s -L --parallel --parallel-max 32` over one list of JOBS
#    URLs `/?n=K`, K random in 100...1000 (seeded: the same list for both systems, the original's
#    jobs), bodies to /dev/null. Every answer is checked (200, the number of redirects, the exact
#    size of `Factorial of K = <digits>`), and the first 20 jobs are fetched again with `curl -L`
#    and compared digit for digit with Python's math.factorial before each run;
#  - CPU from /proc/<pid>/stat (utime + stime, every thread) of the front (balancer or haproxy)
#    and the sum over the five servers, before and after each run, and the client's rusage;
#    per job. Each round starts each front afresh, runs it, stops it; the order alternates.
#    Also the context switches per job (voluntary and involuntary, /proc/<pid>/task/*/status)
#    of the front and of the servers: each time a process sleeps (in epoll_wait) and is woken
#    again, which on this kind of machine costs more than the work done between two sleeps.
#  - Idle: in each round, each system alone with its servers for IDLE seconds before its run
#    (timers, heartbeats, health checks, config polling), CPU µs per second of the front and of
#    the servers, from /proc/<pid>/task/*/schedstat (ns; /proc/<pid>/stat's 10 ms ticks are too
#    coarse for this); median over the rounds, as a compile elsewhere can spoil one window.
#  - The servers alone, as the baseline of what the report costs them: the same jobs, `GET /?n=K`,
#    dealt in turn to the five servers, each asked by a curl of its own one job at a time (as
#    behind either front: one job per server at a time), no front, no lease, no report. The
#    servers' CPU per job behind the balancer less theirs here is what the lease check and the
#    report cost them (the issue asks for at most 10 µs).
#  - Each run also says how much CPU the rest of the machine used meanwhile (/proc/stat), to
#    tell a quiet run from one next to a compiler.
#
# Prints a line per round and the table of medians with the ratios balancer/HAProxy.
# Usage: bench/vs-haproxy.sh [rounds, default 3] [jobs per run, default 8000]
#        IDLE=10 (seconds idle) SEED=1 (the job list) in the environment; BALANCER_FLAGS adds
#        flags to the balancer's command line (`BALANCER_FLAGS='--policy least-connections'`:
#        a policy that redirects at once, so not the same promise as HAProxy's `maxconn 1`).
# Installs haproxy (and nginx, wrk for the other bench scripts) from Debian's packages if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/arguments.sh
help_if_asked "$@"
at_most 2 "$@"
ROUNDS="${1:-3}"
JOBS="${2:-8000}"
IDLE="${IDLE:-10}"
SEED="${SEED:-1}"
whole_number rounds "$ROUNDS"
whole_number jobs "$JOBS"
whole_number IDLE "$IDLE"
[[ "$SEED" =~ ^[0-9]+$ ]] || { echo "vs-haproxy.sh: SEED must be a whole number, not '$SEED'" >&2; exit 2; }
CHECKED=20
HELPER=bench/vs_haproxy_client.py

need() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || PACKAGES+=("$2"); }
PACKAGES=()
need haproxy haproxy
need nginx nginx
need wrk wrk
need curl curl
need python3 python3
if [ ${#PACKAGES[@]} -gt 0 ]; then
  echo "Installing ${PACKAGES[*]}..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
fi
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
HAPROXY_VERSION="$("$HAPROXY" -v | awk 'NR == 1 {split($3, v, "."); print v[1] "." v[2]}')"

. bench/release_build.sh
release_build .build balancer factorial-server

WORK="$(mktemp -d)"
export TMPDIR="$WORK"
SERVER_PIDS=()
FRONT_PID=""
CHILD_PID=""
. bench/processes.sh  # stop_pid, wait_port, free_ports
cleanup() {
  [ -n "$CHILD_PID" ] && stop_pid "$CHILD_PID"
  [ -n "$FRONT_PID" ] && stop_pid "$FRONT_PID"
  for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Seven distinct free ports at once: five servers, the balancer, haproxy.
read -r -a PORTS <<<"$(free_ports 7)"
SERVER_PORTS=("${PORTS[@]:0:5}")
LB_PORT="${PORTS[5]}"
HAP_PORT="${PORTS[6]}"
# Runs a long step in the background and waits for it, so that a signal to this script is acted
# on at once (bash runs traps only between foreground commands) and the cleanup can end it.
long() { "$@" & CHILD_PID=$!; local rc=0; wait "$CHILD_PID" || rc=$?; CHILD_PID=""; return "$rc"; }
fail() { echo "$*" >&2; for f in "$WORK"/*.log; do echo "--- $f" >&2; tail -5 "$f" >&2; done; exit 1; }

for port in "${SERVER_PORTS[@]}"; do
  "$BIN/factorial-server" --port "$port" --bind 127.0.0.1 --balancer "127.0.0.1:$LB_PORT" --quiet \
    >>"$WORK/server-$port.log" 2>&1 &
  SERVER_PIDS+=($!)
done
for port in "${SERVER_PORTS[@]}"; do wait_port "$port" || fail "server $port did not start"; done

python3 -c "import json, sys; print(json.dumps({'available_servers': sys.argv[1:]}))" \
  "${SERVER_PORTS[@]}" >"$WORK/servers.json"
cat >"$WORK/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout queue 30s

frontend jobs
    bind 127.0.0.1:$HAP_PORT
    maxconn 4000
    default_backend factorial

backend factorial
    balance roundrobin
    option httpchk GET /health
    default-server maxconn 1 check inter 5s
$(for i in "${!SERVER_PORTS[@]}"; do echo "    server s$((i + 1)) 127.0.0.1:${SERVER_PORTS[$i]}"; done)
CONF
"$HAPROXY" -c -q -f "$WORK/haproxy.cfg" || fail "haproxy refused its configuration"

front_port() { if [ "$1" = balancer ]; then echo "$LB_PORT"; else echo "$HAP_PORT"; fi; }
start_front() {
  if [ "$1" = balancer ]; then
    "$BIN/balancer" --no-spawn --quiet --bind 127.0.0.1 --port "$LB_PORT" ${BALANCER_FLAGS:-} \
      --config "$WORK/servers.json" >>"$WORK/balancer.log" 2>&1 &
    FRONT_PID=$!
    wait_port "$LB_PORT" || fail "the balancer did not start"
    # Ready once all five servers are in its queue.
    for _ in $(seq 100); do
      curl -s --max-time 2 "http://127.0.0.1:$LB_PORT/health" | grep -q '"free":5' && return 0
      sleep 0.05
    done
    fail "the balancer did not see its five servers"
  else
    "$HAPROXY" -db -f "$WORK/haproxy.cfg" >>"$WORK/haproxy.log" 2>&1 &
    FRONT_PID=$!
    wait_port "$HAP_PORT" || fail "haproxy did not start"
  fi
}
stop_front() { stop_pid "$FRONT_PID"; FRONT_PID=""; }

python3 "$HELPER" urls "$SEED" "$JOBS" "$WORK/ns.txt"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
echo "Five factorial servers on ports ${SERVER_PORTS[*]}; balancer on $LB_PORT, HAProxy $HAPROXY_VERSION on $HAP_PORT"
echo "Client: curl -s -L --parallel --parallel-max 32, $JOBS jobs /?n=K, K random in 100...1000 (seed $SEED)"
echo

echo "== $ROUNDS rounds, alternating: each system started, idle ${IDLE} s, $CHECKED answers checked, $JOBS jobs =="
echo "(load average at the start: $(cut -d' ' -f1-3 /proc/loadavg))"
WRONG=0
SERVER_LIST="$(IFS=,; echo "${SERVER_PORTS[*]}")"
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order=(balancer haproxy direct); else order=(direct haproxy balancer); fi
  for system in "${order[@]}"; do
    if [ "$system" = direct ]; then
      python3 "$HELPER" check "${SERVER_PORTS[0]}" "$WORK/ns.txt" "$CHECKED" ||
        fail "the servers alone: wrong answers"
      long python3 "$HELPER" direct "$round" "$WORK/ns.txt" "$SERVER_LIST" "${SERVER_PIDS[@]}" \
        >"$WORK/run.json" || fail "the servers alone: the client run failed"
      cat "$WORK/run.json" >>"$RESULTS"
      python3 "$HELPER" line <"$WORK/run.json" || WRONG=1
      continue
    fi
    start_front "$system"
    sleep 1
    long python3 "$HELPER" idle "$system" "$round" "$IDLE" "$FRONT_PID" "${SERVER_PIDS[@]}" \
      >"$WORK/idle.json" || fail "$system: the idle sample failed"
    cat "$WORK/idle.json" >>"$RESULTS"
    python3 "$HELPER" line <"$WORK/idle.json"
    python3 "$HELPER" check "$(front_port "$system")" "$WORK/ns.txt" "$CHECKED" ||
      fail "$system: wrong answers"
    long python3 "$HELPER" run "$system" "$round" "$(front_port "$system")" "$WORK/ns.txt" \
      "$FRONT_PID" "${SERVER_PIDS[@]}" >"$WORK/run.json" || fail "$system: the client run failed"
    stop_front
    cat "$WORK/run.json" >>"$RESULTS"
    python3 "$HELPER" line <"$WORK/run.json" || WRONG=1
  done
done
echo
python3 "$HELPER" table "$RESULTS" "$HAPROXY_VERSION"
echo
echo "($(nproc) CPUs; load average before the end: $(cut -d' ' -f1-3 /proc/loadavg))"
[ "$WRONG" -eq 0 ] || fail "some answers were wrong: see the rounds above"
