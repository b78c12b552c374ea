#!/usr/bin/env bash
# Routing policies side by side: the availability queue against round robin, random,
# least-connections and consistent hashing, on the same pool, the same heavy-tailed job mix and
# the same Poisson arrivals at 50 %, 80 % and 95 % of the measured capacity.
# Writes docs/results/policies.{json,txt} and docs/charts/policies-*.svg, then checks the charts
# in headless Chromium. Usage: bench/policies.sh [visits per run, default 3000]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/arguments.sh
help_if_asked "$@"
at_most 1 "$@"
REQUESTS="${1:-3000}"
whole_number visits "$REQUESTS"
. bench/release_build.sh
release_build .build
mkdir -p docs/charts docs/results
# Jobs: 90 % n=1000 (about 0.6 ms), 9 % n=10000 (about 10 ms), 1 % n=50000 (about 180 ms).
"$BIN/loadtest" policies --servers 5 --loads 0.5,0.8,0.95 --requests "$REQUESTS" \
  --concurrency 512 --mix 1000:90,10000:9,50000:1 --keys 1000 --seed 7 --quiet \
  --json docs/results/policies.json --chart-prefix docs/charts/policies | tee docs/results/policies.txt
bench/check_charts.sh docs/charts/policies-*.svg
