#!/usr/bin/env bash
# Chaos run for several balancers sharing one queue in Redis (`balancer --shared-queue`).
#
# Starts, on free loopback ports: redis-server (append-only, so that it restarts with its data),
# 3 balancers on one prefix and one servers.json, as the README runs them (--claim-timeout 1
# --heartbeat-interval 1 --lease-timeout 10, JSON logs), 5 factorial servers reporting to all 3
# (--balancer A,B,C) and a sixth one kept for /add and /rm. Under a steady load
# (a Python client that checks every factorial digit for digit and logs every visit with its
# times, plus `loadtest A,B,C --retries 10` in a loop), a chaos loop runs for DURATION seconds,
# picking at random (bash's RANDOM, seeded with SEED: the same steps, not the same timings) one of:
#   kill -9 a balancer, restart it after 0-3 s    | SIGSTOP a balancer for 1-4 s, then SIGCONT
#   kill -9 a factorial server, restart after 0-3 s | kill -9 Redis, restart it after 0-5 s
#   SIGSTOP Redis for 1-3 s                          | POST /add the sixth server at a random
#                                                      balancer, DELETE /rm it 1-3 s later at
#                                                      a random one
# A sampler reads the books atomically (one Lua script) five times a second throughout and logs
# every server leased twice, free twice, free while leased, or counts that do not add up.
# Then the chaos stops, a light load runs for SETTLE s, the load stops, and after 10 s (polling
# up to CONVERGE s more for the books to settle) the invariants are checked:
#   - every server of the pool that is up is on PREFIX:free exactly once, in state `free`; no
#     lease (SCARD PREFIX:leases 0, no PREFIX:lease:* keys), PREFIX:waiting empty;
#   - PREFIX:counts: issued == reported + expired + reclaimed;
#   - every balancer's /rep names the same pool, and /status the same state for each server;
#   - every /add and the /rm after it answered 200;
#   - every visit got its factorial, or a 503 from a balancer while Redis was down (killed or
#     stopped, until loaded, plus GRACE=4 s); none a wrong body; the outcomes are counted;
#   - no balancer, server or Redis died unless killed here; no 'Fatal error', 'Segmentation',
#     'precondition' in the logs.
# Prints the summary, the violations and the keys' contents; exits 1 if any invariant failed.
# Every process it starts is stopped by its pid on exit (also on Ctrl-C). Bounded in time: at
# most about DURATION + SETTLE + 60 (loadtest's last round) + 10 + CONVERGE + 20 s after the build;
# typically DURATION + 45 s. Needs redis-server, redis-cli, python3, curl.
#
# Usage: bench/shared-chaos.sh [--seed N] [--duration S] [--settle S] [--clients N]
#          [--loadtest-concurrency N] [--lease-timeout S] [--keep DIR] [--help]
#   BIN=DIR to use the binaries in DIR; otherwise a release build in .build-chaos (from scratch
#   whenever a source changed since its last build: see bench/release_build.sh).
set -uo pipefail
cd "$(dirname "$0")/.."

. bench/arguments.sh
help_if_asked "$@"
# The usage lines of the header, for a bad argument.
usage() { sed -n '/^# Usage:/,/^[^#]/{/^#/s/^# \{0,1\}//p}' "bench/$(basename "$0")"; }
SEED=1 DURATION=90 SETTLE=15 CLIENTS=6 LT_CONCURRENCY=4 LEASE_TIMEOUT=10 KEEP="" GRACE=4
CONVERGE=30
while [ $# -gt 0 ]; do
  case "$1" in
    --seed | --duration | --settle | --clients | --loadtest-concurrency | --lease-timeout | --keep)
      [ $# -ge 2 ] || { echo "shared-chaos.sh: $1 needs a value" >&2; usage >&2; exit 2; } ;;&
    --seed) SEED="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --settle) SETTLE="$2"; shift 2 ;;
    --clients) CLIENTS="$2"; shift 2 ;;
    --loadtest-concurrency) LT_CONCURRENCY="$2"; shift 2 ;;
    --lease-timeout) LEASE_TIMEOUT="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    *) echo "shared-chaos.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
for v in "$SEED" "$DURATION" "$SETTLE" "$CLIENTS" "$LT_CONCURRENCY" "$LEASE_TIMEOUT"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "not a whole number: $v" >&2; usage >&2; exit 2; }
done
for tool in redis-server redis-cli python3 curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install redis-server curl python3)" >&2; exit 2; }
done

if [ -z "${BIN:-}" ]; then
  . bench/release_build.sh
  release_build .build-chaos
fi
for b in balancer factorial-server loadtest; do
  [ -x "$BIN/$b" ] || { echo "no $BIN/$b" >&2; exit 2; }
done

