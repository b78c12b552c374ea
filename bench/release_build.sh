# Sourced by the bench scripts and init_project.sh (after they cd to the project root): release
# builds that are never stale.
#
# An incremental release build can link a program from objects compiled against an older layout
# of another module: after a change to HTTPCore, `swift build -c release` in a folder that had
# built the previous code said "complete" and gave a factorial-server that aborted at start
# ("malloc_consolidate(): invalid chunk size"), while a build from scratch of the same code ran.
# So a release folder is used only if nothing under Sources/ (nor Package.swift) changed since it
# was last built whole; otherwise it is removed and built again from scratch.

# release_build SCRATCH [PRODUCT...]: builds the products (every product if none is named) with
# `swift build -c release --scratch-path SCRATCH`, from scratch if a source changed since the
# last build there; on failure prints the build's last lines and exits 1. Sets BIN to the folder
# of the binaries.
release_build() {
  local scratch="$1"
  shift
  BIN="$(swift build -c release --scratch-path "$scratch" --show-bin-path)"
  local stamp="$BIN/.built-from-sources"
  if [ -d "$BIN" ] && { [ ! -f "$stamp" ] ||
    [ -n "$(find Package.swift Sources -newer "$stamp" -print -quit)" ]; }; then
    echo "Sources changed since the last release build in $scratch: building from scratch..." >&2
    rm -rf "$BIN" "$scratch/release"
  fi
  local products=("$@") product output started
  [ ${#products[@]} -gt 0 ] || products=("")
  started="$(date +%s.%N)"
  for product in "${products[@]}"; do
    if ! output="$(swift build -c release --scratch-path "$scratch" ${product:+--product "$product"} 2>&1)"; then
      echo "$output" | tail -30 >&2
      echo "swift build -c release ${product:+--product $product }failed" >&2
      exit 1
    fi
  done
  # Stamped with the time the build started, once every product is built: the next run starts
  # from scratch if this one stopped halfway, or if a source changed while it ran.
  touch -d "@$started" "$stamp"
}
