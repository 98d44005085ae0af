#!/usr/bin/env bash
# Times `osservatorio report` (HTML, CSV, every chart as SVG and PNG) on a
# generated warehouse in the release profile, and appends the medians with
# the machine's details to benches/RESULTS.md. Goal: the national-scale
# report in 30 seconds or less.
#
# Usage: benches/report.sh [scale]     (default: national)
# Environment: YEAR (default 2024), RUNS (default 3), OSSERVATORIO_BIN (skip the build).
# Needs hyperfine, installed with apt-get when missing (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scale=${1:-national}
year=${YEAR:-2024}
runs=${RUNS:-3}
# shellcheck source=lib.sh
source "$PWD/benches/lib.sh"
need_commands hyperfine
release_binary "$(pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One line for benches/run.sh's table of ratios, when it asks for it.
summarise() { [ -z "${BENCH_SUMMARY:-}" ] || printf '%s\t%s\t%s\t%s\n' "$@" >>"$BENCH_SUMMARY"; }

"$bin" --data-dir "$work/wh" generate --scale "$scale" --seed 1
hyperfine --runs "$runs" --warmup 1 --time-unit second \
  --prepare "rm -rf $work/out" \
  --export-markdown "$work/report.md" --export-json "$work/report.json" \
  -n "report --year $year ($scale)" \
  "$bin --data-dir $work/wh --queries-dir $root/queries report --year $year --out $work/out"
# Two runs on the same data write the same bytes.
"$bin" --data-dir "$work/wh" --queries-dir "$root/queries" report --year "$year" --out "$work/again"
diff -r "$work/out" "$work/again" >/dev/null && same=yes || same=NO
mean=$(python3 -c 'import json, sys; print("%.1f" % json.load(open(sys.argv[1]))["results"][0]["mean"])' "$work/report.json")
if [ "$scale" = national ]; then
  summarise "national report (identical bytes: $same)" "$mean s" "≤ 30 s" "$(awk -v m="$mean" -v s="$same" 'BEGIN {print (m <= 30 && s == "yes") ? "met" : "NOT met"}')"
fi
{
  echo
  echo "## $(date -u +%Y-%m-%dT%H:%MZ) – report ($(git rev-parse --short HEAD))"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "Scale: $scale, year $year; output $(du -sh "$work/out" | cut -f1) ($(ls "$work/out/figures" | wc -l) figure files). Identical bytes on a second run: $same. Goal: national ≤ 30 s."
  echo
  echo "| command | mean [s] | min [s] | max [s] |"
  echo "|:---|---:|---:|---:|"
  tail -n +3 "$work/report.md" | sed -E 's/^\| `([^`]*)` \| ([^|]*) \| ([^|]*) \| ([^|]*) \|.*$/| \1 | \2 | \3 | \4 |/'
} | tee -a benches/RESULTS.md