if [ -n "$KEEP" ]; then WORK="$KEEP"; mkdir -p "$WORK"; else WORK="$(mktemp -d /tmp/shared-chaos.XXXXXX)"; fi
mkdir -p "$WORK/redis"

# --- processes: every pid started here is in one of these, and stopped by it on exit ---
declare -A BAL_PID SRV_PID
REDIS_PID="" CLIENT_PID="" SAMPLER_PID="" LT_LOOP_PID="" STARTED_PID=""
CRASHES="$WORK/crashes.txt"
: >"$CRASHES"
. bench/processes.sh  # alive, stop_pid, wait_port, free_ports
cleanup() {
  trap - EXIT INT TERM
  touch "$WORK/stop-loadtest"
  [ -n "$LT_LOOP_PID" ] && { [ -s "$WORK/loadtest.pid" ] && stop_pid "$(cat "$WORK/loadtest.pid")"; stop_pid "$LT_LOOP_PID"; }
  stop_pid "$CLIENT_PID"
  stop_pid "$SAMPLER_PID"
  for i in "${!BAL_PID[@]}"; do stop_pid "${BAL_PID[$i]}"; done
  for p in "${!SRV_PID[@]}"; do stop_pid "${SRV_PID[$p]}"; done
  stop_pid "$STARTED_PID"  # one being started when the run was stopped
  stop_pid "$REDIS_PID"
  [ -z "$KEEP" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
log() { printf '%s %s\n' "$(date -u +%H:%M:%S.%3N)" "$*" | tee -a "$WORK/chaos.log"; }
event() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$WORK/events.tsv"; }  # start end what
: >"$WORK/events.tsv"
# Sleeps a random time from $1 to $2 seconds, in tenths, and sets SLEPT to it (RANDOM is read in
# this shell, never in a $(...) copy, so that SEED fixes the sequence of steps).
rsleep() { local t=$(( $1 * 10 + RANDOM % (($2 - $1) * 10 + 1) )); SLEPT="$((t / 10)).$((t % 10))"; sleep "$SLEPT"; }

# Ten free ports: Redis, 3 balancers, 6 servers (never the project's usual ones).
read -r -a PORTS <<<"$(free_ports 10)"
RPORT="${PORTS[0]}"
BPORTS=("${PORTS[@]:1:3}")
SPORTS=("${PORTS[@]:4:5}")
EXTRA="${PORTS[9]}"
PREFIX=chaos
BAL_LIST="127.0.0.1:${BPORTS[0]},127.0.0.1:${BPORTS[1]},127.0.0.1:${BPORTS[2]}"
URLS="http://127.0.0.1:${BPORTS[0]}/,http://127.0.0.1:${BPORTS[1]}/,http://127.0.0.1:${BPORTS[2]}/"
CONFIG="$WORK/servers.json"
python3 -c 'import json,sys; print(json.dumps({"available_servers": sys.argv[1:]}))' "${SPORTS[@]}" >"$CONFIG"

start_redis() {
  redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes \
    --appendfsync always --save "" --logfile "$WORK/redis.log" &
  REDIS_PID=$!
  wait_port "$RPORT" || log "redis-server did not come up on $RPORT"
  # Up once it has loaded its data (it answers LOADING meanwhile).
  for _ in $(seq 200); do [ "$(redis-cli -p "$RPORT" PING 2>/dev/null)" = PONG ] && break; sleep 0.05; done
}
# Starts COMMAND... in the background, its output appended to LOG, until it listens on PORT;
# retried (20 times) while the port is still taken. Sets STARTED_PID.
start_retried() {  # label port log command...
  local label="$1" port="$2" logfile="$3"
  shift 3
  for _ in $(seq 20); do
    "$@" >>"$logfile" 2>&1 &
    STARTED_PID=$!
    wait_port "$port" && alive "$STARTED_PID" && return 0
    wait "$STARTED_PID" 2>/dev/null
    log "$label did not start (exit $?): $(tail -1 "$logfile"); again"
    sleep 0.3
  done
  return 1
}
start_balancer() {  # index
  local i="$1" port="${BPORTS[$1]}"
  start_retried "balancer $i ($port)" "$port" "$WORK/balancer-$i.log" \
    "$BIN/balancer" --port "$port" --bind 127.0.0.1 --config "$CONFIG" --no-spawn \
    --shared-queue "redis://127.0.0.1:$RPORT/$PREFIX" --claim-timeout 1 --heartbeat-interval 1 \
    --lease-timeout "$LEASE_TIMEOUT" --quiet --log-format json || return 1
  BAL_PID[$i]=$STARTED_PID
}
start_server() {  # port
  local port="$1"
  start_retried "server $port" "$port" "$WORK/server-$port.log" \
    "$BIN/factorial-server" --port "$port" --bind 127.0.0.1 --balancer "$BAL_LIST" --quiet \
    --log-format json || return 1
  SRV_PID[$port]=$STARTED_PID
}
# Kills with -9 what we meant to kill; a process found dead before that died by itself.
kill9() {  # name pid
  if ! alive "$2"; then wait "$2" 2>/dev/null; echo "$1 pid $2 had exited by itself, status $?" | tee -a "$CRASHES"; return; fi
  kill -9 "$2"; wait "$2" 2>/dev/null
}
# Finds processes that died by themselves (and restarts them, so the run goes on).
check_crashes() {
  local i p rc
  for i in "${!BAL_PID[@]}"; do
    alive "${BAL_PID[$i]}" && continue
    wait "${BAL_PID[$i]}" 2>/dev/null; rc=$?
    echo "$(date -u +%T) balancer $i pid ${BAL_PID[$i]} exited by itself, status $rc" | tee -a "$CRASHES"
    start_balancer "$i"
  done
  for p in "${!SRV_PID[@]}"; do
    alive "${SRV_PID[$p]}" && continue
    wait "${SRV_PID[$p]}" 2>/dev/null; rc=$?
    echo "$(date -u +%T) server $p pid ${SRV_PID[$p]} exited by itself, status $rc" | tee -a "$CRASHES"
    start_server "$p"
  done
  if ! alive "$REDIS_PID"; then
    wait "$REDIS_PID" 2>/dev/null; rc=$?
    echo "$(date -u +%T) redis pid $REDIS_PID exited by itself, status $rc" | tee -a "$CRASHES"
    start_redis
  fi
}

# --- the Python parts: the client, the sampler, the final check ---
cat >"$WORK/client.py" <<'PY'
# Visits: GET balancer /?n=N, follow redirects, check the factorial digit for digit. One JSON line
# per visit (wall-clock start and end, outcome, details). Stops on SIGTERM after the visits in hand.
import http.client, json, math, random, signal, sys, threading, time, urllib.parse
balancers = [tuple(b.rsplit(":", 1)) for b in sys.argv[1].split(",")]
threads, out_path, seed, retries = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
lock = threading.Lock()
out = open(out_path, "a", buffering=1)
counter = [0]
def get(host, port, path):
    c = http.client.HTTPConnection(host, int(port), timeout=40)
    try:
        c.request("GET", path, headers={"Connection": "close"})
        r = c.getresponse()
        return r.status, r.getheader("Location"), r.read().decode("latin-1")
    finally:
        c.close()
def visit(index, rng):
    n = rng.randint(0, 400)
    start = time.time()
    b = index % len(balancers)
    rec = {"i": index, "n": n, "t0": start, "first": "%s:%s" % balancers[b], "retries": 0,
           "hops": []}
    host, port = balancers[b]
    path, at_balancer, outcome = "/?n=%d" % n, True, None
    while outcome is None:
        if len(rec["hops"]) > 40:
            outcome = "too_many_hops"; break
        try:
            status, location, body = get(host, port, path)
        except Exception as e:
            rec["hops"].append("%s:%s %s" % (host, port, type(e).__name__))
            if rec["retries"] >= retries:
                outcome = "balancer_unreachable" if at_balancer else "server_unreachable"; break
            rec["retries"] += 1
            if at_balancer:
                b = (b + 1) % len(balancers)
            host, port = balancers[b]
            path, at_balancer = "/?n=%d" % n, True
            continue
        rec["hops"].append("%s:%s %d" % (host, port, status) + (" -> " + location if location and not at_balancer else ""))
        if status in (301, 302, 303, 307) and location:
            u = urllib.parse.urlsplit(location)
            host, port = u.hostname, str(u.port or 80)
            path = u.path + ("?" + u.query if u.query else "")
            at_balancer = (host, port) in balancers or port in [p for _, p in balancers]
            if not at_balancer:
                rec["server"] = port
            continue
        rec["status"] = status
        if at_balancer:
            if status == 503:
                outcome = "balancer_503"; rec["body"] = body[:200]
            else:
                outcome = "balancer_http_%d" % status; rec["body"] = body[:200]
        elif status == 200:
            want = "Factorial of %d = %d" % (n, math.factorial(n))
            if body.strip() == want:
                outcome = "ok"
            else:
                outcome = "wrong_body"; rec["body"] = body[:300]
        else:
            outcome = "server_http_%d" % status; rec["body"] = body[:200]
    rec["outcome"], rec["t1"] = outcome, time.time()
    with lock:
        out.write(json.dumps(rec) + "\n")
def worker(k):
    rng = random.Random(seed * 1000 + k)
    while not stop.is_set():
        with lock:
            counter[0] += 1
            index = counter[0]
        visit(index, rng)
ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
for t in ts: t.start()
while any(t.is_alive() for t in ts):
    for t in ts: t.join(0.2)
PY

cat >"$WORK/resp.py" <<'PY'
import socket
class Redis:
    def __init__(self, port, timeout=1.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.s.makefile("rb")
    def call(self, *args):
        args = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        return self.read()
    def read(self):
        line = self.f.readline()
        if not line: raise ConnectionError("closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+": return rest.decode()
        if kind == b"-": return RuntimeError(rest.decode())
        if kind == b":": return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0: return None
            data = self.f.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError(line)
# Reads the books in one step: a list of anomalies, each "KIND detail".
AUDIT = r"""
local P = KEYS[1]
local out = {}
local function add(s) table.insert(out, s) end
local byserver = {}
local tokens = redis.call('SMEMBERS', P .. ':leases')
for _, tok in ipairs(tokens) do
  local s = redis.call('HGET', P .. ':lease:' .. tok, 'server')
  if not s then add('LEASE-SET-WITHOUT-HASH ' .. tok)
  else
    if byserver[s] then add('DOUBLE-LEASE ' .. s .. ' ' .. byserver[s] .. ' ' .. tok) end
    byserver[s] = tok
    local st = redis.call('HGET', P .. ':state', s)
    if st ~= 'leased:' .. tok then add('LEASE-STATE-MISMATCH ' .. s .. ' lease ' .. tok .. ' state ' .. tostring(st)) end
  end
end
local seen = {}
for _, s in ipairs(redis.call('LRANGE', P .. ':free', 0, -1)) do
  if seen[s] then add('FREE-TWICE ' .. s) end
  seen[s] = true
  if byserver[s] then add('FREE-WHILE-LEASED ' .. s) end
  local st = redis.call('HGET', P .. ':state', s)
  if st ~= 'free' then add('STALE-FREE-ENTRY ' .. s .. ' state ' .. tostring(st)) end
end
local st = redis.call('HGETALL', P .. ':state')
for i = 1, #st, 2 do
  local s, v = st[i], st[i + 1]
  if v == 'free' and not seen[s] then add('STATE-FREE-NOT-LISTED ' .. s) end
  if string.sub(v, 1, 7) == 'leased:' and not byserver[s] then add('STATE-LEASED-NO-LEASE ' .. s .. ' ' .. v) end
end
local c = redis.call('HMGET', P .. ':counts', 'issued', 'reported', 'expired', 'reclaimed')
local n = {}
for i = 1, 4 do n[i] = tonumber(c[i] or '0') or 0 end
if n[1] ~= n[2] + n[3] + n[4] + #tokens then
  add('COUNTS issued ' .. n[1] .. ' ~= reported ' .. n[2] .. ' + expired ' .. n[3] .. ' + reclaimed ' .. n[4] .. ' + in flight ' .. #tokens)
end
return out
"""
PY

cat >"$WORK/sampler.py" <<'PY'
# Five times a second, the books read in one step (resp.AUDIT); anomalies to a JSON-lines file.
import json, signal, sys, time
sys.path.insert(0, sys.argv[3])
from resp import Redis, AUDIT
port, prefix, out = int(sys.argv[1]), sys.argv[2], open(sys.argv[4], "a", buffering=1)
running = [True]
signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
r = None
read, failed = 0, 0
while running[0]:
    try:
        if r is None: r = Redis(port, 0.5)
        found = r.call("EVAL", AUDIT, 1, prefix)
        if isinstance(found, list): read += 1
        else: failed += 1
        if isinstance(found, list) and found:
            dump = {"free": r.call("LRANGE", prefix + ":free", 0, -1),
                    "state": r.call("HGETALL", prefix + ":state"),
                    "leases": r.call("SMEMBERS", prefix + ":leases")}
            out.write(json.dumps({"t": time.time(), "anomalies": found, "dump": dump}) + "\n")
    except Exception:
        r, failed = None, failed + 1
    time.sleep(0.2)
out.write(json.dumps({"t": time.time(), "read": read, "failed": failed}) + "\n")
PY

cat >"$WORK/check.py" <<'PY'
# The final check: the books, the balancers' views, the visits, the crashes. Argument: a JSON
# document with the run's parameters. Prints the report; exit 1 on any violation.
import csv, glob, json, os, sys, time, urllib.request
cfg = json.load(open(sys.argv[1]))
final = sys.argv[2] == "final"
sys.path.insert(0, cfg["work"])
from resp import Redis, AUDIT
P, work = cfg["prefix"], cfg["work"]
violations, notes = [], []
def v(msg): violations.append(msg)
def http_json(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=3) as r:
        return json.loads(r.read())
# --- the books ---
r = Redis(cfg["redis_port"], 3)
free = r.call("LRANGE", P + ":free", 0, -1)
state = r.call("HGETALL", P + ":state"); state = dict(zip(state[::2], state[1::2]))
counts = r.call("HGETALL", P + ":counts"); counts = {k: int(x) for k, x in zip(counts[::2], counts[1::2])}
leases = r.call("SMEMBERS", P + ":leases")
lease_keys = r.call("KEYS", P + ":lease:*")
waiting = r.call("LRANGE", P + ":waiting", 0, -1)
withdrawn = r.call("SMEMBERS", P + ":withdrawn")
grants = {k: r.call("LRANGE", k, 0, -1) for k in r.call("KEYS", P + ":grants:*")}
alive = r.call("KEYS", P + ":alive:*")
coordinator = r.call("GET", P + ":coordinator")
config = r.call("GET", P + ":config")
audit = r.call("EVAL", AUDIT, 1, P)
books = {"free": free, "state": state, "counts": counts, "leases": leases, "lease_keys": lease_keys,
         "waiting": waiting, "withdrawn": withdrawn, "grants": grants, "alive": alive,
         "coordinator": coordinator, "config": config, "audit": audit}
up = [str(p) for p in cfg["server_ports"]]
def key_of(port):  # how the books name a server
    for k in list(state) + free:
        if k.rsplit(":", 1)[-1] == str(port): return k
    return None
for a in audit: v("books: " + a)
for p in up:
    k = key_of(p)
    if k is None: v("books: server %s is not in %s:state" % (p, P)); continue
    if free.count(k) != 1: v("books: server %s on %s:free %d times (state %s)" % (k, P, free.count(k), state.get(k)))
    if state.get(k) != "free": v("books: server %s state %r, not free" % (k, state.get(k)))
extra = [k for k in free if k.rsplit(":", 1)[-1] not in up]
if extra: v("books: on the free list but not an up server of the pool: %s" % extra)
if len(free) != len(set(free)): v("books: a server twice on the free list: %s" % free)
if leases: v("books: SCARD %s:leases = %d" % (P, len(leases)))
if lease_keys: v("books: lease hashes left: %s" % lease_keys)
if waiting: v("books: %s:waiting not empty: %s" % (P, waiting))
total = counts.get("reported", 0) + counts.get("expired", 0) + counts.get("reclaimed", 0)
if counts.get("issued", 0) != total:
    v("books: issued %d != reported %d + expired %d + reclaimed %d (= %d)" % (
        counts.get("issued", 0), counts.get("reported", 0), counts.get("expired", 0),
        counts.get("reclaimed", 0), total))
# --- the balancers ---
views = {}
for port in cfg["balancer_ports"]:
    try:
        views[port] = {"rep": http_json(port, "/rep"), "status": http_json(port, "/status"),
                       "health": http_json(port, "/health")}
    except Exception as e:
        v("balancer %d: /rep or /status failed: %s" % (port, e))
pools = {port: sorted(map(str, x["rep"].get("message", {}).get("replicas", []))) for port, x in views.items()}
if len(set(map(tuple, pools.values()))) > 1: v("balancers disagree on the pool (/rep): %s" % pools)
for port, pool in pools.items():
    names = sorted(s.rsplit(":", 1)[-1] for s in pool)
    if names != sorted(up): v("balancer %d: pool %s, expected the servers %s" % (port, pool, sorted(up)))
def server_states(st):
    out = {}
    for s in st.get("servers", []):
        name = str(s.get("server") or s.get("name") or s.get("port"))
        out[name] = s.get("state")
    return out
sts = {port: server_states(x["status"]) for port, x in views.items()}
if len(set(json.dumps(x, sort_keys=True) for x in sts.values())) > 1:
    v("balancers disagree on the servers' states (/status): %s" % sts)
for port, x in sts.items():
    bad = {k: s for k, s in x.items() if s != "free"}
    if bad: v("balancer %d: servers not free in /status: %s" % (port, bad))
for port, x in views.items():
    h = x["health"]
    if h.get("free") != len(up) or h.get("waiting") != 0: v("balancer %d: /health %s" % (port, h))
if not final:
    print(json.dumps({"violations": violations}))
    sys.exit(1 if violations else 0)
# --- the visits ---
outages = []
for line in open(os.path.join(work, "events.tsv")):
    t0, t1, what = line.rstrip("\n").split("\t")
    if what.startswith("redis"): outages.append((float(t0), float(t1) + cfg["grace"], what))
# A 503 is excused when it was answered while Redis was down (killed or stopped, until it has
# loaded its data, plus GRACE s); 0.3 s of slack before, for loadtest's times (counted from its
# start, a little after the time taken here).
def during_outage(a, b): return any(o0 - 0.3 <= b <= o1 for o0, o1, _ in outages)
summary = {}
bad_visits = []
def tally(source, outcome, t0, t1, detail):
    key = outcome
    if source == "loadtest" and outcome == "http_error" and detail.get("status") == "302":
        key = "http_error 302 (a server sent the visit back; loadtest does not follow)"
    if outcome in ("balancer_503", "unavailable"):
        key = outcome + (" (Redis down)" if during_outage(t0, t1) else " (Redis up!)")
        if t1 - t0 > cfg["wait_timeout"] - 1: key += " after waiting out the wait timeout"
    summary.setdefault(source, {}).setdefault(key, 0)
    summary[source][key] += 1
    if key != "ok" and "(Redis down)" not in key: bad_visits.append((source, key, t0, t1, detail))
for path in sorted(glob.glob(os.path.join(work, "visits-*.jsonl"))):
    src = "client:" + os.path.basename(path)[7:-6]
    for line in open(path):
        rec = json.loads(line)
        detail = {k: rec.get(k) for k in ("n", "server", "status", "body", "hops", "retries")}
        detail["body"] = (detail["body"] or "")[:60]
        tally(src, rec["outcome"], rec["t0"], rec["t1"], detail)
for path in sorted(glob.glob(os.path.join(work, "loadtest-*.csv"))):
    base = float(open(path[:-4] + ".start").read())
    for row in csv.DictReader(open(path)):
        tally("loadtest", row["outcome"], base + float(row["start_s"]), base + float(row["end_s"]), {"status": row["status"], "detail": row["detail"], "server": row["server"]})
events = [l.rstrip("\n").split("\t") for l in open(os.path.join(work, "events.tsv"))]
def hms(t): return time.strftime("%H:%M:%S", time.gmtime(t)) + ("%.1f" % (t % 1))[1:]
for src, key, t0, t1, detail in bad_visits:
    around = ["%s %s..%s" % (e[2], hms(float(e[0])), hms(float(e[1]))) for e in events
              if float(e[0]) <= t1 and float(e[1]) >= t0 - 5]
    v("visit (%s) %s at %s..%s: %s; chaos then: %s" % (src, key, hms(t0), hms(t1), json.dumps(detail)[:500], "; ".join(around) or "none"))
# --- /add and /rm: each answered 200 (a /rm refused after its /add succeeded: the add was lost) ---
if os.path.exists(os.path.join(work, "add-rm.tsv")):
    for line in open(os.path.join(work, "add-rm.tsv")):
        t0, add, rm, rm_body = line.rstrip("\n").split("\t")
        if add != "200" or rm != "200":
            v("/add then /rm at %s: /add %s, /rm %s %s" % (hms(float(t0)), add, rm, rm_body[:120]))
# --- crashes and the logs ---
crashes = open(os.path.join(work, "crashes.txt")).read().strip()
if crashes: v("processes died by themselves:\n  " + crashes.replace("\n", "\n  "))
for path in sorted(glob.glob(os.path.join(work, "*.log"))):
    for line in open(path, errors="replace"):
        if any(w in line for w in ("Fatal error", "Segmentation", "precondition", "Illegal instruction")):
            v("%s: %s" % (os.path.basename(path), line.strip()[:300]))
# --- the sampler ---
kinds = {}
sampled = None
for line in open(os.path.join(work, "samples.jsonl")):
    rec = json.loads(line)
    if "read" in rec: sampled = rec; continue
    for a in rec["anomalies"]:
        kind = a.split()[0]
        k = kinds.setdefault(kind, {"count": 0, "first": rec["t"], "example": a, "dump": rec["dump"]})
        k["count"] += 1
serious = {"DOUBLE-LEASE", "FREE-TWICE", "FREE-WHILE-LEASED", "COUNTS", "LEASE-SET-WITHOUT-HASH",
           "LEASE-STATE-MISMATCH", "STATE-LEASED-NO-LEASE"}
for kind, k in sorted(kinds.items()):
    line = "sampler: %s seen in %d samples, first at %s: %s" % (kind, k["count"], time.strftime("%H:%M:%S", time.gmtime(k["first"])), k["example"])
    if kind in serious: v(line + "\n    books then: " + json.dumps(k["dump"])[:1500])
    else: notes.append(line)
report = {"seed": cfg["seed"], "duration": cfg["duration"], "visits": summary, "books": books,
          "events": {}, "violations": violations, "notes": notes}
for line in open(os.path.join(work, "events.tsv")):
    what = line.rstrip("\n").split("\t")[2].split()[0]
    report["events"][what] = report["events"].get(what, 0) + 1
json.dump(report, open(os.path.join(work, "report.json"), "w"), indent=1)
print("events:", json.dumps(report["events"], sort_keys=True))
if sampled: print("sampler: the books read in one step %d times (%d attempts failed: Redis down or loading)" % (sampled["read"], sampled["failed"]))
else: v("sampler: no summary (did it run?)")
for src, s in sorted(summary.items()):
    print("visits %s: %d: %s" % (src, sum(s.values()), json.dumps(s, sort_keys=True)))
print("books: free %s, counts %s, leases %d, waiting %d, withdrawn %s, alive %d, coordinator %s" % (
    free, counts, len(leases), len(waiting), withdrawn, len(alive), coordinator))
print("state:", json.dumps(state, sort_keys=True))
for n in notes: print("note:", n)
if violations:
    print("VIOLATIONS (%d):" % len(violations))
    for x in violations: print(" -", x)
    sys.exit(1)
print("all invariants held")
PY

# --- start ---
log "work folder $WORK; seed $SEED, chaos ${DURATION}s; Redis $RPORT, balancers ${BPORTS[*]}, servers ${SPORTS[*]} (+$EXTRA for /add)"
RANDOM=$SEED
start_redis
for port in "${SPORTS[@]}" "$EXTRA"; do start_server "$port" || { log "server $port failed"; exit 1; }; done
for i in 0 1 2; do start_balancer "$i" || { log "balancer $i failed"; exit 1; }; done
for _ in $(seq 100); do
  ok=1
  for port in "${BPORTS[@]}"; do
    [ "$(curl -s "http://127.0.0.1:$port/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["free"])' 2>/dev/null)" = 5 ] || ok=0
  done
  [ $ok = 1 ] && break
  sleep 0.1
done
[ $ok = 1 ] || { log "the balancers did not all see 5 free servers"; exit 1; }
python3 "$WORK/sampler.py" "$RPORT" "$PREFIX" "$WORK" "$WORK/samples.jsonl" &
SAMPLER_PID=$!
: >"$WORK/samples.jsonl"
BAL_HOSTS="127.0.0.1:${BPORTS[0]},127.0.0.1:${BPORTS[1]},127.0.0.1:${BPORTS[2]}"
python3 "$WORK/client.py" "$BAL_HOSTS" "$CLIENTS" "$WORK/visits-chaos.jsonl" "$SEED" 10 &
CLIENT_PID=$!
if [ "$LT_CONCURRENCY" -gt 0 ]; then
  rm -f "$WORK/stop-loadtest"
  (
    k=0
    while [ ! -e "$WORK/stop-loadtest" ]; do
      k=$((k + 1))
      now >"$WORK/loadtest-$k.start"
      "$BIN/loadtest" "$URLS" --requests 400 --concurrency "$LT_CONCURRENCY" --retries 10 --timeout 40 \
        --quiet --seed "$((SEED * 1000 + k))" --csv "$WORK/loadtest-$k.csv" >>"$WORK/loadtest.log" 2>&1 &
      echo $! >"$WORK/loadtest.pid"
      wait $!
    done
  ) &
  LT_LOOP_PID=$!
fi

# --- chaos ---
END=$(( $(date +%s) + DURATION ))
step=0
while [ "$(date +%s)" -lt "$END" ]; do
  step=$((step + 1))
  action=$((RANDOM % 6))
  t0="$(now)"
  case $action in
    0)
      i=$((RANDOM % 3))
      kill9 "balancer $i" "${BAL_PID[$i]}"
      rsleep 0 3; s="$SLEPT"
      start_balancer "$i"
      event "$t0" "$(now)" "balancer-kill $i"
      log "step $step: kill -9 balancer $i (${BPORTS[$i]}), restarted after ${s}s" ;;
    1)
      p="${SPORTS[$((RANDOM % 5))]}"
      kill9 "server $p" "${SRV_PID[$p]}"
      rsleep 0 3; s="$SLEPT"
      start_server "$p"
      event "$t0" "$(now)" "server-kill $p"
      log "step $step: kill -9 server $p, restarted after ${s}s" ;;
    2)
      i=$((RANDOM % 3))
      kill -STOP "${BAL_PID[$i]}"
      rsleep 1 4; s="$SLEPT"
      kill -CONT "${BAL_PID[$i]}"
      event "$t0" "$(now)" "balancer-stop $i"
      log "step $step: SIGSTOP balancer $i (${BPORTS[$i]}) for ${s}s" ;;
    3)
      kill9 redis "$REDIS_PID"
      rsleep 0 5; s="$SLEPT"
      start_redis
      event "$t0" "$(now)" "redis-kill"
      log "step $step: kill -9 Redis, restarted after ${s}s" ;;
    4)
      kill -STOP "$REDIS_PID"
      rsleep 1 3; s="$SLEPT"
      kill -CONT "$REDIS_PID"
      event "$t0" "$(now)" "redis-stop"
      log "step $step: SIGSTOP Redis for ${s}s" ;;
    5)
      i=$((RANDOM % 3)); j=$((RANDOM % 3))
      body="{\"n\":1,\"hostnames\":[\"127.0.0.1:$EXTRA\"]}"
      add="$(curl -s -m 5 -o "$WORK/add.out" -w '%{http_code}' -X POST -d "$body" "http://127.0.0.1:${BPORTS[$i]}/add")"
      rsleep 1 3; s="$SLEPT"
      rm="$(curl -s -m 5 -o "$WORK/rm.out" -w '%{http_code}' -X DELETE -d "$body" "http://127.0.0.1:${BPORTS[$j]}/rm")"
      event "$t0" "$(now)" "add-rm $i $j"
      printf '%s\t%s\t%s\t%s\n' "$t0" "$add" "$rm" "$(head -c 200 "$WORK/rm.out" | tr '\t\n' '  ')" >>"$WORK/add-rm.tsv"
      log "step $step: /add $EXTRA at balancer $i: $add $(head -c 160 "$WORK/add.out"); after ${s}s /rm at balancer $j: $rm $(head -c 160 "$WORK/rm.out")" ;;
  esac
  check_crashes
  rsleep 0 1
