#!/usr/bin/env bash
# Renders every SVG chart (default: docs/charts/*.svg) in headless Chromium, as a person's
# browser would, and checks that each screenshot is not blank. Installs chromium if missing.
# Usage: bench/check_charts.sh [FILE.svg ...]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/arguments.sh
help_if_asked "$@"
if [ $# -eq 0 ]; then set -- docs/charts/*.svg; fi
for svg in "$@"; do
  [ -f "$svg" ] || { echo "check_charts.sh: no such file: $svg (--help for usage)" >&2; exit 2; }
done
if ! command -v chromium >/dev/null 2>&1; then
  echo "Installing chromium..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
PNGS=()
for svg in "$@"; do
  png="$OUT/$(basename "${svg%.svg}").png"
  timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=800,480 --screenshot="$png" "file://$(realpath "$svg")" >/dev/null 2>&1
  [ -s "$png" ] || { echo "$svg: no screenshot" >&2; exit 1; }
  PNGS+=("$png")
  if [ -n "${KEEP_SCREENSHOTS:-}" ]; then cp "$png" "$KEEP_SCREENSHOTS/"; fi
done
python3 bench/png_not_blank.py "${PNGS[@]}"
