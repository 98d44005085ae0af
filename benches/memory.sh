#!/usr/bin/env bash
# Memory under load: eight heavy SQL queries sent at once over HTTP to one
# `osservatorio serve` whose memory pool is 1 GiB. Goal: the server's peak
# resident memory stays at or under 1.5 GiB, and every query either finishes
# or fails cleanly with 503 `resources_exhausted` (or 504 `timeout`), after
# which the server still answers. Prints each query's outcome and the peak,
# and appends them, with the machine's details, to benches/RESULTS.md.
#
# Usage: benches/memory.sh [--scale province|region|national]   (default national)
# Environment:
#   OSSERVATORIO_BIN   binary to measure; skips `cargo build --release --locked --features cluster`
#   MEMORY_LIMIT       the pool (default 1GiB); RSS_GOAL_MIB (default 1536)
#   QUERY_TIMEOUT      the server's query time limit (default 300s)
# Needs curl.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
root=$(pwd)

# shellcheck source=lib.sh
source "$PWD/benches/lib.sh"
parse_scale national "$@"
memory_limit=${MEMORY_LIMIT:-1GiB}
rss_goal_mib=${RSS_GOAL_MIB:-1536}
query_timeout=${QUERY_TIMEOUT:-300s}
need_commands curl

release_binary "$(pwd)"

work=$(mktemp -d)
server_pid=
sampler_pid=
cleanup() {
  for pid in $sampler_pid $server_pid; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"

echo "Generating the $scale warehouse..." >&2
"$bin" --data-dir "$work/wh" generate --scale "$scale" >/dev/null

start_serve "$work/server.log" --data-dir "$work/wh" --queries-dir "$root/queries" \
  --memory-limit "$memory_limit" --timeout "$query_timeout"
url=$server_url
token=$server_token
rss_idle_mib=$(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$server_pid/status")

# Resident memory every 50 ms; VmHWM gives the true peak at the end.
(
  while kill -0 "$server_pid" 2>/dev/null; do
    awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$server_pid/status" 2>/dev/null || true
    sleep 0.05
  done
) >"$work/rss.txt" &
sampler_pid=$!

# Heavy in different ways: big hash aggregations, joins of the largest
# tables, full sorts, windows and distinct counts. Results are small or cut
# at the row cap, so the memory is the server's, not the encoder's.
queries=(
  "SELECT worker_id, count(*) AS n, sum(weekly_hours) AS hours FROM contracts GROUP BY worker_id ORDER BY n DESC, worker_id LIMIT 20"
  "SELECT w.citizenship, c.year, count(*) AS n, avg(c.gross_pay_eur) AS pay FROM contracts c JOIN workers w USING (worker_id) GROUP BY 1, 2 ORDER BY 1, 2"
  "SELECT count(*) FROM contracts a JOIN contracts b ON a.household_id = b.household_id AND a.contract_id < b.contract_id"
  "SELECT contract_id, worker_id, start_date FROM contracts ORDER BY weekly_hours DESC, start_date, contract_id"
  "SELECT count(DISTINCT household_id) AS households, count(DISTINCT worker_id) AS workers, count(DISTINCT request_id) AS requests FROM contracts"
  "SELECT worker_id, start_date, row_number() OVER (PARTITION BY worker_id ORDER BY start_date) AS nth FROM contracts ORDER BY nth DESC, worker_id LIMIT 20"
  "SELECT household_id, year, array_agg(job_type) AS jobs FROM contracts GROUP BY household_id, year ORDER BY household_id, year LIMIT 20"
  "SELECT c.istat_code, h.household_id, count(*) AS n FROM contracts c JOIN households h USING (household_id) GROUP BY 1, 2 HAVING count(*) > 3 ORDER BY n DESC LIMIT 20"
)
started=$(date +%s.%N)
pids=()
for i in "${!queries[@]}"; do
  (
    t0=$(date +%s.%N)
    code=$(curl -s -o "$work/out.$i" -w '%{http_code}' -H "Authorization: Bearer $token" \
      -H 'Accept: application/json' --data-binary "${queries[$i]}" "$url/api/sql" || echo 000)
    t1=$(date +%s.%N)
    echo "$code $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')" >"$work/status.$i"
  ) &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
after=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" --data 'SELECT 1' "$url/api/sql" || echo 000)
peak_mib=$(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$server_pid/status")
sampled_mib=$(sort -n "$work/rss.txt" | tail -1)

rows=()
clean=1
for i in "${!queries[@]}"; do
  read -r code seconds <"$work/status.$i"
  # Markers of a whole JSON result are at its end; errors are short.
  body=$(tail -c 2000 "$work/out.$i")
  case "$code" in
    200)
      if grep -q '"truncated":true' <<<"$body"; then outcome="finished (cut at the row cap)";
      elif grep -q '"row_count"' <<<"$body"; then outcome="finished";
      else outcome="aborted after the first rows"; clean=0; fi ;;
    503|504) outcome="refused cleanly: $(grep -o '"error":"[a-z_]*"' <<<"$body" | cut -d'"' -f4)" ;;
    *) outcome="FAILED: HTTP $code $(head -c 200 <<<"$body")"; clean=0 ;;
  esac
  rows+=("| $((i + 1)) | \`${queries[$i]}\` | $code | $seconds | $outcome |")
done
[ "$after" = 200 ] || clean=0
verdict=$(awk -v p="$peak_mib" -v g="$rss_goal_mib" -v c="$clean" 'BEGIN {print (p <= g && c) ? "goal met" : "goal NOT met"}')
[ -z "${BENCH_SUMMARY:-}" ] || printf '%s\t%s\t%s\t%s\n' "peak RSS, 8 heavy queries at once, $memory_limit pool ($scale)" "$peak_mib MiB" "≤ $rss_goal_mib MiB, clean refusals" "$(awk -v p="$peak_mib" -v g="$rss_goal_mib" -v c="$clean" 'BEGIN {print (p <= g && c) ? "met" : "NOT met"}')" >>"$BENCH_SUMMARY"

commit=$(git -C "$root" rev-parse --short HEAD)
[ -z "$(git -C "$root" status --porcelain -- src benches ':!benches/RESULTS.md')" ] || commit="$commit, uncommitted changes"
{
  echo
  echo "## Memory: eight heavy queries at once over HTTP – $(date -u +%Y-%m-%dT%H:%MZ) ($commit)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -srm)"
  echo "Scale: $scale. Memory pool $memory_limit, query time limit $query_timeout, default row cap."
  echo "Server resident memory: $rss_idle_mib MiB idle with the snapshot loaded; peak $peak_mib MiB"
  echo "(VmHWM; the 50 ms sampler saw $sampled_mib MiB). All eight answered in $elapsed s;"
  echo "a \`SELECT 1\` afterwards answered $after."
  echo
  echo "| # | query | status | s | outcome |"
  echo "|---:|:---|---:|---:|:---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Peak RSS $peak_mib MiB against the goal of ≤ $rss_goal_mib MiB, every query finished or refused cleanly: $verdict."
} | tee -a "$root/benches/RESULTS.md"