done

# --- settle ---
log "chaos over after $step steps; light load for ${SETTLE}s"
touch "$WORK/stop-loadtest"
stop_pid "$CLIENT_PID"; CLIENT_PID=""
python3 "$WORK/client.py" "$BAL_HOSTS" 1 "$WORK/visits-settle.jsonl" "$((SEED + 7))" 10 &
CLIENT_PID=$!
sleep "$SETTLE"
stop_pid "$CLIENT_PID"; CLIENT_PID=""
if [ -n "$LT_LOOP_PID" ]; then  # its last round ends by itself, or is stopped after 60 s
  for _ in $(seq 600); do alive "$LT_LOOP_PID" || break; sleep 0.1; done
  if alive "$LT_LOOP_PID"; then
    log "loadtest's last round still running after 60 s: stopped, not counted"
    stop_pid "$(cat "$WORK/loadtest.pid")"
  fi
  stop_pid "$LT_LOOP_PID"; LT_LOOP_PID=""
fi
check_crashes
log "load stopped; waiting 10 s, then up to ${CONVERGE}s for the books to settle"
sleep 10
python3 - "$WORK/check.json" <<PY
import json
json.dump({"work": "$WORK", "prefix": "$PREFIX", "redis_port": $RPORT, "balancer_ports": [${BPORTS[0]}, ${BPORTS[1]}, ${BPORTS[2]}],
  "server_ports": [$(IFS=,; echo "${SPORTS[*]}")], "extra": $EXTRA, "grace": $GRACE, "wait_timeout": 30, "seed": $SEED, "duration": $DURATION},
  open("$WORK/check.json", "w"))
