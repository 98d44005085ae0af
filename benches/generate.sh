#!/usr/bin/env bash
# Times `osservatorio generate` at each scale in the release profile and
# appends the medians, with the machine's details, to benches/RESULTS.md.
#
# Usage: benches/generate.sh [scale ...]      (default: province region national)
# Needs hyperfine, installed with apt-get when missing (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
scales=("${@:-province region national}")
read -r -a scales <<<"${scales[*]}"
# shellcheck source=lib.sh
source "$PWD/benches/lib.sh"
need_commands hyperfine
release_binary "$(pwd)"
# One line for benches/run.sh's table of ratios, when it asks for it.
summarise() { [ -z "${BENCH_SUMMARY:-}" ] || printf '%s\t%s\t%s\t%s\n' "$@" >>"$BENCH_SUMMARY"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results="$work/results.md"
for scale in "${scales[@]}"; do
  runs=5; [ "$scale" = national ] && runs=3
  hyperfine --runs "$runs" --warmup 0 --time-unit second \
    --prepare "rm -rf $work/wh" \
    --export-markdown "$work/$scale.md" --export-json "$work/$scale.json" \
    -n "generate --scale $scale" "$bin --data-dir $work/wh generate --scale $scale --seed 1"
  tail -n +3 "$work/$scale.md" >>"$results"
  if [ "$scale" = national ]; then
    mean=$(python3 -c 'import json, sys; print("%.1f" % json.load(open(sys.argv[1]))["results"][0]["mean"])' "$work/$scale.json")
    summarise "national generation" "$mean s" "≤ 60 s" "$(awk -v m="$mean" 'BEGIN {print (m <= 60) ? "met" : "NOT met"}')"
  fi
  "$bin" --data-dir "$work/wh" datasets | awk -v s="$scale" 'NR>1 {rows+=$3; bytes+=$5} END {printf "  %s: %d rows, %.0f MB\n", s, rows, bytes/1e6}' >>"$work/sizes.txt"
done
{
  echo
  echo "## $(date -u +%Y-%m-%dT%H:%MZ) – generate ($(git rev-parse --short HEAD))"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo
  echo "| command | mean [s] | min [s] | max [s] |"
  echo "|:---|---:|---:|---:|"
  sed -E 's/^\| `([^`]*)` \| ([^|]*) \| ([^|]*) \| ([^|]*) \|.*$/| \1 | \2 | \3 | \4 |/' "$results"
  echo
  echo "Sizes:"
  cat "$work/sizes.txt"
} | tee -a benches/RESULTS.md
