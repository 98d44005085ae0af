#!/usr/bin/env bash
# Executes every notebook top to bottom against a server on a fresh demo
# warehouse, and fails on the first error.
#
#   notebooks/run.sh            # all notebooks
#   notebooks/run.sh 02         # those whose name starts with 02
#
# Installs notebooks/requirements.txt into a virtual environment under
# target/ (reused by later runs), builds the binary if needed, generates the
# province demo into a temporary directory, starts `osservatorio serve` on
# free loopback ports and stops it at the end. Nothing is written to the
# notebooks themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
venv=${OSSERVATORIO_NOTEBOOK_VENV:-$target/notebook-venv}
only=${1:-}

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r notebooks/requirements.txt

cargo build --locked --quiet --bin osservatorio
binary=$target/debug/osservatorio

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

export OSSERVATORIO_DATA_DIR=$work/data
export OSSERVATORIO_QUERIES_DIR=$repo/queries
# The working directory is the temporary one, so that no local
# osservatorio.toml (with its tokens) is picked up.
cd "$work"
"$binary" generate --scale province >"$work/generate.log" 2>&1
"$binary" serve --listen 127.0.0.1:0 --flight-listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
server_pid=$!

# serve prints its addresses and a session token once it listens.
for _ in $(seq 1 600); do
    if grep -q '^serving Arrow Flight SQL at' "$work/serve.log" && grep -qE '^ +osv_' "$work/serve.log"; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$work/serve.log" >&2
        echo "notebooks: the server did not start" >&2
        exit 1
    fi
    sleep 0.1
done
OSSERVATORIO_URL=$(sed -n 's|^serving the observatory at \(http://[^/]*\)/$|\1|p' "$work/serve.log")
OSSERVATORIO_FLIGHT_URI=$(sed -n 's|^serving Arrow Flight SQL at \(grpc://.*\)$|\1|p' "$work/serve.log")
OSSERVATORIO_TOKEN=$(grep -oE '^ +osv_[0-9a-f]+' "$work/serve.log" | tr -d ' ')
if [ -z "$OSSERVATORIO_URL" ] || [ -z "$OSSERVATORIO_FLIGHT_URI" ] || [ -z "$OSSERVATORIO_TOKEN" ]; then
    cat "$work/serve.log" >&2
    echo "notebooks: could not read the server's addresses and token" >&2
    exit 1
fi
export OSSERVATORIO_URL OSSERVATORIO_FLIGHT_URI OSSERVATORIO_TOKEN

status=0
for notebook in "$repo"/notebooks/${only}*.ipynb; do
    name=$(basename "$notebook")
    started=$(date +%s)
    if "$venv/bin/python" - "$notebook" "$work" <<'PY'
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

path, workdir = sys.argv[1], sys.argv[2]
notebook = nbformat.read(path, as_version=4)
client = NotebookClient(
    notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": workdir}}
)
try:
    client.execute()
except CellExecutionError as error:
    print(error, file=sys.stderr)
    sys.exit(1)
PY
    then
        echo "notebook $name: ok ($(( $(date +%s) - started )) s)"
    else
        echo "notebook $name: FAILED" >&2
        status=1
    fi
done
if [ "$status" -ne 0 ]; then
    echo "--- server log ---" >&2
    tail -n 40 "$work/serve.log" >&2
fi
exit $status
