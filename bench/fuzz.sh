#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer + AddressSanitizer) of the code that reads untrusted bytes:
#   request-parser   HTTPRequestParser: no crash; the whole input and the same bytes split into
#                    reads give the same requests and final error (Fuzz/RequestParserFuzz.swift)
#   response-parser  HTTPResponseParser: the same, plus bounds on what a response consumes
#                    (Fuzz/ResponseParserFuzz.swift)
#   servers-file     ServersFile.parse: no crash; an accepted file round-trips through its `json`
#                    (Fuzz/ServersFileFuzz.swift)
#   resp-parser      RESPParser (what Redis sends): no crash; whole input and split reads give
#                    the same values and final error; every value within the limits and
#                    written back by RESPEncoder to the same value (Fuzz/RESPParserFuzz.swift)
#   admin-body       the bodies of POST /add and DELETE /rm, a few in a row on a fresh pool: a
#                    refusal (400) says why and changes nothing; an accepted one does exactly what
#                    it asked; the replicas stay usable (Fuzz/AdminBodyFuzz.swift)
#
# Usage: bench/fuzz.sh TARGET SECONDS     TARGET is one of the above, or `all` for each in turn
#
# For each target:
#  1. Build. SwiftPM cannot link the package's modules with -sanitize=fuzzer, so swiftc compiles
#     Fuzz/<Name>Fuzz.swift and the package modules it imports (found from the `import` lines,
#     recursively; C targets such as CEpoll with clang and a generated module map) with
#     -sanitize=fuzzer,address into .build-fuzz/ (ignored by git). A module is rebuilt only when
#     its sources, a dependency or this script changed.
#  2. Replay every input in Fuzz/regressions/<target>/, one process each; any that still fails
#     fails the run (and step 3 is skipped, unless FUZZ_KEEP_GOING=1).
#  3. Fuzz for SECONDS from a fresh copy of Fuzz/corpus/<target>/ (so the repository's corpus does
#     not grow), with the dictionary Fuzz/dict/<target>.dict. libFuzzer stops at the first crash,
#     timeout (10 s per input) or out-of-memory; that input is copied to
#     Fuzz/regressions/<target>/ and fails the run.
# Prints runs, exec/s and coverage per target. Exit status: 0 clean, 1 a failing input (new or
# a regression), 2 usage or build error.
#
# Environment:
#   FUZZ_KEEP_GOING=1  fuzz even when regression inputs still fail, letting through mismatches of
#                      the same kinds as theirs (the first line of their "Fatal error", given to
#                      the target in FUZZ_KNOWN_FAILURES), to look for new findings past unfixed
#                      ones. The run still exits 1.
#   FUZZ_ARGS="..."    extra libFuzzer flags, e.g. FUZZ_ARGS="-max_len=20000 -seed=1".
#   FUZZ_BUILD_DIR     where to build and run (default .build-fuzz), e.g. to fuzz one work tree
#                      while another's build is left alone.
#   SWIFTC, CLANG      the compilers (default: swiftc on PATH, else /opt/swift/usr/bin/swiftc;
#                      the clang beside it, else clang on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
SCRIPT="$ROOT/bench/fuzz.sh"
OUT="${FUZZ_BUILD_DIR:-$ROOT/.build-fuzz}"

usage() {
  echo "usage: bench/fuzz.sh {request-parser|response-parser|servers-file|resp-parser|admin-body|all} SECONDS" >&2
  exit 2
}
. "$ROOT/bench/arguments.sh"
help_if_asked "$@"
[ $# -eq 2 ] || usage
[[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || usage
SECONDS_PER_TARGET="$2"
case "$1" in
  all) SELECTED=(request-parser response-parser servers-file resp-parser admin-body) ;;
  request-parser | response-parser | servers-file | resp-parser | admin-body) SELECTED=("$1") ;;
  *) usage ;;
esac

# --- Toolchain ----------------------------------------------------------------------------------
SWIFTC="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
[ -x "$SWIFTC" ] || { echo "fuzz: swiftc not found (set SWIFTC)" >&2; exit 2; }
TOOLCHAIN_BIN="$(dirname "$(readlink -f "$SWIFTC")")"
if [ -z "${CLANG:-}" ]; then
  if [ -x "$TOOLCHAIN_BIN/clang" ]; then CLANG="$TOOLCHAIN_BIN/clang"; else CLANG="$(command -v clang || true)"; fi
fi

SWIFT_FLAGS=(-O -g -sanitize=fuzzer,address -swift-version 5 -parse-as-library
  -package-name FactorialBalancer -I "$OUT/modules")
