#!/usr/bin/env bash
# The indicator suite on the local engine against a Ballista cluster of 1
# and of 2 executors, and on the local disk against an S3-compatible store,
# side by side in one run on this machine.
#
# The same generated warehouse is written to a temporary directory and to
# the loopback S3 store (`osservatorio local-s3`). Two schedulers run, one
# with one executor and one with two, so that every configuration stays up
# and the rounds interleave: local/disk, local/S3, ballista-1/disk,
# ballista-2/disk, ballista-2/S3. A round runs every indicator once, one
# `osservatorio indicator` process each, as a researcher's script would;
# `SELECT 1` through each configuration gives the fixed cost per query.
# Medians are reported and the section is appended to benches/RESULTS.md.
#
# Usage: benches/cluster.sh [--scale province|region|national]  (default national)
# Environment: ROUNDS (default 3), OSSERVATORIO_BIN (an existing binary).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source "$PWD/benches/lib.sh"
parse_scale national "$@"
rounds=${ROUNDS:-3}
release_binary "$root"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  local port=$1 what=$2 log=$3 _
  for _ in $(seq 1 300); do
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  cat "$log" >&2
  echo "$what did not start on port $port" >&2
  exit 1
}
start() { # start NAME PORT ARG...: runs "$bin ARG..." in the background
  local name=$1 port=$2; shift 2
  "$bin" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  wait_port "$port" "$name" "$work/$name.log"
}

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-key AWS_REGION=us-east-1
store_port=$(free_port)
export AWS_ENDPOINT_URL=http://127.0.0.1:$store_port
start store "$store_port" local-s3 --root "$work/store" --listen "127.0.0.1:$store_port" --bucket bench
disk=$work/warehouse
s3=s3://bench/warehouse
echo "generating the $scale scale on disk and in the store" >&2
gen_disk=$( { /usr/bin/time -f %e "$bin" --data-dir "$disk" generate --scale "$scale" >/dev/null; } 2>&1 | tail -1)
gen_s3=$( { /usr/bin/time -f %e "$bin" --data-dir "$s3" generate --scale "$scale" >/dev/null; } 2>&1 | tail -1)

schedulers=()
for executors in 1 2; do
  port=$(free_port)
  start "scheduler-$executors" "$port" scheduler --bind "127.0.0.1:$port"
  schedulers+=("127.0.0.1:$port")
  for i in $(seq 1 "$executors"); do
    eport=$(free_port)
    start "executor-$executors-$i" "$eport" --memory-limit 2GiB executor \
      --scheduler "127.0.0.1:$port" --bind "127.0.0.1:$eport" --work-dir "$work/executor-$executors-$i"
  done
done
sleep 2  # executors register with their scheduler

configs=(
  "local disk local $disk"
  "local s3 local $s3"
  "ballista-1 disk ballista://${schedulers[0]} $disk"
  "ballista-2 disk ballista://${schedulers[1]} $disk"
  "ballista-2 s3 ballista://${schedulers[1]} $s3"
)
ids=$(ls queries/*.sql | xargs -n1 basename | sed 's/\.sql$//')
count=$(echo "$ids" | wc -l)
now() { date +%s.%N; }
declare -A suite overhead
for round in $(seq 1 "$rounds"); do
  for config in "${configs[@]}"; do
    read -r engine store url data <<<"$config"
    key="$engine/$store"
    start_time=$(now)
    for id in $ids; do
      "$bin" --data-dir "$data" --engine "$url" indicator "$id" --format csv >/dev/null
    done
    suite[$key]+="$(echo "$(now) - $start_time" | bc) "
    start_time=$(now)
    for _ in 1 2 3 4 5; do
      "$bin" --data-dir "$data" --engine "$url" sql "SELECT 1" --format csv >/dev/null
    done
    overhead[$key]+="$(echo "($(now) - $start_time) / 5" | bc -l) "
    last=(${suite[$key]})
    echo "round $round $key: suite ${last[-1]} s" >&2
  done
done

base=$(echo "${suite[local/disk]}" | median)
{
  echo
  echo "## Cluster and object store, $scale scale ($(date -u +%Y-%m-%d))"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)."
  echo "Generation: $gen_disk s to the local disk, $gen_s3 s to the loopback S3 store."
  echo "Suite: $count indicators, one \`osservatorio indicator\` process each; median of $rounds interleaved rounds."
  echo
  echo "| engine | storage | suite (s) | vs local/disk | per query, SELECT 1 (s) |"
  echo "|:---|:---|---:|---:|---:|"
  for config in "${configs[@]}"; do
    read -r engine store _ _ <<<"$config"
    key="$engine/$store"
    s=$(echo "${suite[$key]}" | median)
    o=$(echo "${overhead[$key]}" | median)
    echo "| $engine | $store | $s | $(echo "scale=2; $s / $base" | bc)× | $o |"
  done
} | tee -a benches/RESULTS.md
