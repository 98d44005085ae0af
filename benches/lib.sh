# Shell functions shared by the benchmark scripts and notebooks/run.sh;
# source it, don't run it.

# caller_name: the calling script, as `folder/name.sh`, for messages.
caller_name() {
  echo "$(basename "$(dirname "$0")")/$(basename "$0")"
}

# parse_scale DEFAULT [ARG...]: sets scale from `--scale VALUE` or
# `--scale=VALUE` among ARGs (else DEFAULT); `--help` prints the calling
# script's header. Any other argument, or a scale other than province,
# region or national, exits with status 2.
parse_scale() {
  local me
  me=$(caller_name)
  scale=$1
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --scale) [ $# -ge 2 ] || { echo "$me: --scale needs a value" >&2; exit 2; }; scale=$2; shift 2 ;;
      --scale=*) scale=${1#--scale=}; shift ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) echo "$me: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
  done
  case "$scale" in
    province|region|national) ;;
    *) echo "$me: scale must be province, region or national, not $scale" >&2; exit 2 ;;
  esac
}

# median: the median of the numbers on standard input (separated by spaces
# or lines), with two decimals.
median() {
  tr ' ' '\n' | grep -v '^$' | sort -g |
    awk '{v[NR]=$1} END {printf "%.2f\n", (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'
}

# need_commands COMMAND...: installs, with apt-get (as root, or through
# sudo), the Debian package of each COMMAND (named alike) that is neither
# on the PATH nor in /usr/sbin, so that a fresh Debian or Ubuntu machine
# runs every script as it is; elsewhere, install them first.
need_commands() {
  local missing=() command
  for command in "$@"; do
    command -v "$command" >/dev/null || [ -x "/usr/sbin/$command" ] || missing+=("$command")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "$(caller_name): installing ${missing[*]} with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

# pinned_python ROOT: sets py to the Python of the virtual environment
# that holds notebooks/requirements.txt (DuckDB, ADBC, pyarrow, pinned, so
# that every part and every run measures the same DuckDB), creating it
# under ROOT's target directory and installing what is missing.
pinned_python() {
  command -v python3 >/dev/null || { echo "$(caller_name) needs python3" >&2; exit 1; }
  local venv=${OSSERVATORIO_NOTEBOOK_VENV:-${CARGO_TARGET_DIR:-$1/target}/notebook-venv}
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$1/notebooks/requirements.txt"
  py=$venv/bin/python
}

# release_binary ROOT: sets bin to $OSSERVATORIO_BIN when given (measuring
# an existing binary), else builds and uses ROOT's release binary.
release_binary() {
  if [ -n "${OSSERVATORIO_BIN:-}" ]; then
    # A relative path is the caller's, from before the script's `cd`.
    bin=$(cd "${OLDPWD:-.}" && realpath "$OSSERVATORIO_BIN")
  else
    cargo build --release --locked --features cluster --manifest-path "$1/Cargo.toml"
    bin=$1/target/release/osservatorio
  fi
}

# start_serve LOG [ARG...]: starts `$bin [ARG...] serve` on free loopback
# ports with its output in LOG, waits until it listens, and sets
# server_pid, server_url (http://…), flight_uri (grpc://…) and
# server_token (the session's researcher token; the caller makes sure no
# config file with tokens is read). Exits with the log on failure.
start_serve() {
  local log=$1; shift
  "$bin" "$@" serve --listen 127.0.0.1:0 --flight-listen 127.0.0.1:0 >"$log" 2>&1 &
  server_pid=$!
  local _
  for _ in $(seq 1 600); do
    grep -qE '^ +osv_' "$log" && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
      cat "$log" >&2
      echo "the server did not start" >&2
      exit 1
    fi
    sleep 0.1
  done
  server_url=$(sed -n 's|^serving the observatory at \(http://[^/]*\)/$|\1|p' "$log")
  flight_uri=$(sed -n 's|^serving Arrow Flight SQL at \(grpc://.*\)$|\1|p' "$log")
  server_token=$(grep -oE '^ +osv_[0-9a-f]+' "$log" | tr -d ' ')
  if [ -z "$server_url" ] || [ -z "$flight_uri" ] || [ -z "$server_token" ]; then
    cat "$log" >&2
    echo "could not read the server's addresses and token" >&2
    exit 1
  fi
}

# stop_serve: stops the server started by start_serve, if any.
stop_serve() {
  if [ -n "${server_pid:-}" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