LINK_FLAGS=()
# lld avoids pages of gold warnings about the sanitizer runtime's local symbols.
if [ -x "$TOOLCHAIN_BIN/ld.lld" ] || command -v ld.lld >/dev/null; then LINK_FLAGS=(-use-ld=lld); fi

# Swift's own crash backtracer fights with ASan; libFuzzer reports crashes itself.
export SWIFT_BACKTRACE=enable=no
if [ -x "$TOOLCHAIN_BIN/llvm-symbolizer" ]; then
  export ASAN_SYMBOLIZER_PATH="$TOOLCHAIN_BIN/llvm-symbolizer"
fi

build_failed() {
  echo "fuzz: build failed: $1" >&2
  exit 2
}

# --- Building a target and the package modules it imports ---------------------------------------
# The package modules (directories of Sources/) that the given Swift files import.
imports() {
  local pattern='^[[:space:]]*(@[A-Za-z_]+[[:space:]]+)*import[[:space:]]+'
  pattern+='((typealias|struct|class|enum|protocol|let|var|func)[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*).*'
  sed -nE "s/$pattern/\\4/p" "$@" | sort -u | while read -r name; do
    if [ -d "Sources/$name" ]; then echo "$name"; fi
  done
}

# Whether $1 is missing or older than any of the other paths (files, or files in directories).
stale() {
  local output="$1"
  shift
  [ -e "$output" ] || return 0
  [ -n "$(find "$@" -newer "$output" -print -quit)" ]
}

declare -A BUILT=()   # modules built, or found up to date, by this run of the script
declare -A VISITED=() # modules already in LINK for the current target
LINK=()               # object files of the current target, dependencies first
CMODULE_FLAGS=()      # -I options for the module maps of C targets

