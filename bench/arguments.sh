# Sourced by the bench scripts (after they cd to the project root): their command-line arguments,
# checked before any work starts.

# help_if_asked "$@": with -h or --help among the arguments, prints the script's header comment
# (what it does and its usage) and exits.
help_if_asked() {
  local argument
  for argument in "$@"; do
    case "$argument" in
      -h | --help)
        sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "bench/$(basename "$0")"
        exit 0
        ;;
    esac
  done
}

# whole_number NAME VALUE: exits with status 2 and a clear message unless VALUE is a whole number
# from 1 to 999,999,999 (more digits than that would overflow the shell's arithmetic).
whole_number() {
  if ! [[ "$2" =~ ^[0-9]{1,9}$ ]] || [ "$2" -lt 1 ]; then
    echo "$(basename "$0"): $1 must be a whole number from 1 to 999999999, not '$2' (--help for usage)" >&2
    exit 2
  fi
}

# two_runs NAME_A A NAME_B B: exits with status 2 unless A and B are whole numbers of at least 1
# and B is more than A (the sizes of two runs whose difference is measured).
two_runs() {
  whole_number "$1" "$2"
  whole_number "$3" "$4"
  if [ "$4" -le "$2" ]; then
    echo "$(basename "$0"): $3 must be more than $1 ($4 is not more than $2)" >&2
    exit 2
  fi
}

# at_most COUNT "$@": exits with status 2 if more than COUNT arguments were given.
at_most() {
  local count="$1"
  shift
  if [ $# -gt "$count" ]; then
    echo "$(basename "$0"): at most $count arguments, got $# (--help for usage)" >&2
    exit 2
  fi
}
