#!/usr/bin/env bash
# The whole indicator suite as raw SQL (queries/*.sql, header stripped and
# parameters replaced by their defaults), run by osservatorio and by DuckDB on
# the same Parquet files of a generated warehouse: checks that both give the
# same rows, then times the suite two ways:
#   warm: one Python process holds a DuckDB connection and an ADBC Flight SQL
#         connection to `osservatorio serve`, and runs the suite on each in
#         alternation (ROUNDS rounds, medians): how a researcher uses either;
#   cold: hyperfine, one `osservatorio sql` process per query against one
#         Python process running DuckDB, start-up included.
# Goal: osservatorio takes at most 0.8 times DuckDB's time, warm (ratio <= 0.8).
# Prints the timings and appends them, with the machine's details, to
# benches/RESULTS.md.
#
# Usage: benches/indicators.sh [--scale province|region|national]   (default province)
# Environment:
#   OSSERVATORIO_BIN   binary to measure; skips `cargo build --release --locked --features cluster`
#   RUNS, WARMUP       hyperfine's --runs and --warmup (default 10 and 1)
#   ROUNDS             rounds of the warm comparison (default 10)
#   SEED               seed of `osservatorio generate` (default 1)
# Needs python3 and hyperfine; hyperfine is installed with apt-get when missing
# (as root, or through sudo), and DuckDB, ADBC and pyarrow, pinned in
# notebooks/requirements.txt, with pip into a virtual environment under target/.
set -euo pipefail
shopt -s inherit_errexit  # a failing command inside $(...) stops the script too
cd "$(dirname "$0")/.."
root=$(pwd)