PY
settled=0
for t in $(seq 0 "$CONVERGE"); do
  if python3 "$WORK/check.py" "$WORK/check.json" books >"$WORK/converge.out" 2>&1; then settled=1; break; fi
  sleep 1
done
[ $settled = 1 ] && log "books settled $t s after the wait" || log "books NOT settled after ${CONVERGE}s more: $(head -c 600 "$WORK/converge.out")"
check_crashes
stop_pid "$SAMPLER_PID"; SAMPLER_PID=""
{
  echo "--- redis-cli dump"
  for key in free waiting; do echo "$PREFIX:$key: $(redis-cli -p "$RPORT" LRANGE "$PREFIX:$key" 0 -1 | tr '\n' ' ')"; done
  for key in state counts served; do echo "$PREFIX:$key: $(redis-cli -p "$RPORT" HGETALL "$PREFIX:$key" | tr '\n' ' ')"; done
  echo "$PREFIX:leases: $(redis-cli -p "$RPORT" SMEMBERS "$PREFIX:leases" | tr '\n' ' ')"
  echo "$PREFIX:withdrawn: $(redis-cli -p "$RPORT" SMEMBERS "$PREFIX:withdrawn" | tr '\n' ' ')"
  echo "keys: $(redis-cli -p "$RPORT" KEYS "$PREFIX:*" | sort | tr '\n' ' ')"
  for port in "${BPORTS[@]}"; do echo "balancer $port /rep: $(curl -s -m 3 "http://127.0.0.1:$port/rep" | head -c 400)"; done
} | tee "$WORK/dump.txt"
python3 "$WORK/check.py" "$WORK/check.json" final | tee "$WORK/result.txt"
status=${PIPESTATUS[0]}
log "result: $([ "$status" = 0 ] && echo PASS || echo FAIL) (work folder $WORK$([ -z "$KEEP" ] && echo ', removed'))"
exit "$status"
