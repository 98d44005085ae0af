#!/usr/bin/env bash
# Requests per second of `osservatorio serve` on a cached indicator
# (GET /api/indicators/staff_assistance_person_days?year=2024, JSON) against
# nginx serving the very same bytes as a static file, both on loopback and
# measured with wrk in interleaved rounds. Goal: osservatorio reaches at least
# half of nginx's rate (ratio >= 0.5). Prints the table and appends it, with
# the machine's details, to benches/RESULTS.md.
#
# Usage: benches/http.sh [--scale province|region|national]   (default province)
# Environment:
#   OSSERVATORIO_BIN   binary to measure; skips `cargo build --release --locked --features cluster`
#   ROUNDS             interleaved rounds per server (default 3); the median counts
#   THREADS, CONNECTIONS, DURATION   wrk's -t, -c, -d (default 2, 32, 10s)
# Needs curl, wrk and nginx; wrk and nginx are installed with apt-get when
# missing (as root, or through sudo).
set -euo pipefail
shopt -s inherit_errexit  # a failing wrk inside $(...) stops the script too
cd "$(dirname "$0")/.."
root=$(pwd)

# shellcheck source=lib.sh
source "$PWD/benches/lib.sh"
parse_scale province "$@"
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
connections=${CONNECTIONS:-32}
duration=${DURATION:-10s}
indicator_path='/api/indicators/staff_assistance_person_days?year=2024'

# --- Tools -----------------------------------------------------------------
need_commands wrk nginx curl
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# --- Binary ----------------------------------------------------------------
release_binary "$(pwd)"

# --- Workspace and cleanup ---------------------------------------------------
work=$(mktemp -d)
server_pid=
nginx_pid=
cleanup() {
  for pid in $server_pid $nginx_pid; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# nginx's workers run as `nobody` when started by root: let them reach the file.
chmod 711 "$work"
mkdir -m 755 "$work/static"
mkdir "$work/nginx"

# A loopback port nobody listens on, from 18080 up.
free_port() {
  local port=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}
# Waits up to 30 s for a URL to answer 2xx while the process lives.
wait_for() {
  local url=$1 pid=$2 log=$3
  for _ in $(seq 300); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "benches/http.sh: the process serving $url died:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "benches/http.sh: $url did not answer within 30 s:" >&2; cat "$log" >&2; exit 1
}

# --- Warehouse and server ------------------------------------------------------
echo "Generating the $scale warehouse..." >&2
"$bin" --data-dir "$work/wh" generate --scale "$scale" --seed 1 >/dev/null
app_port=$(free_port 18080)
# Started from the temporary directory so that no osservatorio.toml of the
# checkout is read (no tokens: the indicator route is public on loopback).
(cd "$work" && exec "$bin" --data-dir "$work/wh" --queries-dir "$root/queries" \
  serve --listen "127.0.0.1:$app_port" --flight-listen 127.0.0.1:0) >"$work/server.log" 2>&1 &
server_pid=$!
app_url="http://127.0.0.1:$app_port"
wait_for "$app_url/healthz" "$server_pid" "$work/server.log"

# One request computes the indicator and fills the cache; nginx serves its body.
curl -fsS -D "$work/headers.txt" -o "$work/static/indicator.json" "$app_url$indicator_path"
chmod 644 "$work/static/indicator.json"
grep -qi '^content-type: application/json' "$work/headers.txt" \
  || { echo "benches/http.sh: the indicator is not JSON:" >&2; cat "$work/headers.txt" >&2; exit 1; }
body_bytes=$(stat -c %s "$work/static/indicator.json")

# --- nginx -----------------------------------------------------------------------
# One worker per core (auto), as tokio's runtime has one worker thread per core.
# Logging off, keep-alive connections never closed by the server (hyper does not
# close them either), sendfile and tcp_nopush as in Debian's nginx.conf.
nginx_port=$(free_port $((app_port + 1)))
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/client_body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/static;
    location = /indicator.json { default_type application/json; types { } }
  }
}
EOF
# nginx may complain that it cannot open its compiled-in log before reading the
# configuration; that alert is harmless and goes to nginx.stderr.
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx/stderr.log" 2>&1 &
nginx_pid=$!
nginx_url="http://127.0.0.1:$nginx_port/indicator.json"
wait_for "$nginx_url" "$nginx_pid" "$work/nginx/stderr.log"
cmp -s <(curl -fsS "$nginx_url") "$work/static/indicator.json" \
  || { echo "benches/http.sh: nginx does not serve the indicator's bytes" >&2; exit 1; }

# --- Measurement ---------------------------------------------------------------
# Prints requests/s of one wrk run; fails on errors or non-2xx answers, which
# would make a fast but meaningless number.
measure() {
  local url=$1 d=$2 out
  out=$(wrk -t"$threads" -c"$connections" -d"$d" "$url")
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "benches/http.sh: errors while measuring $url:" >&2; echo "$out" >&2; exit 1
  fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

echo "Warming up both servers (2 s each)..." >&2
measure "$app_url$indicator_path" 2s >/dev/null
measure "$nginx_url" 2s >/dev/null
app_runs=()
nginx_runs=()
for round in $(seq "$rounds"); do
  app_runs+=("$(measure "$app_url$indicator_path" "$duration")")
  nginx_runs+=("$(measure "$nginx_url" "$duration")")
  echo "round $round/$rounds: osservatorio ${app_runs[-1]} req/s, nginx ${nginx_runs[-1]} req/s" >&2
done
app_median=$(printf '%s\n' "${app_runs[@]}" | median)
nginx_median=$(printf '%s\n' "${nginx_runs[@]}" | median)
ratio=$(awk -v a="$app_median" -v n="$nginx_median" 'BEGIN {printf "%.2f", a / n}')
verdict=$(awk -v r="$ratio" 'BEGIN {print (r >= 0.5) ? "goal met" : "below the goal"}')
[ -z "${BENCH_SUMMARY:-}" ] || printf '%s\t%s\t%s\t%s\n' "cached indicator HTTP / nginx (req/s)" "$ratio×" "≥ 0.5×" "$(awk -v r="$ratio" 'BEGIN {print (r >= 0.5) ? "met" : "NOT met"}')" >>"$BENCH_SUMMARY"

# --- Report ----------------------------------------------------------------------
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- 2>/dev/null || commit="$commit, uncommitted changes"
binary=${bin#"$root"/}
[ -n "${OSSERVATORIO_BIN:-}" ] && binary="$binary (OSSERVATORIO_BIN, not built by the script)"
{
  echo
  echo "## HTTP: cached indicator JSON vs nginx – $(date -u +%Y-%m-%dT%H:%MZ) ($commit)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "Tools: $(wrk -v 2>&1 | awk 'NR==1 {print $1, $2}'), $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //') (worker_processes auto, access log off)"
  echo "Binary: $binary. Scale: $scale."
  echo
  echo "\`GET $indicator_path\` ($body_bytes bytes of JSON, cached"
  echo "after one request) against the same bytes as a static file from nginx."
  echo "wrk -t$threads -c$connections -d$duration, interleaved rounds: $rounds; wrk shares the cores with the server."
  echo
  echo "| round | osservatorio [req/s] | nginx [req/s] |"
  echo "|:---|---:|---:|"
  for i in "${!app_runs[@]}"; do
    echo "| $((i + 1)) | ${app_runs[$i]} | ${nginx_runs[$i]} |"
  done
  echo "| median | $app_median | $nginx_median |"
  echo
  echo "Ratio osservatorio/nginx: $ratio (goal ≥ 0.5: $verdict)"
} | tee -a benches/RESULTS.md
