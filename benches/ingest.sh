#!/usr/bin/env bash
# Rows per second of `osservatorio ingest workers` on a large valid CSV export
# (every row validated against the dictionary, codici fiscali replaced by
# keyed pseudonyms, municipalities and keys checked against the warehouse, one
# Delta commit) against DuckDB converting the very same CSV to Parquet
# (parsing and type inference only). Goal: osservatorio ingests at least as
# many rows per second as DuckDB converts (ratio >= 1.0). Prints the timings
# and appends them, with the machine's details, to benches/RESULTS.md.
#
# Usage: benches/ingest.sh
# Environment:
#   OSSERVATORIO_BIN   binary to measure; skips `cargo build --release --locked --features cluster`
#   ROWS               rows of the generated export (default 1000000)
#   RUNS, WARMUP       timed and warm-up rounds, each running both commands
#                      once, in turn (default 5 and 1)
#   SEED               seed of benches/make_ingest_csv.py (default 1)
# Needs python3 and hyperfine; hyperfine is installed with apt-get when missing
# (as root, or through sudo), and DuckDB, pinned in notebooks/requirements.txt,
# with pip into a virtual environment under target/.
set -euo pipefail
shopt -s inherit_errexit  # a failing command inside $(...) stops the script too
cd "$(dirname "$0")/.."
root=$(pwd)

case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  '') ;;
  *) echo "benches/ingest.sh: no arguments expected (settings come from the environment; see --help)" >&2; exit 2 ;;