build_module() {
  local name="$1" dir="Sources/$1" dep swift_files c_files deps=()
  [ -z "${VISITED[$name]:-}" ] || return 0
  VISITED[$name]=1
  mapfile -t swift_files < <(find "$dir" -name '*.swift' | sort)
  mapfile -t c_files < <(find "$dir" -name '*.c' | sort)
  if [ ${#swift_files[@]} -gt 0 ]; then
    mapfile -t deps < <(imports "${swift_files[@]}" | grep -vx "$name" || true)
  fi
  for dep in "${deps[@]}"; do build_module "$dep"; done

  if [ ${#c_files[@]} -gt 0 ]; then
    # A C target: its public headers in include/, shown to Swift through a module map.
    [ -n "$CLANG" ] || build_failed "clang not found (set CLANG), needed for $name"
    mkdir -p "$OUT/cmodules/$name" "$OUT/obj"
    printf 'module %s {\n  umbrella "%s"\n  export *\n}\n' "$name" "$ROOT/$dir/include" \
      >"$OUT/cmodules/$name/module.modulemap"
    CMODULE_FLAGS+=(-I "$OUT/cmodules/$name")
    local c object
    for c in "${c_files[@]}"; do
      object="$OUT/obj/$name-$(basename "$c" .c).o"
      if [ -z "${BUILT[$name]:-}" ] && stale "$object" "$dir" "$SCRIPT"; then
        echo "fuzz: compiling $c"
        rm -f "$object"
        "$CLANG" -c -O1 -g -fsanitize=address -I "$dir/include" "$c" -o "$object" ||
          build_failed "$c"
      fi
      LINK+=("$object")
    done
  else
    local object="$OUT/obj/$name.o" inputs=("$dir" "$SCRIPT")
    for dep in "${deps[@]}"; do inputs+=("$OUT/obj/$dep"*.o); done
    if [ -z "${BUILT[$name]:-}" ] && stale "$object" "${inputs[@]}"; then
      echo "fuzz: compiling module $name (${#swift_files[@]} files)"
      mkdir -p "$OUT/modules" "$OUT/obj"
      rm -f "$object"
      "$SWIFTC" "${SWIFT_FLAGS[@]}" "${CMODULE_FLAGS[@]}" -module-name "$name" -wmo \
        -suppress-warnings -emit-module -emit-module-path "$OUT/modules/$name.swiftmodule" \
        -c "${swift_files[@]}" -o "$object" || build_failed "module $name"
    fi
    LINK+=("$object")
  fi
  BUILT[$name]=1
}

# Builds .build-fuzz/bin/<target> from its entry file and the modules that file imports.
build_target() {
  local target="$1" entry="$2" name
  VISITED=()
  LINK=()
  CMODULE_FLAGS=()
  for name in $(imports "$entry"); do build_module "$name"; done
  echo "fuzz: linking $target"
  mkdir -p "$OUT/bin"
  rm -f "$OUT/bin/$target"
  "$SWIFTC" "${SWIFT_FLAGS[@]}" "${CMODULE_FLAGS[@]}" "${LINK_FLAGS[@]}" \
    -module-name "$(basename "$entry" .swift)" "$entry" Fuzz/Shared/*.swift "${LINK[@]}" \
    -o "$OUT/bin/$target" ||
    build_failed "$target"
}

# --- Running a target ---------------------------------------------------------------------------
# Shows why an input failed: the failed check with its details, or the sanitizer's summary.
report() {
  {
    grep -A12 'Fatal error' "$1" | grep -v -E '^(==[0-9]+==|    #|\*\*\*|--$)' || true
    grep -E 'ERROR: AddressSanitizer|SUMMARY: AddressSanitizer|ALARM|out-of-memory' "$1" || true
  } | head -20 | sed 's/^/    /' >&2
}

FAILED=()

run_target() {
  local target="$1" entry
  case "$target" in
    request-parser) entry=Fuzz/RequestParserFuzz.swift ;;
    response-parser) entry=Fuzz/ResponseParserFuzz.swift ;;
    servers-file) entry=Fuzz/ServersFileFuzz.swift ;;
    resp-parser) entry=Fuzz/RESPParserFuzz.swift ;;
    admin-body) entry=Fuzz/AdminBodyFuzz.swift ;;
  esac
  local bin="$OUT/bin/$target" work="$OUT/run/$target" regressions="Fuzz/regressions/$target"
  build_target "$target" "$entry"

  # Old findings first: each must pass now.
  local file replayed=0 failing=0 known="" kind
  mkdir -p "$work"
  for file in "$regressions"/*; do
    [ -f "$file" ] || continue
    replayed=$((replayed + 1))
    if ! env -u FUZZ_KNOWN_FAILURES "$bin" -timeout=10 "$file" >"$work/replay.log" 2>&1; then
      failing=$((failing + 1))
      echo "fuzz: $target: regression input still fails: $file" >&2
      report "$work/replay.log"
      kind="$(sed -n 's/.*Fatal error: //p' "$work/replay.log" | head -1)"
      if [ -n "$kind" ]; then known+="$kind"$'\n'; fi
    fi
  done
  echo "fuzz: $target: replayed $replayed regression input(s), $failing still failing"
  if [ "$failing" -gt 0 ]; then
    FAILED+=("$target (regressions)")
    [ "${FUZZ_KEEP_GOING:-0}" = 1 ] || return 0
  fi

  # Fuzzing, from a scratch copy of the seeds.
  rm -rf "$work/corpus" "$work/artifacts"
  mkdir -p "$work/artifacts"
  cp -R "Fuzz/corpus/$target" "$work/corpus"
  local args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1
    -artifact_prefix="$work/artifacts/")
  if [ -f "Fuzz/dict/$target.dict" ]; then args+=(-dict="Fuzz/dict/$target.dict"); fi
  # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags
  args+=(${FUZZ_ARGS:-})
  echo "fuzz: $target: fuzzing for ${SECONDS_PER_TARGET}s (log: $work/fuzz.log)"
  known="$(printf '%s' "$known" | sort -u)"
  if [ -n "$known" ]; then printf '%s\n' "$known" | sed 's/^/fuzz: letting through: /'; fi
  local status=0
  FUZZ_KNOWN_FAILURES="$known" "$bin" "${args[@]}" "$work/corpus" >"$work/fuzz.log" 2>&1 ||
    status=$?

  # libFuzzer's last status line: runs, coverage (cov: edges), features, corpus, exec/s.
  local last runs
  last="$(grep -E '^#[0-9]+.*cov: ' "$work/fuzz.log" | tail -1 || true)"
  runs="$(awk '/^stat::number_of_executed_units/ {print $2}' "$work/fuzz.log")"
  echo "fuzz: $target: ${last:-no status line}${runs:+ (runs: $runs)}"

  local found=0
  for file in "$work/artifacts"/*; do
    [ -f "$file" ] || continue
    found=$((found + 1))
    mkdir -p "$regressions"
    cp "$file" "$regressions/"
    echo "fuzz: $target: failing input saved as $regressions/$(basename "$file")" >&2
  done
  if [ "$found" -gt 0 ] || [ "$status" -ne 0 ]; then
    report "$work/fuzz.log"
    [ "$found" -gt 0 ] || tail -20 "$work/fuzz.log" >&2
    FAILED+=("$target")
  fi
}

for target in "${SELECTED[@]}"; do run_target "$target"; done
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${FAILED[*]}" >&2
  exit 1
fi
echo "fuzz: no crashes"