# shellcheck source=lib.sh
source "$PWD/benches/lib.sh"
parse_scale province "$@"
runs=${RUNS:-10}
warmup=${WARMUP:-1}
rounds=${ROUNDS:-10}
seed=${SEED:-1}
for setting in "RUNS=$runs" "WARMUP=$warmup" "ROUNDS=$rounds" "SEED=$seed"; do
  [[ ${setting#*=} =~ ^[0-9]+$ ]] || { echo "benches/indicators.sh: $setting is not a whole number" >&2; exit 2; }
done
[ "$runs" -gt 0 ] || { echo "benches/indicators.sh: RUNS must be positive" >&2; exit 2; }

# --- Tools -----------------------------------------------------------------
need_commands hyperfine
pinned_python "$root"

# --- Binary ----------------------------------------------------------------
release_binary "$(pwd)"

# --- Workspace and cleanup ---------------------------------------------------
work=$(mktemp -d)
server_pid=
trap 'stop_serve; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
# Commands run from the temporary directory, so that no osservatorio.toml or
# queries/ of the checkout is read.
cd "$work"
wh=$work/wh
sql=$work/sql
helper=$root/benches/indicators_duckdb.py

echo "Generating the $scale warehouse..." >&2
"$bin" --data-dir "$wh" generate --scale "$scale" --seed "$seed" >/dev/null

# --- The queries ---------------------------------------------------------------
# Header stripped, placeholders replaced by literal defaults; the survey
# indicators (svy_* functions, osservatorio only) are left out.
"$py" "$helper" prepare "$root/queries" "$sql"
# Queries DuckDB cannot run (dialect) are left out too, not edited.
"$py" "$helper" run "$wh" "$sql" --out "$work/duck" --keep-going
if [ -s "$work/duck/failed.tsv" ]; then
  mkdir -p "$work/unsupported"
  while IFS=$'\t' read -r id _; do mv "$sql/$id.sql" "$work/unsupported/"; done <"$work/duck/failed.tsv"
fi
ids=()
for f in "$sql"/*.sql; do ids+=("$(basename "$f" .sql)"); done
[ "${#ids[@]}" -gt 0 ] || { echo "benches/indicators.sh: no query left to compare" >&2; exit 1; }
n_compared=${#ids[@]}
n_survey=$(wc -l <"$sql/skipped.tsv")
n_dialect=0; [ -s "$work/duck/failed.tsv" ] && n_dialect=$(wc -l <"$work/duck/failed.tsv")

# Osservatorio's side: one `osservatorio sql` process per query, as a script.
{
  echo 'set -e'
  for id in "${ids[@]}"; do
    printf '%q sql --data-dir %q --format csv --file %q >/dev/null\n' "$bin" "$wh" "$sql/$id.sql"
  done
} >"$work/osservatorio_suite.sh"
# The fixed cost of that loop: as many processes, each running SELECT 1.
{
  echo 'set -e'
  for _ in "${ids[@]}"; do
    printf '%q sql --data-dir %q --format csv %q >/dev/null\n' "$bin" "$wh" "SELECT 1 AS one"
  done
} >"$work/osservatorio_startup.sh"

# --- Equality check --------------------------------------------------------------
echo "Running every query once with osservatorio..." >&2
mkdir -p "$work/osv"
for id in "${ids[@]}"; do
  "$bin" sql --data-dir "$wh" --format csv --file "$sql/$id.sql" >"$work/osv/$id.csv" || {
    echo "benches/indicators.sh: osservatorio failed on $id" >&2; exit 1; }
done
compare_status=0
"$py" "$helper" compare "$work/osv" "$work/duck" "${ids[@]}" | tee "$work/compare.txt" || compare_status=$?
n_equal=$(grep -c '^equal ' "$work/compare.txt" || true)

# --- Measurement ---------------------------------------------------------------
q() { printf '%q' "$1"; }
osv_name="osservatorio sql × $n_compared (one process each)"
duck_name="duckdb (one Python process)"
start_name="osservatorio sql 'SELECT 1' × $n_compared (start-up only)"
hyperfine --runs "$runs" --warmup "$warmup" --time-unit second \
  --export-json "$work/hyperfine.json" \
  -n "$osv_name" "bash $(q "$work/osservatorio_suite.sh")" \
  -n "$duck_name" "$(q "$py") $(q "$helper") run $(q "$wh") $(q "$sql")" \
  -n "$start_name" "bash $(q "$work/osservatorio_startup.sh")"

# median mean stddev min max of a command, in seconds.
stats() {
  python3 - "$work/hyperfine.json" "$1" <<'EOF'
import json, sys
result = next(r for r in json.load(open(sys.argv[1]))["results"] if r["command"] == sys.argv[2])
print(" ".join(f"{result[k] or 0:.3f}" for k in ("median", "mean", "stddev", "min", "max")))
EOF
}
read -r osv_median osv_mean osv_sd osv_min osv_max <<<"$(stats "$osv_name")"
read -r duck_median duck_mean duck_sd duck_min duck_max <<<"$(stats "$duck_name")"
read -r st_median st_mean st_sd st_min st_max <<<"$(stats "$start_name")"
cold_ratio=$(awk -v a="$osv_median" -v d="$duck_median" 'BEGIN {printf "%.2f", a / d}')

# --- Warm: both engines in one Python process --------------------------------
# Twice: with the result cache off, every round computes every query; with
# it on (serve's default), the first round fills it and the others are
# answered from it, as a notebook run again or a dashboard reloaded is.
race() {
  export OSSERVATORIO_RESULT_CACHE=$2
  start_serve "$work/server.log" --data-dir "$wh" --queries-dir "$root/queries"
  unset OSSERVATORIO_RESULT_CACHE
  OSSERVATORIO_TOKEN=$server_token "$py" "$helper" race "$wh" "$sql" "$flight_uri" "$rounds" >"$work/race-$1.json"
  stop_serve
}
race computed 0
race repeated 128MiB
# median min max of one engine's rounds, in seconds.
warm() {
  "$py" - "$work/race-$1.json" "$2" <<'EOF'
import json, statistics, sys
times = json.load(open(sys.argv[1]))[sys.argv[2]]
print(f"{statistics.median(times):.3f} {min(times):.3f} {max(times):.3f}")
EOF
}
read -r warm_osv warm_osv_min warm_osv_max <<<"$(warm computed osservatorio)"
read -r warm_duck warm_duck_min warm_duck_max <<<"$(warm computed duckdb)"
read -r again_osv again_osv_min again_osv_max <<<"$(warm repeated osservatorio)"
read -r again_duck again_duck_min again_duck_max <<<"$(warm repeated duckdb)"
ratio=$(awk -v a="$warm_osv" -v d="$warm_duck" 'BEGIN {printf "%.2f", a / d}')
again_ratio=$(awk -v a="$again_osv" -v d="$again_duck" 'BEGIN {printf "%.2f", a / d}')
verdict() { awk -v r="$1" 'BEGIN {print (r <= 0.8) ? "goal met" : "above the goal"}'; }
met() { awk -v r="$1" 'BEGIN {print (r <= 0.8) ? "met" : "NOT met"}'; }
if [ -n "${BENCH_SUMMARY:-}" ]; then
  printf '%s\t%s\t%s\t%s\n' "indicator suite / DuckDB, $scale, warm, every query computed (cold $cold_ratio×)" "$ratio×" "≤ 0.8×" "$(met "$ratio")" >>"$BENCH_SUMMARY"
  printf '%s\t%s\t%s\t%s\n' "indicator suite / DuckDB, $scale, asked again (result cache)" "$again_ratio×" "≤ 0.8×" "$(met "$again_ratio")" >>"$BENCH_SUMMARY"
fi
echo
echo "Warm medians, every query computed: osservatorio (Flight SQL) $warm_osv s, DuckDB $warm_duck s: ratio $ratio (goal ≤ 0.8: $(verdict "$ratio"))"
echo "Warm medians, asked again: osservatorio $again_osv s, DuckDB $again_duck s: ratio $again_ratio (goal ≤ 0.8: $(verdict "$again_ratio"))"
echo "Cold medians: osservatorio $osv_median s, DuckDB $duck_median s, osservatorio start-up alone $st_median s: ratio $cold_ratio"

# --- Report ----------------------------------------------------------------------
commit=$(git -C "$root" rev-parse --short HEAD)
{ git -C "$root" diff --quiet HEAD -- 2>/dev/null && [ -z "$(git -C "$root" status --porcelain -- benches queries)" ]; } || commit="$commit, uncommitted changes"
binary=${bin#"$root"/}
[ -n "${OSSERVATORIO_BIN:-}" ] && binary="$binary (OSSERVATORIO_BIN, not built by the script)"
duckdb_version=$("$py" -c 'import duckdb; print(duckdb.__version__)')
skipped_sentence="$n_survey survey indicators (svy_* functions, osservatorio only: $(cut -f1 "$sql/skipped.tsv" | sed 's/.*/`&`/' | paste -sd, - | sed 's/,/, /g'))"
if [ "$n_dialect" -gt 0 ]; then
  skipped_sentence="$skipped_sentence; $n_dialect that DuckDB cannot run: $(while IFS=$'\t' read -r id msg; do printf '`%s` (%s)\n' "$id" "$msg"; done <"$work/duck/failed.tsv" | paste -sd';' - | sed 's/;/; /g')"
fi
{
  echo
  echo "## Indicator suite vs DuckDB – $(date -u +%Y-%m-%dT%H:%MZ) ($commit)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "Tools: $(hyperfine --version), DuckDB $duckdb_version (Python $("$py" -c 'import platform; print(platform.python_version())'))"
  echo "Binary: $binary."
  echo
  echo "Scale: $scale (seed $seed). The indicators' raw SQL, parameters at their defaults,"
  echo "no disclosure control. $n_compared queries compared, $n_equal with equal results (sorted rows,"
  echo "numbers within 1e-9 relative). Skipped: $skipped_sentence."
  if [ "$compare_status" -ne 0 ]; then
    echo
    echo "Mismatches:"
    echo
    grep -A10 '^MISMATCH' "$work/compare.txt" | sed 's/^/    /'
  fi
  echo
  echo "osservatorio runs one \`osservatorio sql --file\` process per query (each pays"
  echo "process start-up and table registration: the third row, the same number of"
  echo "\`SELECT 1\`); DuckDB runs every query in one Python process (\`import duckdb\`,"
  echo "views over the current Parquet files from the Delta log). hyperfine --runs $runs"
  echo "--warmup $warmup, the three commands in one invocation."
  echo
  echo "| command | median [s] | mean [s] | min [s] | max [s] |"
  echo "|:---|---:|---:|---:|---:|"
  echo "| $osv_name | $osv_median | $osv_mean ± $osv_sd | $osv_min | $osv_max |"
  echo "| $duck_name | $duck_median | $duck_mean ± $duck_sd | $duck_min | $duck_max |"
  echo "| $start_name | $st_median | $st_mean ± $st_sd | $st_min | $st_max |"
  echo
  echo "Cold ratio osservatorio/DuckDB (median time): $cold_ratio."
  echo
  echo "Warm: one Python process, a DuckDB connection with the views registered and an"
  echo "ADBC Flight SQL connection to \`osservatorio serve\` on the same warehouse; $rounds rounds"
  echo "of the whole suite on each, alternating which goes first, every row fetched as Arrow."
  echo
  echo "Twice: the server started with \`--result-cache 0\` (every round computes every query),"
  echo "then with its result cache on (the first round fills it; the others are answered from"
  echo "it while the tables keep their versions). DuckDB computes every round both times."
  echo
  echo "| engine | result cache | median [s] | min [s] | max [s] |"
  echo "|:---|:---|---:|---:|---:|"
  echo "| osservatorio (Flight SQL) | off | $warm_osv | $warm_osv_min | $warm_osv_max |"
  echo "| DuckDB | | $warm_duck | $warm_duck_min | $warm_duck_max |"
  echo "| osservatorio (Flight SQL) | on | $again_osv | $again_osv_min | $again_osv_max |"
  echo "| DuckDB | | $again_duck | $again_duck_min | $again_duck_max |"
  echo
  echo "Ratio osservatorio/DuckDB, warm (median time): every query computed $ratio (goal ≤ 0.8: $(verdict "$ratio")); asked again $again_ratio ($(verdict "$again_ratio"))."
} | tee -a "$root/benches/RESULTS.md"
exit "$compare_status"