esac
rows=${ROWS:-1000000}
runs=${RUNS:-5}
warmup=${WARMUP:-1}
seed=${SEED:-1}
for setting in "ROWS=$rows" "RUNS=$runs" "WARMUP=$warmup" "SEED=$seed"; do
  [[ ${setting#*=} =~ ^[0-9]+$ ]] || { echo "benches/ingest.sh: $setting is not a whole number" >&2; exit 2; }
done
[ "$rows" -gt 0 ] && [ "$runs" -gt 0 ] || { echo "benches/ingest.sh: ROWS and RUNS must be positive" >&2; exit 2; }

# --- Tools -----------------------------------------------------------------
# shellcheck source=lib.sh
source "$PWD/benches/lib.sh"
need_commands hyperfine
pinned_python "$root"

# --- Binary ----------------------------------------------------------------
release_binary "$(pwd)"

# --- Workspace and cleanup ---------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
# Commands run from the temporary directory, so that no osservatorio.toml of
# the checkout is read; the key is a throwaway one for throwaway warehouses.
cd "$work"
export OSSERVATORIO_PSEUDONYM_KEY=benchmark-only-pseudonym-key
base=$work/base
wh=$work/wh
csv=$work/workers.csv
parquet=$work/workers.parquet
count_workers() { "$bin" --data-dir "$1" sql "SELECT count(*) AS n FROM workers" --format csv | tail -n 1; }

echo "Generating the province warehouse..." >&2
"$bin" --data-dir "$base" generate --scale province --seed 1 >/dev/null
"$bin" --data-dir "$base" sql "SELECT istat_code FROM territories WHERE province_code = '019'" --format csv >"$work/istat_codes.csv"
base_workers=$(count_workers "$base")

echo "Writing $rows rows of workers..." >&2
python3 "$root/benches/make_ingest_csv.py" "$rows" "$csv" --seed "$seed" --istat-codes "$work/istat_codes.csv"
csv_bytes=$(stat -c %s "$csv")
csv_mb=$(awk -v b="$csv_bytes" 'BEGIN {printf "%.1f", b / 1e6}')

# DuckDB's side: the same file, parsed with its type inference, written as Parquet.
cat >"$work/duckdb_copy.py" <<EOF
import duckdb
duckdb.sql("COPY (SELECT * FROM read_csv('$csv')) TO '$parquet' (FORMAT parquet)")
EOF

# --- One checked run of each ---------------------------------------------------
# The timing must be of a real ingest: every row accepted, committed, counted.
echo "Checking that the export is ingested in full..." >&2
cp -r "$base" "$wh"
status=0
"$bin" ingest workers "$csv" --data-dir "$wh" >"$work/report.txt" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  echo "benches/ingest.sh: osservatorio ingest exited with $status instead of 0; its report:" >&2
  head -n 40 "$work/report.txt" >&2
  exit 1
fi
cat "$work/report.txt" >&2
after=$(count_workers "$wh")
if [ "$after" -ne $((base_workers + rows)) ]; then
  echo "benches/ingest.sh: workers has $after rows after the ingest, expected $base_workers + $rows" >&2
  exit 1
fi
rm -rf "$wh"
"$py" "$work/duckdb_copy.py"
parquet_rows=$("$py" -c "import duckdb; print(duckdb.sql(\"SELECT count(*) FROM read_parquet('$parquet')\").fetchall()[0][0])")
[ "$parquet_rows" -eq "$rows" ] || { echo "benches/ingest.sh: DuckDB wrote $parquet_rows rows, expected $rows" >&2; exit 1; }
rm -f "$parquet"

# --- Measurement ---------------------------------------------------------------
# The export was just written: its pages are flushed now, so that the kernel
# does not write them back during the first command's runs only.
sync
# Interleaved: each round times each command once, in turn, the order
# swapped every other round, so that both meet the machine in the same
# state (its speed drifts by several percent over a minute). Before every
# run a fresh copy of the base warehouse, or no Parquet file. WARMUP rounds
# come first and are not counted.
q() { printf '%q' "$1"; }
ingest_name="osservatorio ingest workers"
duckdb_name="duckdb COPY read_csv → parquet"
ingest_args=(--prepare "rm -rf $(q "$wh") && cp -r $(q "$base") $(q "$wh")"
  -n "$ingest_name" "$(q "$bin") ingest workers $(q "$csv") --data-dir $(q "$wh")")
duckdb_args=(--prepare "rm -f $(q "$parquet")"
  -n "$duckdb_name" "$(q "$py") $(q "$work/duckdb_copy.py")")
for ((round = 1 - warmup; round <= runs; round++)); do
  if ((round % 2 == 0)); then
    order=("${ingest_args[@]}" "${duckdb_args[@]}")
  else
    order=("${duckdb_args[@]}" "${ingest_args[@]}")
  fi
  kept=$work/discarded.json
  if ((round > 0)); then kept=$work/round-$round.json; fi
  hyperfine --runs 1 --time-unit second --export-json "$kept" "${order[@]}" >/dev/null
done
# The last timed ingest committed every row too.
after=$(count_workers "$wh")
[ "$after" -eq $((base_workers + rows)) ] || { echo "benches/ingest.sh: the timed ingest left $after workers, expected $base_workers + $rows" >&2; exit 1; }

# median mean stddev min max of a command over the counted rounds, in seconds.
stats() {
  python3 - "$1" "$work"/round-*.json <<'EOF'
import json, statistics, sys
times = [r["times"][0] for path in sys.argv[2:] for r in json.load(open(path))["results"] if r["command"] == sys.argv[1]]
spread = statistics.stdev(times) if len(times) > 1 else 0.0
print(" ".join(f"{v:.3f}" for v in (statistics.median(times), statistics.mean(times), spread, min(times), max(times))))
EOF
}
read -r app_median app_mean app_sd app_min app_max <<<"$(stats "$ingest_name")"
read -r duck_median duck_mean duck_sd duck_min duck_max <<<"$(stats "$duckdb_name")"
app_rate=$(awk -v n="$rows" -v t="$app_median" 'BEGIN {printf "%.0f", n / t}')
duck_rate=$(awk -v n="$rows" -v t="$duck_median" 'BEGIN {printf "%.0f", n / t}')
ratio=$(awk -v a="$app_rate" -v d="$duck_rate" 'BEGIN {printf "%.2f", a / d}')
verdict=$(awk -v r="$ratio" 'BEGIN {print (r >= 1.0) ? "goal met" : "below the goal"}')

# --- Report ----------------------------------------------------------------------
commit=$(git -C "$root" rev-parse --short HEAD)
git -C "$root" diff --quiet HEAD -- 2>/dev/null || commit="$commit, uncommitted changes"
binary=${bin#"$root"/}
[ -n "${OSSERVATORIO_BIN:-}" ] && binary="$binary (OSSERVATORIO_BIN, not built by the script)"
duckdb_version=$("$py" -c 'import duckdb; print(duckdb.__version__)')
[ -z "${BENCH_SUMMARY:-}" ] || printf '%s\t%s\t%s\t%s\n' "ingest / DuckDB CSV→Parquet (rows/s)" "$ratio×" "≥ 1.0×" "$(awk -v r="$ratio" 'BEGIN {print (r >= 1.0) ? "met" : "NOT met"}')" >>"$BENCH_SUMMARY"
{
  echo
  echo "## Ingest: validated CSV → Delta vs DuckDB CSV → Parquet – $(date -u +%Y-%m-%dT%H:%MZ) ($commit)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "Tools: $(hyperfine --version), DuckDB $duckdb_version (Python $("$py" -c 'import platform; print(platform.python_version())'))"
  echo "Binary: $binary."
  echo
  echo "$rows rows of \`workers\` ($csv_mb MB of CSV, \`benches/make_ingest_csv.py --seed $seed\`), every"
  echo "row valid. osservatorio validates every rule, pseudonymises the codice fiscale,"
  echo "checks municipalities and keys against a fresh copy of the province demo"
  echo "warehouse ($base_workers workers) and commits to Delta; DuckDB only parses the CSV"
  echo "and writes Parquet. $runs rounds after $warmup of warm-up, each timing both commands once in turn"
  echo "(hyperfine --runs 1), the order swapped every other round."
  echo
  echo "| command | median [s] | mean [s] | min [s] | max [s] | rows/s (median) |"
  echo "|:---|---:|---:|---:|---:|---:|"
  echo "| $ingest_name | $app_median | $app_mean ± $app_sd | $app_min | $app_max | $app_rate |"
  echo "| $duckdb_name | $duck_median | $duck_mean ± $duck_sd | $duck_min | $duck_max | $duck_rate |"
  echo
  echo "Ratio osservatorio/DuckDB (rows/s): $ratio (goal ≥ 1.0: $verdict)"
} | tee -a "$root/benches/RESULTS.md"
