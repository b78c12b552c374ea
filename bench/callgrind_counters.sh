# Sourced by bench/callgrind-cycle.sh and bench/callgrind-server.sh: counting the instructions of a
# process running under `valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p"`
# over one stretch of work.

# The total instruction count in a callgrind dump.
callgrind_total() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }

# callgrind_count PID NAME COMMAND...: zeroes PID's counters, runs COMMAND, dumps the counters
# as NAME and prints the dump's file once callgrind has written it (the process's own thread
# writes it when it next runs). Exits the script if no dump appears within 10 s.
callgrind_count() {
  local pid="$1" name="$2"
  shift 2
  callgrind_control -z "$pid" >/dev/null 2>&1
  "$@"
  callgrind_control --dump="$name" "$pid" >/dev/null 2>&1
  for _ in $(seq 100); do
    local file
    file="$(grep -l "^desc: Trigger: .*$name\$" "$OUT"/callgrind.out.* 2>/dev/null || true)"
    if [ -n "$file" ] && [ -n "$(callgrind_total "$file")" ]; then
      echo "$file"
      return
    fi
    sleep 0.1
  done
  echo "no callgrind dump for $name" >&2
  exit 1
}

# callgrind_wait_port PID PORT LOG: waits (up to 60 s: valgrind starts slowly) until PORT on
# 127.0.0.1 takes connections; exits the script with LOG's text if PID dies first.
callgrind_wait_port() {
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    kill -0 "$1" 2>/dev/null || { cat "$3" >&2; exit 1; }
    sleep 0.1
  done
  echo "nothing listens on port $2 after 60 s" >&2
  exit 1
}
