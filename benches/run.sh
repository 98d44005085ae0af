#!/usr/bin/env bash
# The whole harness in one run, on this machine, in the release profile:
# generation at national scale, the indicator suite against DuckDB (warm and
# cold, results checked equal), ingest against DuckDB's CSV → Parquet copy,
# cached indicator HTTP against nginx, chart rendering, the national report,
# and memory under eight concurrent heavy queries. Each part appends its own
# section to benches/RESULTS.md; this script then prints one table of the
# measurements against their goals and appends it, with the machine's
# details.
#
# Usage: benches/run.sh [--scale province|region|national]   (default national)
# Environment: RUNS (hyperfine runs of the cold suite and the report,
# default 3), ROUNDS (warm suite rounds, default 5), INGEST_RUNS (ingest's
# rounds, default 9: a round takes two seconds, and one ingest varies by up
# to a tenth from the next on a shared machine); the parts' own settings
# pass through. Needs what the parts need: hyperfine, wrk, nginx, curl,
# python3 (they install what is missing where they can).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=lib.sh
source "$PWD/benches/lib.sh"
parse_scale national "$@"
runs=${RUNS:-3}
export ROUNDS=${ROUNDS:-5}

cargo build --release --locked --features cluster
export OSSERVATORIO_BIN=$root/target/release/osservatorio
BENCH_SUMMARY=$(mktemp)
export BENCH_SUMMARY
trap 'rm -f "$BENCH_SUMMARY"' EXIT

failed=()
part() {
  local name=$1; shift
  echo "=== $name" >&2
  "$@" || failed+=("$name")
}
part generate benches/generate.sh "$scale"
RUNS=$runs part indicators benches/indicators.sh --scale "$scale"
RUNS=${INGEST_RUNS:-9} part ingest benches/ingest.sh
part http benches/http.sh --scale "$scale"
# The same features as the release binary, so the bench reuses its build.
part charts cargo bench --locked --features cluster --bench charts
RUNS=$runs part report benches/report.sh "$scale"
part memory benches/memory.sh --scale "$scale"

commit=$(git rev-parse --short HEAD)
[ -z "$(git status --porcelain -- src benches queries ':!benches/RESULTS.md')" ] || commit="$commit, uncommitted changes"
{
  echo
  echo "## Harness summary – $(date -u +%Y-%m-%dT%H:%MZ) ($commit)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs). Scale: $scale."
  echo "Each comparison ran interleaved in this session; medians (means for generation"
  echo "and the report, as hyperfine gives them). Details in the sections above."
  echo
  echo "| measurement | result | goal | |"
  echo "|:---|---:|:---|:---|"
  awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$BENCH_SUMMARY"
  if [ "${#failed[@]}" -gt 0 ]; then
    echo
    echo "Parts that failed to run: ${failed[*]}."
  fi
} | tee -a benches/RESULTS.md
[ "${#failed[@]}" -eq 0 ]
